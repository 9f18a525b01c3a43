"""Vectorised encoders for the online-store layout: whole Arrow columns to the bytes redis_layout gives per value.

redis_layout is the one source of the layout; this module only builds the same bytes for a column at a time with
numpy and pyarrow (no protobuf object per row). Every tag is derived from the generated descriptors or from
redis_layout; tests/unit/test_columnar_encoding.py proves, for every value type, for keys and for timestamps,
that the bytes equal redis_layout's scalar encoding exactly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import descriptor, timestamp_pb2

from provender.kernel.online import layout as redis_layout
from provender.kernel.value_types import VALID_TYPES, VALUE_FIELD, ValueType, arrow_type
from provender.kernel.wire import protobuf
from provender.proto.feast.storage import Redis_pb2
from provender.proto.feast.types import Value_pb2

_FD = descriptor.FieldDescriptor
_LENGTH_DELIMITED = protobuf.LENGTH_DELIMITED
_VARINT = protobuf.VARINT
_EMPTY = pa.scalar(b"", pa.binary())
_NULL = pa.scalar(None, pa.binary())

# The Arrow type each value type is encoded from (columns are cast to it first): provender.kernel.value_types's mapping.
ARROW_TYPE: dict[ValueType, pa.DataType] = {vt: arrow_type(vt) for vt in VALID_TYPES}


def _tag(field: descriptor.FieldDescriptor, wire_type: int) -> bytes:
    return protobuf.tag(field, wire_type)


# How each scalar protobuf field type is laid out on the wire (protobuf encoding rules).
_FIXED_WIDTH = {_FD.TYPE_FLOAT: ("<f4", 4), _FD.TYPE_DOUBLE: ("<f8", 8)}
_VARINT_TYPES = (_FD.TYPE_INT32, _FD.TYPE_INT64, _FD.TYPE_BOOL)
_BYTES_TYPES = (_FD.TYPE_STRING, _FD.TYPE_BYTES)


def _scalar_field(vt: ValueType) -> descriptor.FieldDescriptor:
    """The protobuf field that carries one element of `vt`: the Value oneof field or the list's `val`."""
    field = Value_pb2.Value.DESCRIPTOR.fields_by_name[VALUE_FIELD[vt]]
    if vt.is_list:
        return field.message_type.fields_by_name["val"]
    return field


_LIST_VAL_TAG: dict[ValueType, bytes] = {
    vt: _tag(_scalar_field(vt), _LENGTH_DELIMITED) for vt in VALUE_FIELD if vt.is_list
}
_TS_SECONDS = timestamp_pb2.Timestamp.DESCRIPTOR.fields_by_name["seconds"]
_TS_NANOS = timestamp_pb2.Timestamp.DESCRIPTOR.fields_by_name["nanos"]
_TS_SECONDS_TAG = _tag(_TS_SECONDS, _VARINT)
_TS_NANOS_TAG = _tag(_TS_NANOS, _VARINT)
_KEY_VALUE_TAG = _tag(Redis_pb2.RedisKeyV2.DESCRIPTOR.fields_by_name["entity_values"], _LENGTH_DELIMITED)


# --- primitives -----------------------------------------------------------------------------------------


def _binary(offsets: np.ndarray, data: np.ndarray) -> pa.BinaryArray:
    n = len(offsets) - 1
    if offsets[-1] > np.iinfo(np.int32).max:
        return pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data)]
        ).cast(pa.binary())
    return pa.BinaryArray.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    )


def varints(values: np.ndarray) -> pa.BinaryArray:
    """Protobuf varints of integers (negative numbers as 64-bit two's complement, 10 bytes, as protobuf does)."""
    u = np.ascontiguousarray(values).astype(np.int64, copy=False).view(np.uint64)
    n = len(u)
    lengths = np.ones(n, dtype=np.int64)
    rest = u >> np.uint64(7)
    while True:
        more = rest != 0
        if not more.any():
            break
        lengths += more
        rest = rest >> np.uint64(7)
    width = int(lengths.max()) if n else 1
    positions = np.arange(width)
    groups = (u[:, None] >> (positions.astype(np.uint64) * np.uint64(7))[None, :]) & np.uint64(0x7F)
    groups = groups.astype(np.uint8)
    groups |= np.where(positions[None, :] < (lengths[:, None] - 1), np.uint8(0x80), np.uint8(0))
    data = groups[positions[None, :] < lengths[:, None]]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return _binary(offsets, data)


def concat(*parts: pa.Array | bytes) -> pa.BinaryArray:
    """Row-wise concatenation of binary columns and constant bytes (null when any part is null)."""
    merged: list[pa.Array | bytes] = []
    for p in parts:  # adjacent constants as one: fewer arguments to join
        if isinstance(p, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += p
        else:
            merged.append(p)
    args = [pa.scalar(p, pa.binary()) if isinstance(p, bytes) else p for p in merged]
    if not any(isinstance(a, pa.Array) for a in args):
        raise ValueError("concat needs at least one column")
    return pc.binary_join_element_wise(*args, _EMPTY)


def length_prefixed(values: pa.Array) -> pa.BinaryArray:
    """Each value preceded by the varint of its length (a length-delimited protobuf payload)."""
    lengths = pc.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False)
    return concat(varints(lengths), values)


def _fixed_width(values: np.ndarray, dtype: str, width: int) -> pa.BinaryArray:
    data = np.ascontiguousarray(values.astype(dtype)).view(np.uint8)
    return _binary(np.arange(len(values) + 1, dtype=np.int64) * width, data)


