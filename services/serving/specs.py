"""What Serving needs to know about a feature table, taken from Core's `feast.core.FeatureTable`."""

from __future__ import annotations

from dataclasses import dataclass

from provender.kernel.value_types import ValueType
from provender.proto.feast.core import FeatureTable_pb2

DEFAULT_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class ServingTable:
    """One feature table as Serving reads it: entity names (sorted, as in the Redis key), feature types, max_age."""

    project: str
    name: str
    entities: tuple[str, ...]
    features: dict[str, ValueType]
    max_age_ns: int  # 0: no max_age
    revision: int = 0

    @classmethod
    def from_proto(cls, project: str, table: FeatureTable_pb2.FeatureTable) -> ServingTable:
        spec = table.spec
        max_age = spec.max_age
        return cls(
            project=project or DEFAULT_PROJECT,
            name=spec.name,
            entities=tuple(sorted(spec.entities)),
            features={f.name: _value_type(f.value_type) for f in spec.features},
            max_age_ns=max_age.seconds * 1_000_000_000 + max_age.nanos,
            revision=table.meta.revision,
        )


def _value_type(number: int) -> ValueType:
    """A feature's type; a number we do not know (a newer Core) reads as INVALID, which no stored value matches."""
    try:
        return ValueType(number)
    except ValueError:
        return ValueType.INVALID
