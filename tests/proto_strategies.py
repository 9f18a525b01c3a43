"""Hypothesis strategies that build arbitrary protobuf messages from their descriptors, for fuzzing RPCs.

Strings mix names that are valid in the registry with garbage, numbers include out-of-range enum values, and
nested messages, maps and repeated fields are filled to a bounded depth.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

NAMES = ["driver_id", "customer_id", "driver_hourly", "default", "fraud", "conv_rate", "event_timestamp"]
_strings = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(["", " ", "-", "1x", "a:b", "file:///tmp/x", "s3://b/k", "x" * 300, "\x00", "é"]),
    st.text(max_size=12),
)
_INT32 = st.integers(-(2**31), 2**31 - 1)
_INT64 = st.integers(-(2**63), 2**63 - 1)

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: _strings,
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=16),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True),
}


def _enum(field: FieldDescriptor) -> st.SearchStrategy[int]:
    known = [v.number for v in field.enum_type.values]
    return st.one_of(st.sampled_from(known), st.integers(-3, 40))


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum(field)
    return _SCALARS[field.type]


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


@st.composite
def _build(draw: st.DrawFn, descriptor: Descriptor, depth: int) -> Message:
    from google.protobuf import message_factory

    msg = message_factory.GetMessageClass(descriptor)()
    if depth > 4:
        return msg
    chosen_oneofs: dict[str, str] = {
        o.name: draw(st.sampled_from([None, *[f.name for f in o.fields]])) for o in descriptor.oneofs
    }
    for field in descriptor.fields:
        if field.containing_oneof is not None and chosen_oneofs[field.containing_oneof.name] != field.name:
            continue
        if field.containing_oneof is None and not draw(st.booleans()):
            continue
        if _is_map(field):
            key_f, val_f = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            entries = draw(st.dictionaries(_value(key_f, depth), _value(val_f, depth), max_size=3))
            target = getattr(msg, field.name)
            for k, v in entries.items():
                if val_f.type == FieldDescriptor.TYPE_MESSAGE:
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif field.is_repeated:
            items = draw(st.lists(_value(field, depth), max_size=3))
            target = getattr(msg, field.name)
            for item in items:
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    target.add().CopyFrom(item)
                else:
                    target.append(item)
        else:
            value = draw(_value(field, depth))
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(msg, field.name).CopyFrom(value)
            else:
                setattr(msg, field.name, value)
    return msg


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Arbitrary instances of the message type `descriptor` (well-known Timestamp/Duration kept in range)."""
    if descriptor.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        from google.protobuf import message_factory

        cls = message_factory.GetMessageClass(descriptor)
        return st.builds(cls, seconds=st.integers(-(10**10), 10**11), nanos=st.integers(0, 999_999_999))
    return _build(descriptor, depth)