def join_groups(elements: pa.BinaryArray, list_offsets: np.ndarray) -> pa.BinaryArray:
    """Concatenate consecutive elements into one value per list (list_offsets index into `elements`)."""
    elem_offsets = np.frombuffer(
        elements.buffers()[1], dtype=np.int32, count=len(elements) + 1, offset=elements.offset * 4
    )
    data = (
        np.frombuffer(elements.buffers()[2], dtype=np.uint8)
        if elements.buffers()[2]
        else np.zeros(0, np.uint8)
    )
    return _binary(elem_offsets[list_offsets].astype(np.int64), data)


def _numpy(values: pa.Array, vt: ValueType) -> np.ndarray:
    filled = values.fill_null(False if vt is ValueType.BOOL else 0)
    return filled.to_numpy(zero_copy_only=False)


def _elements(values: pa.Array, vt: ValueType) -> pa.BinaryArray:
    """The wire bytes of each scalar without its tag: varint, fixed width, or length-prefixed bytes."""
    ftype = _scalar_field(vt).type
    if ftype in _FIXED_WIDTH:
        dtype, width = _FIXED_WIDTH[ftype]
        return _fixed_width(_numpy(values, vt), dtype, width)
    if ftype in _VARINT_TYPES:
        return varints(_numpy(values, vt).astype(np.int64))
    if ftype in _BYTES_TYPES:
        return length_prefixed(values.cast(pa.binary()))
    raise ValueError(f"no columnar encoder for protobuf field type {ftype} of {vt.name}")


# --- values -----------------------------------------------------------------------------------------------


def encode_values(column: pa.Array | pa.ChunkedArray, value_type: ValueType) -> pa.BinaryArray:
    """Serialized feast.types.Value of every element (null where the element is null), as redis_layout.encode_value.

    List columns must not contain null elements (a Value list cannot hold them): ValueError if they do.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    column = column.cast(ARROW_TYPE[value_type])
    tag = redis_layout.VALUE_TAG[value_type]
    if not value_type.is_list:
        encoded = concat(tag, _elements(column, value_type))
    else:
        encoded = _encode_lists(column, value_type, tag)
    if column.null_count:
        encoded = pc.if_else(column.is_valid(), encoded, _NULL)
    return encoded


def _encode_lists(column: pa.ListArray, value_type: ValueType, tag: bytes) -> pa.BinaryArray:
    lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    list_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=list_offsets[1:])
    flat = column.flatten()
    if flat.null_count:
        raise ValueError(f"a {value_type.name} value cannot hold null elements")
    element = value_type.element_type
    ftype = _scalar_field(value_type).type
    if ftype in _BYTES_TYPES:
        # repeated string/bytes: each element is its own length-delimited field `val`
        inner = join_groups(concat(_LIST_VAL_TAG[value_type], _elements(flat, element)), list_offsets)
    else:
        # repeated numbers are packed: one length-delimited `val` holding all elements (absent when empty)
        packed = join_groups(_elements(flat, element), list_offsets)
        inner = pc.if_else(
            pa.array(lengths > 0), concat(_LIST_VAL_TAG[value_type], length_prefixed(packed)), _EMPTY
        )
    return concat(tag, length_prefixed(inner))


# --- timestamps and keys ------------------------------------------------------------------------------------


def encode_timestamps_ns(unix_ns: np.ndarray) -> pa.BinaryArray:
    """Serialized google.protobuf.Timestamp of each Unix time in nanoseconds (as redis_layout.encode_timestamp_ns)."""
    ns = np.asarray(unix_ns, dtype=np.int64)
    seconds = np.floor_divide(ns, 1_000_000_000)
    nanos = ns - seconds * 1_000_000_000
    sec_part = pc.if_else(pa.array(seconds != 0), concat(_TS_SECONDS_TAG, varints(seconds)), _EMPTY)
    nano_part = pc.if_else(pa.array(nanos != 0), concat(_TS_NANOS_TAG, varints(nanos)), _EMPTY)
    return concat(sec_part, nano_part)


def encode_keys(
    project: str, entities: dict[str, pa.Array], value_types: dict[str, ValueType]
) -> pa.BinaryArray:
    """The Redis key of every row (as redis_layout.KeyEncoder), from the entity columns and their value types.

    Null entity values are not allowed (they have no key): ValueError naming the entity.
    """
    encoder = redis_layout.KeyEncoder(project, list(entities))
    parts: list[pa.Array | bytes] = [
        encoder.encode([])
    ]  # the project and entity names: the same for every row
    for name in encoder.names:
        column = entities[name]
        if column.null_count:
            raise ValueError(f"entity {name!r} has null values; a key needs every entity value")
        parts += [_KEY_VALUE_TAG, length_prefixed(encode_values(column, value_types[name]))]
    return concat(*parts)


def expire_at_seconds(event_ns: np.ndarray, max_age_seconds: int) -> np.ndarray:
    """EXPIREAT of each row: redis_layout.expiry_ns rounded up to whole seconds (0 when max_age is 0: no expiry)."""
    if max_age_seconds <= 0:
        return np.zeros(len(event_ns), dtype=np.int64)
    expiry = redis_layout.expiry_ns(np.asarray(event_ns, dtype=np.int64), max_age_seconds)
    return -np.floor_divide(-expiry, 1_000_000_000)
