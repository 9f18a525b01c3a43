"""The statuses of an online lookup, per entity row and feature (docs/protocol.md, "Status rules"): the wire enum
feast.serving.GetOnlineFeaturesResponse.FieldStatus as a Python IntEnum, built from the generated descriptor so
its names and numbers cannot drift. provender.serving.lookup applies the rules."""

from __future__ import annotations

import enum

from provender.proto.feast.serving import ServingService_pb2

FieldStatus = enum.IntEnum(
    "FieldStatus",
    {v.name: v.number for v in ServingService_pb2.GetOnlineFeaturesResponse.FieldStatus.DESCRIPTOR.values},
    module=__name__,
)
