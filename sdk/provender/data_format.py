"""File and stream formats of data sources: ParquetFormat for files; AvroFormat, ProtoFormat and JsonFormat for
streams. JsonFormat is Provender's: Feast 0.9's StreamFormat has no JSON, so on the wire it is a ProtoFormat whose
class path is "json" (a Feast 0.9 client sees that ProtoFormat)."""

from __future__ import annotations

from dataclasses import dataclass

from provender.kernel.jobs.args import JSON_CLASS_PATH
from provender.proto.feast.core import DataFormat_pb2


@dataclass(frozen=True)
class ParquetFormat:
    def to_proto(self) -> DataFormat_pb2.FileFormat:
        return DataFormat_pb2.FileFormat(parquet_format=DataFormat_pb2.FileFormat.ParquetFormat())

    def to_dict(self) -> dict[str, str]:
        return {"format": "parquet"}


@dataclass(frozen=True)
class AvroFormat:
    schema_json: str

    def to_proto(self) -> DataFormat_pb2.StreamFormat:
        return DataFormat_pb2.StreamFormat(
            avro_format=DataFormat_pb2.StreamFormat.AvroFormat(schema_json=self.schema_json)
        )

    def to_dict(self) -> dict[str, str]:
        return {"format": "avro", "schema_json": self.schema_json}


@dataclass(frozen=True)
class ProtoFormat:
    class_path: str

    def to_proto(self) -> DataFormat_pb2.StreamFormat:
        return DataFormat_pb2.StreamFormat(
            proto_format=DataFormat_pb2.StreamFormat.ProtoFormat(class_path=self.class_path)
        )

    def to_dict(self) -> dict[str, str]:
        return {"format": "proto", "class_path": self.class_path}


@dataclass(frozen=True)
class JsonFormat:
    """One JSON object per message; every field is converted to its declared type (ISO 8601 event times)."""

    def to_proto(self) -> DataFormat_pb2.StreamFormat:
        return ProtoFormat(JSON_CLASS_PATH).to_proto()

    def to_dict(self) -> dict[str, str]:
        return {"format": "json"}


StreamFormat = AvroFormat | ProtoFormat | JsonFormat


def file_format_from_proto(proto: DataFormat_pb2.FileFormat) -> ParquetFormat:
    if proto.WhichOneof("format") == "parquet_format":
        return ParquetFormat()
    raise ValueError(f"unsupported file format {proto.WhichOneof('format')!r}; expected parquet")


def stream_format_from_proto(proto: DataFormat_pb2.StreamFormat) -> StreamFormat:
    kind = proto.WhichOneof("format")
    if kind == "avro_format":
        return AvroFormat(proto.avro_format.schema_json)
    if kind == "proto_format" and proto.proto_format.class_path == JSON_CLASS_PATH:
        return JsonFormat()
    if kind == "proto_format":
        return ProtoFormat(proto.proto_format.class_path)
    raise ValueError(f"unsupported stream format {kind!r}; expected avro, proto or json")


def format_from_dict(data: dict[str, str]) -> ParquetFormat | StreamFormat:
    kind = str(data.get("format", "")).lower()
    if kind == "parquet":
        return ParquetFormat()
    if kind == "avro":
        return AvroFormat(data["schema_json"])
    if kind == "proto":
        return ProtoFormat(data["class_path"])
    if kind == "json":
        return JsonFormat()
    raise ValueError(f"format: {kind!r} is not valid; expected parquet, avro, proto or json")
