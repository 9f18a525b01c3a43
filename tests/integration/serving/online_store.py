"""Test helpers: register tables in Core and write rows to Redis with the one encoding module, and read
responses back as plain Python."""

from __future__ import annotations

import time
from collections.abc import Mapping

from provender.kernel.online.layout import entity_key, table_row_fields
from provender.kernel.value_types import ValueType, from_value, to_value
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import FeatureTable_pb2
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2

NOW_NS = time.time_ns


def apply(core_stub, project: str, entities, tables: list[FeatureTable_pb2.FeatureTableSpec]) -> None:
    for e in entities:
        core_stub.ApplyEntity(core_pb2.ApplyEntityRequest(spec=e, project=project))
    for t in tables:
        core_stub.ApplyFeatureTable(core_pb2.ApplyFeatureTableRequest(project=project, table_spec=t))


def seed_one_driver(core_stub, redis, *more_tables: FeatureTable_pb2.FeatureTableSpec) -> None:
    """Project `default`: entity driver_id, table driver_hourly (no max_age) and `more_tables`; driver 1 has
    driver_hourly:trips 5 in Redis."""
    from tests.factories import entity, table

    apply(
        core_stub, "default", [entity("driver_id")], [table("driver_hourly", max_age_seconds=0), *more_tables]
    )
    write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"trips": (5, ValueType.INT64)},
    )


def write_row(
    client,
    project: str,
    entities: Mapping[str, tuple[object, ValueType]],
    table: str,
    features: Mapping[str, tuple[object, ValueType]],
    event_time_ns: int | None = None,
    max_age_seconds: int = 0,
) -> bytes:
    """HSET one table row the way ingestion does; returns the key."""
    key = entity_key(project, {name: to_value(v, vt) for name, (v, vt) in entities.items()})
    event = time.time_ns() if event_time_ns is None else event_time_ns
    client.hset(key, mapping=table_row_fields(table, features, event, max_age_seconds))
    return key


def request(
    project: str,
    refs: list[str],
    rows: list[Mapping[str, object]],
    timestamps: list[int | None] | None = None,
) -> serving_pb2.GetOnlineFeaturesRequestV2:
    """A GetOnlineFeaturesRequestV2; row values are Values, or Python scalars typed like the Feast client does."""
    req = serving_pb2.GetOnlineFeaturesRequestV2(project=project)
    for ref in refs:
        table, _, name = ref.partition(":")
        req.features.add(feature_table=table, name=name)
    for i, row in enumerate(rows):
        entity_row = req.entity_rows.add()
        for name, value in row.items():
            entity_row.fields[name].CopyFrom(value if hasattr(value, "WhichOneof") else to_value(value))
        if timestamps and timestamps[i] is not None:
            entity_row.timestamp.FromNanoseconds(timestamps[i])
    return req


STATUS = serving_pb2.GetOnlineFeaturesResponse.FieldStatus


def as_rows(response: serving_pb2.GetOnlineFeaturesResponse) -> list[dict[str, tuple[object, str]]]:
    """Each row as {field: (python value, status name)}."""
    return [
        {k: (from_value(fv.fields[k]), STATUS.Name(fv.statuses[k])) for k in fv.fields}
        for fv in response.field_values
    ]
