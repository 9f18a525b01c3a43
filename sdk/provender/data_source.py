"""Where a feature table's rows come from: a FileSource (parquet on file:// or s3://) for batch data, a
KafkaSource for a stream. Keyword arguments are those of Feast 0.9."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provender.data_format import (
    ParquetFormat,
    StreamFormat,
    file_format_from_proto,
    format_from_dict,
    stream_format_from_proto,
)
from provender.proto.feast.core import DataSource_pb2

SourceType = DataSource_pb2.DataSource.SourceType


@dataclass
class FileSource:
    """Parquet files under `file_url` (a folder, possibly partitioned by `date_partition_column`)."""

    event_timestamp_column: str
    file_format: ParquetFormat = field(default_factory=ParquetFormat)
    file_url: str = ""
    created_timestamp_column: str = ""
    field_mapping: dict[str, str] = field(default_factory=dict)
    date_partition_column: str = ""
    path: str = ""  # Feast 0.9's alias of file_url

    def __post_init__(self) -> None:
        if self.path and not self.file_url:
            self.file_url = self.path
        self.path = ""
        if not self.file_url:
            raise ValueError(
                "FileSource: file_url is required, e.g. file:///data/driver_stats or s3://bucket/path"
            )
        self.field_mapping = dict(self.field_mapping or {})

    def to_proto(self) -> DataSource_pb2.DataSource:
        return DataSource_pb2.DataSource(
            type=SourceType.BATCH_FILE,
            field_mapping=self.field_mapping,
            event_timestamp_column=self.event_timestamp_column,
            created_timestamp_column=self.created_timestamp_column,
            date_partition_column=self.date_partition_column,
            file_options=DataSource_pb2.DataSource.FileOptions(
                file_format=self.file_format.to_proto(), file_url=self.file_url
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "file", "file_url": self.file_url, **self.file_format.to_dict()}
        out.update(_common_dict(self))
        return out


@dataclass
class KafkaSource:
    """A Kafka topic of Avro or Protobuf messages."""

    event_timestamp_column: str
    bootstrap_servers: str
    message_format: StreamFormat
    topic: str
    created_timestamp_column: str = ""
    field_mapping: dict[str, str] = field(default_factory=dict)
    date_partition_column: str = ""

    def __post_init__(self) -> None:
        self.field_mapping = dict(self.field_mapping or {})

    def to_proto(self) -> DataSource_pb2.DataSource:
        return DataSource_pb2.DataSource(
            type=SourceType.STREAM_KAFKA,
            field_mapping=self.field_mapping,
            event_timestamp_column=self.event_timestamp_column,
            created_timestamp_column=self.created_timestamp_column,
            date_partition_column=self.date_partition_column,
            kafka_options=DataSource_pb2.DataSource.KafkaOptions(
                bootstrap_servers=self.bootstrap_servers,
                topic=self.topic,
                message_format=self.message_format.to_proto(),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "kafka",
            "bootstrap_servers": self.bootstrap_servers,
            "topic": self.topic,
            **self.message_format.to_dict(),
        }
        out.update(_common_dict(self))
        return out


DataSource = FileSource | KafkaSource


def _common_dict(source: FileSource | KafkaSource) -> dict[str, Any]:
    out: dict[str, Any] = {"event_timestamp_column": source.event_timestamp_column}
    for name in ("created_timestamp_column", "date_partition_column"):
        if getattr(source, name):
            out[name] = getattr(source, name)
    if source.field_mapping:
        out["field_mapping"] = dict(source.field_mapping)
    return out


def source_from_proto(proto: DataSource_pb2.DataSource) -> DataSource:
    common = {
        "event_timestamp_column": proto.event_timestamp_column,
        "created_timestamp_column": proto.created_timestamp_column,
        "field_mapping": dict(proto.field_mapping),
        "date_partition_column": proto.date_partition_column,
    }
    kind = proto.WhichOneof("options")
    if kind == "file_options":
        return FileSource(
            file_url=proto.file_options.file_url,
            file_format=file_format_from_proto(proto.file_options.file_format),
            **common,
        )
    if kind == "kafka_options":
        k = proto.kafka_options
        return KafkaSource(
            bootstrap_servers=k.bootstrap_servers,
            topic=k.topic,
            message_format=stream_format_from_proto(k.message_format),
            **common,
        )
    raise ValueError(f"source options {kind!r} are not supported by this SDK; expected file or kafka")


def source_from_dict(data: dict[str, Any]) -> DataSource:
    data = dict(data)
    kind = str(data.pop("kind", "file")).lower()
    fmt = format_from_dict({"format": data.pop("format", "parquet" if kind == "file" else ""),
                            **{k: data.pop(k) for k in ("schema_json", "class_path") if k in data}})  # fmt: skip
    if kind == "file":
        return FileSource(file_format=fmt, **data)  # type: ignore[arg-type]
    if kind == "kafka":
        return KafkaSource(message_format=fmt, **data)  # type: ignore[arg-type]
    raise ValueError(f"source kind: {kind!r} is not valid; expected file or kafka")
