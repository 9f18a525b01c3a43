"""FeatureTable: features keyed by entities, with where their data comes from and how long values stay valid."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration

from provender.data_source import DataSource, source_from_dict, source_from_proto
from provender.feature import Feature
from provender.kernel.timestamps import from_timestamp
from provender.proto.feast.core import FeatureTable_pb2
from provender.rendering import to_html, to_yaml


@dataclass
class FeatureTable:
    name: str
    entities: list[str]
    features: list[Feature]
    batch_source: DataSource
    stream_source: DataSource | None = None
    max_age: timedelta | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # Set by Core; not compared.
    revision: int = field(default=0, compare=False, repr=False)
    hash: str = field(default="", compare=False, repr=False)
    created: datetime | None = field(default=None, compare=False, repr=False)
    last_updated: datetime | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.entities = list(self.entities)
        self.features = list(self.features)
        self.labels = dict(self.labels or {})
        if isinstance(self.max_age, Duration):
            self.max_age = self.max_age.ToTimedelta()
        elif isinstance(self.max_age, int | float):
            self.max_age = timedelta(seconds=self.max_age)
        if self.max_age is not None and self.max_age <= timedelta(0):
            self.max_age = None

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(
            f"feature table {self.name!r} has no feature {name!r}; it has {[f.name for f in self.features]}"
        )

    def to_proto(self) -> FeatureTable_pb2.FeatureTableSpec:
        spec = FeatureTable_pb2.FeatureTableSpec(
            name=self.name,
            entities=self.entities,
            features=[f.to_proto() for f in self.features],
            labels=self.labels,
            batch_source=self.batch_source.to_proto(),
        )
        if self.max_age:
            spec.max_age.FromTimedelta(self.max_age)
        if self.stream_source is not None:
            spec.stream_source.CopyFrom(self.stream_source.to_proto())
        return spec

    @classmethod
    def from_proto(
        cls, proto: FeatureTable_pb2.FeatureTable | FeatureTable_pb2.FeatureTableSpec
    ) -> FeatureTable:
        spec = proto.spec if isinstance(proto, FeatureTable_pb2.FeatureTable) else proto
        table = cls(
            name=spec.name,
            entities=list(spec.entities),
            features=[Feature.from_proto(f) for f in spec.features],
            batch_source=source_from_proto(spec.batch_source),
            stream_source=source_from_proto(spec.stream_source) if spec.HasField("stream_source") else None,
            max_age=spec.max_age.ToTimedelta() if spec.HasField("max_age") else None,
            labels=dict(spec.labels),
        )
        if isinstance(proto, FeatureTable_pb2.FeatureTable) and proto.HasField("meta"):
            table.revision = proto.meta.revision
            table.hash = proto.meta.hash
            table.created = from_timestamp(proto.meta.created_timestamp)
            table.last_updated = from_timestamp(proto.meta.last_updated_timestamp)
        return table

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "FeatureTable",
            "name": self.name,
            "entities": list(self.entities),
            "features": [f.to_dict() for f in self.features],
            "batch_source": self.batch_source.to_dict(),
        }
        if self.stream_source is not None:
            out["stream_source"] = self.stream_source.to_dict()
        if self.max_age:
            out["max_age"] = f"{int(self.max_age.total_seconds())}s"
        if self.labels:
            out["labels"] = dict(self.labels)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureTable:
        max_age = data.get("max_age")
        if isinstance(max_age, str):
            d = Duration()
            d.FromJsonString(max_age)
            max_age = d.ToTimedelta()
        return cls(
            name=data["name"],
            entities=list(data["entities"]),
            features=[Feature(**f) for f in data["features"]],
            batch_source=source_from_dict(data["batch_source"]),
            stream_source=source_from_dict(data["stream_source"]) if data.get("stream_source") else None,
            max_age=max_age,
            labels=data.get("labels") or {},
        )

    def to_yaml(self) -> str:
        return to_yaml(self.to_dict())

    def _repr_html_(self) -> str:
        return to_html(f"FeatureTable {self.name} (revision {self.revision})", self.to_dict())
