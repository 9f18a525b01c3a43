"""Feature: one named, typed value of a feature table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provender.kernel.value_types import ValueType
from provender.proto.feast.core import Feature_pb2


@dataclass
class Feature:
    name: str
    dtype: ValueType
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dtype = ValueType.parse(self.dtype)
        self.labels = dict(self.labels or {})

    def to_proto(self) -> Feature_pb2.FeatureSpecV2:
        return Feature_pb2.FeatureSpecV2(name=self.name, value_type=self.dtype.value, labels=self.labels)

    @classmethod
    def from_proto(cls, proto: Feature_pb2.FeatureSpecV2) -> Feature:
        return cls(proto.name, ValueType(proto.value_type), dict(proto.labels))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype.name}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out
