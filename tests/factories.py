"""Builders of registry specs for tests: valid by default, every field overridable."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from provender.kernel.value_types import ValueType
from provender.proto.feast.core import (
    DataFormat_pb2,
    DataSource_pb2,
    Entity_pb2,
    Feature_pb2,
    FeatureTable_pb2,
)

SourceType = DataSource_pb2.DataSource.SourceType


def entity(
    name: str = "driver_id", value_type: ValueType = ValueType.INT64, **labels: str
) -> Entity_pb2.EntitySpecV2:
    return Entity_pb2.EntitySpecV2(name=name, value_type=value_type, description=f"the {name}", labels=labels)


def feature(name: str, value_type: ValueType = ValueType.FLOAT, **labels: str) -> Feature_pb2.FeatureSpecV2:
    return Feature_pb2.FeatureSpecV2(name=name, value_type=value_type, labels=labels)


def file_source(url: str = "file:///data/driver_stats", **kwargs: object) -> DataSource_pb2.DataSource:
    fields = {
        "type": SourceType.BATCH_FILE,
        "event_timestamp_column": "event_timestamp",
        "created_timestamp_column": "created",
        "date_partition_column": "date",
        "field_mapping": {"conv_rate": "conversion_rate"},
        "file_options": DataSource_pb2.DataSource.FileOptions(
            file_format=DataFormat_pb2.FileFormat(parquet_format=DataFormat_pb2.FileFormat.ParquetFormat()),
            file_url=url,
        ),
    }
    fields.update(kwargs)
    return DataSource_pb2.DataSource(**fields)


def kafka_source(topic: str = "driver_trips") -> DataSource_pb2.DataSource:
    return DataSource_pb2.DataSource(
        type=SourceType.STREAM_KAFKA,
        event_timestamp_column="event_timestamp",
        kafka_options=DataSource_pb2.DataSource.KafkaOptions(
            bootstrap_servers="kafka:9092",
            topic=topic,
            message_format=DataFormat_pb2.StreamFormat(
                proto_format=DataFormat_pb2.StreamFormat.ProtoFormat(class_path="com.example.DriverTrip")
            ),
        ),
    )


def table(
    name: str = "driver_hourly",
    entities: tuple[str, ...] = ("driver_id",),
    features: tuple[Feature_pb2.FeatureSpecV2, ...] | None = None,
    max_age_seconds: int = 86400,
    stream: bool = False,
    **labels: str,
) -> FeatureTable_pb2.FeatureTableSpec:
    spec = FeatureTable_pb2.FeatureTableSpec(
        name=name,
        entities=list(entities),
        features=list(features or (feature("conv_rate"), feature("trips", ValueType.INT64))),
        labels=labels,
        max_age=Duration(seconds=max_age_seconds),
        batch_source=file_source(),
    )
    if stream:
        spec.stream_source.CopyFrom(kafka_source())
    return spec
