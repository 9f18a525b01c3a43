"""The online-store layout in Redis (docs/protocol.md, "The online store"): the one module that knows it.

Ingestion writes with it and Serving reads with it; nothing else builds Redis keys or field names.

- Key: serialized `feast.storage.RedisKeyV2{project=1, entity_names=2 (sorted), entity_values=3 (same order)}`.
- Feature field: the 4 little-endian bytes of murmur3_32 (seed 0) of `"<table>:<feature>"`.
- `_ts:<table>`: serialized `google.protobuf.Timestamp` of the row's event time.
- `_ex:<table>`: serialized Timestamp of event time + max_age (no such field when max_age is 0).
- Field values: serialized `feast.types.Value`; nulls are not written.

Entity values are typed by the client: the key bytes depend on the Value's type, so an INT32 entity looked up
as INT64 misses (its key bytes differ).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import mmh3
from google.protobuf import timestamp_pb2

from provender.kernel.value_types import VALUE_FIELD, ValueType, to_value, value_type_of
from provender.kernel.wire.protobuf import field_tag, length_prefix
from provender.proto.feast.storage import Redis_pb2
from provender.proto.feast.types import Value_pb2

TS_PREFIX = b"_ts:"
EX_PREFIX = b"_ex:"

_KEY_VALUE_TAG = field_tag(Redis_pb2.RedisKeyV2, "entity_values")

# --- fields -------------------------------------------------------------------------------------------------


def feature_field(table: str, feature: str) -> bytes:
    """The hash field of one feature: murmur3_32 (seed 0) of "table:feature", 4 bytes little-endian."""
    return struct.pack("<I", mmh3.hash(f"{table}:{feature}", 0, signed=False))


def ts_field(table: str) -> bytes:
    """The hash field holding the event time of the table's row: b"_ts:<table>"."""
    return TS_PREFIX + table.encode()


def ex_field(table: str) -> bytes:
    """The hash field holding the expiry (event time + max_age) of the table's row: b"_ex:<table>"."""
    return EX_PREFIX + table.encode()


# --- timestamps ---------------------------------------------------------------------------------------------


def encode_timestamp(seconds: int, nanos: int = 0) -> bytes:
    """A serialized google.protobuf.Timestamp."""
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).SerializeToString()


def encode_timestamp_ns(unix_ns: int) -> bytes:
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    return encode_timestamp(seconds, nanos)


def encode_datetime(when: datetime) -> bytes:
    """A serialized Timestamp of `when` (naive datetimes are taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return encode_timestamp_ns(datetime_to_ns(when))


def datetime_to_ns(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def decode_timestamp_ns(data: bytes) -> int:
    """Unix nanoseconds of a serialized Timestamp (b"" is the epoch, as protobuf defaults say)."""
    ts = timestamp_pb2.Timestamp.FromString(data)
    return ts.seconds * 1_000_000_000 + ts.nanos


# --- values -------------------------------------------------------------------------------------------------


def encode_value(value: object, value_type: ValueType) -> bytes:
    """A Python value (a list for list types) as serialized feast.types.Value bytes; None gives b""."""
    return to_value(value, value_type).SerializeToString()


def decode_value(data: bytes) -> Value_pb2.Value:
    return Value_pb2.Value.FromString(data)


def _value_tag(value_type: ValueType) -> bytes:
    return field_tag(Value_pb2.Value, VALUE_FIELD[value_type])


# The first bytes of every non-null serialized Value of each type (its oneof field's tag), derived from the
# generated descriptor. A canonical serialization starts with it, so a type check needs no decoding.
VALUE_TAG: dict[ValueType, bytes] = {vt: _value_tag(vt) for vt in VALUE_FIELD}


def stored_value_type(data: bytes) -> ValueType | None:
    """The type of a serialized Value (None when it is null); decodes only when the bytes are not canonical.

    Raises google.protobuf.message.DecodeError when the bytes are not a Value.
    """
    if not data:
        return None
    for vt, tag in VALUE_TAG.items():
        if data.startswith(tag):
            return vt
    return value_type_of(decode_value(data))


# --- keys ---------------------------------------------------------------------------------------------------


class KeyEncoder:
    """Builds the Redis keys of one (project, entity set) from serialized entity Values, without protobuf.

    `entity_names` may come in any order; `encode` takes the values in sorted-name order (see `names`).
    """

    __slots__ = ("_prefix", "names", "project")

    def __init__(self, project: str, entity_names: Sequence[str]) -> None:
        self.project = project
        self.names: tuple[str, ...] = tuple(sorted(entity_names))
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"entity names must be unique, got {list(entity_names)}")
        self._prefix = Redis_pb2.RedisKeyV2(project=project, entity_names=self.names).SerializeToString()

    def encode(self, values: Sequence[bytes]) -> bytes:
        """The key for serialized entity Values given in the order of `names`."""
        parts = [self._prefix]
        for v in values:
            parts.append(_KEY_VALUE_TAG)
            parts.append(length_prefix(len(v)))
            parts.append(v)
        return b"".join(parts)


def entity_key(project: str, entities: Mapping[str, Value_pb2.Value | bytes]) -> bytes:
    """The Redis key of one entity row: `entities` maps entity name to its Value (or serialized Value)."""
    encoder = KeyEncoder(project, list(entities))
    values = [entities[n] for n in encoder.names]
    return encoder.encode([v if isinstance(v, bytes) else v.SerializeToString() for v in values])


# --- rows (what ingestion writes) -----------------------------------------------------------------------


def table_row_fields(
    table: str,
    features: Mapping[str, tuple[object, ValueType]],
    event_time_ns: int,
    max_age_seconds: int = 0,
) -> dict[bytes, bytes]:
    """The hash fields one table row writes: each non-null feature, `_ts:<table>` and, when max_age > 0,
    `_ex:<table>`. `features` maps feature name to (Python value, its type)."""
    out = {
        feature_field(table, name): encode_value(value, vt)
        for name, (value, vt) in features.items()
        if value is not None
    }
    out[ts_field(table)] = encode_timestamp_ns(event_time_ns)
    if max_age_seconds > 0:
        out[ex_field(table)] = encode_timestamp_ns(expiry_ns(event_time_ns, max_age_seconds))
    return out


def expiry_ns(event_time_ns: int, max_age_seconds: int) -> int:
    """Event time + max_age, the value of `_ex:<table>` and a candidate for the key's EXPIREAT."""
    return event_time_ns + max_age_seconds * 1_000_000_000
