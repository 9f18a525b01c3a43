"""Protobuf wire encoding, as the hand-rolled encoders need it (the Redis layout, the columnar encoders, Serving's
response writer): varints, length prefixes, and tags derived from the generated descriptors, never typed by hand.
"""

from __future__ import annotations

from google.protobuf import descriptor

_FD = descriptor.FieldDescriptor

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

# The wire type of each field type (protobuf encoding rules); repeated scalars are packed (length-delimited).
WIRE_TYPE: dict[int, int] = {
    _FD.TYPE_DOUBLE: FIXED64,
    _FD.TYPE_FLOAT: FIXED32,
    _FD.TYPE_INT64: VARINT,
    _FD.TYPE_UINT64: VARINT,
    _FD.TYPE_INT32: VARINT,
    _FD.TYPE_UINT32: VARINT,
    _FD.TYPE_BOOL: VARINT,
    _FD.TYPE_ENUM: VARINT,
    _FD.TYPE_STRING: LENGTH_DELIMITED,
    _FD.TYPE_BYTES: LENGTH_DELIMITED,
    _FD.TYPE_MESSAGE: LENGTH_DELIMITED,
}


def varint(n: int) -> bytes:
    """A non-negative integer as a protobuf base-128 varint (the encoding of tags and lengths)."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Varints of 0 .. 16383 (every length up to 16 KiB), precomputed for the hot paths.
SMALL_VARINTS = tuple(varint(n) for n in range(1 << 14))


def length_prefix(n: int) -> bytes:
    """The varint length that precedes a length-delimited field's payload."""
    return SMALL_VARINTS[n] if n < 16384 else varint(n)


def tag(field: descriptor.FieldDescriptor, wire_type: int | None = None) -> bytes:
    """The tag bytes of `field` (field number << 3 | wire type). The wire type is the field's own, or packed
    (length-delimited) for a repeated scalar; pass `wire_type` to encode one element of a repeated field."""
    if wire_type is None:
        packed = field.is_repeated and field.type not in (_FD.TYPE_STRING, _FD.TYPE_BYTES, _FD.TYPE_MESSAGE)
        wire_type = LENGTH_DELIMITED if packed else WIRE_TYPE[field.type]
    return varint((field.number << 3) | wire_type)


def field_tag(message: type, name: str, wire_type: int | None = None) -> bytes:
    """The tag of the field called `name` of a generated message class."""
    return tag(message.DESCRIPTOR.fields_by_name[name], wire_type)
