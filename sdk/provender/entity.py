"""Entity: the key a feature value belongs to (a driver, a customer), with its value type."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provender.kernel.timestamps import from_timestamp
from provender.kernel.value_types import ValueType
from provender.proto.feast.core import Entity_pb2
from provender.rendering import to_html, to_yaml


@dataclass
class Entity:
    name: str
    value_type: ValueType
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    created: datetime | None = field(default=None, compare=False, repr=False)
    last_updated: datetime | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.value_type = ValueType.parse(self.value_type)
        self.labels = dict(self.labels or {})

    def to_proto(self) -> Entity_pb2.EntitySpecV2:
        return Entity_pb2.EntitySpecV2(
            name=self.name, value_type=self.value_type.value, description=self.description, labels=self.labels
        )

    @classmethod
    def from_proto(cls, proto: Entity_pb2.Entity | Entity_pb2.EntitySpecV2) -> Entity:
        spec = proto.spec if isinstance(proto, Entity_pb2.Entity) else proto
        entity = cls(spec.name, ValueType(spec.value_type), spec.description, dict(spec.labels))
        if isinstance(proto, Entity_pb2.Entity) and proto.HasField("meta"):
            entity.created = from_timestamp(proto.meta.created_timestamp)
            entity.last_updated = from_timestamp(proto.meta.last_updated_timestamp)
        return entity

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "Entity", "name": self.name, "value_type": self.value_type.name}
        if self.description:
            out["description"] = self.description
        if self.labels:
            out["labels"] = dict(self.labels)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entity:
        data = {k: v for k, v in data.items() if k != "kind"}
        return cls(**data)

    def to_yaml(self) -> str:
        return to_yaml(self.to_dict())

    def _repr_html_(self) -> str:
        return to_html(f"Entity {self.name}", self.to_dict())
