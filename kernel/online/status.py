"""The status rules of an online lookup, per entity row and feature (docs/protocol.md, "Status rules"), stated
one value at a time; and their enum, feast.serving.GetOnlineFeaturesResponse.FieldStatus as a Python IntEnum
built from the generated descriptor so its names and numbers cannot drift.

Serving's lookup (provender.serving.lookup) decides whole requests at once on a fast path and falls back to
`status_of` for any value that is not canonical; its tests hold the fast path to these functions.
"""

from __future__ import annotations

import enum

from google.protobuf.message import DecodeError

from provender.kernel.online.layout import stored_value_type
from provender.kernel.value_types import ValueType
from provender.proto.feast.serving import ServingService_pb2

FieldStatus = enum.IntEnum(
    "FieldStatus",
    {v.name: v.number for v in ServingService_pb2.GetOnlineFeaturesResponse.FieldStatus.DESCRIPTOR.values},
    module=__name__,
)


def outside_max_age(reference_ns: int, written_ns: int | None, max_age_ns: int) -> bool:
    """Whether a row written at `written_ns` (None: no `_ts:` field, counted as the epoch) is too old for a
    lookup at `reference_ns` (the entity row's timestamp, else now): only tables with a max_age (> 0) expire."""
    return max_age_ns > 0 and reference_ns - (written_ns or 0) > max_age_ns


def status_of(stored: bytes | None, value_type: ValueType, outside: bool) -> FieldStatus:
    """The status of one feature of one row: absent, undecodable or of another type than the spec's →
    NOT_FOUND; else outside the max_age → OUTSIDE_MAX_AGE; else unset (an empty Value) → NULL_VALUE; else
    PRESENT. Only a PRESENT value is returned (as the stored bytes); every other is an empty Value."""
    if stored is None:
        return FieldStatus.NOT_FOUND
    try:
        got = stored_value_type(stored)
    except DecodeError:
        return FieldStatus.NOT_FOUND
    if got is not None and got is not value_type:
        return FieldStatus.NOT_FOUND
    if outside:
        return FieldStatus.OUTSIDE_MAX_AGE
    return FieldStatus.PRESENT if got is not None else FieldStatus.NULL_VALUE
