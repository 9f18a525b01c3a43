"""The arguments of the Spark applications, as JSON: what a launcher passes on the `spark-submit` command line.

Core builds these from the registry (table specs) and the JobService request; the launchers pass them through
unchanged; the applications (ingestion.py, retrieval.py, stream_ingestion.py) parse them with `from_json`. Every validation error
is an InvalidArgument naming the field, the value and what is accepted.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from provender.kernel.errors import InvalidArgument
from provender.kernel.redis_url import with_credentials
from provender.kernel.value_types import VALID_NAMES, ValueType

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_URL_SCHEMES = ("file://", "s3://", "s3a://")
ENTITY_SOURCE_FORMATS = ("parquet", "csv")
OUTPUT_FORMATS = ("parquet",)


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise InvalidArgument(f"{where}.{key}", None, "a value (the field is required)")
    return data[key]


def _str(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default) if default is not None else _require(data, key, where)
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}.{key}", value, "a string")
    return value


def _name(value: str, where: str) -> str:
    if not _NAME.match(value):
        raise InvalidArgument(where, value, "a name matching ^[a-zA-Z_][a-zA-Z0-9_]*$")
    return value


def _redis_url(data: dict[str, Any]) -> str:
    redis_url = _str(data, "redis_url", "args")
    if not redis_url:
        raise InvalidArgument("args.redis_url", redis_url, "redis://host:port, rediss://... or host:port,...")
    return redis_url


def _url(value: str, where: str) -> str:
    if not value.startswith(_URL_SCHEMES):
        raise InvalidArgument(where, value, "a URL starting with file:// or s3://")
    return value


def _value_type(value: Any, where: str) -> ValueType:
    try:
        vt = ValueType.parse(value)
    except (ValueError, TypeError):
        raise InvalidArgument(where, value, f"one of {', '.join(VALID_NAMES)}") from None
    if vt is ValueType.INVALID:
        raise InvalidArgument(where, value, f"one of {', '.join(VALID_NAMES)}")
    return vt


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidArgument(where, value, "an ISO 8601 timestamp string such as 2026-11-20T00:00:00Z")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(where, value, "an ISO 8601 timestamp such as 2026-11-20T00:00:00Z") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def format_timestamp(when: datetime) -> str:
    """ISO 8601 in UTC with a Z, microsecond precision (what `from_json` reads back exactly)."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_file_url(path: str | Path) -> str:
    """A local path as a file:// URL (URLs are returned unchanged)."""
    text = str(path)
    if "://" in text:
        return text
    return Path(text).absolute().as_uri()


@dataclass(frozen=True)
class Column:
    """An entity or a feature: its name and value type."""

    name: str
    value_type: ValueType

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value_type": self.value_type.name}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Column:
        if not isinstance(data, dict):
            raise InvalidArgument(where, data, 'an object {"name": ..., "value_type": ...}')
        return cls(
            name=_name(_str(data, "name", where), f"{where}.name"),
            value_type=_value_type(_require(data, "value_type", where), f"{where}.value_type"),
        )


@dataclass(frozen=True)
class JobSource:
    """A table's batch source, or an entity source: parquet (or CSV for entity sources) at a URL."""

    file_url: str
    event_timestamp_column: str
    created_timestamp_column: str = ""
    date_partition_column: str = ""
    field_mapping: dict[str, str] = field(default_factory=dict)
    file_format: str = "parquet"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_url": self.file_url,
            "event_timestamp_column": self.event_timestamp_column,
            "created_timestamp_column": self.created_timestamp_column,
            "date_partition_column": self.date_partition_column,
            "field_mapping": dict(self.field_mapping),
            "file_format": self.file_format,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> JobSource:
        if not isinstance(data, dict):
            raise InvalidArgument(where, data, "an object with file_url and event_timestamp_column")
        mapping = data.get("field_mapping", {}) or {}
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in mapping.items()
        ):
            raise InvalidArgument(f"{where}.field_mapping", mapping, "an object of source column -> name")
        file_format = _str(data, "file_format", where, "parquet").lower()
        if file_format not in ENTITY_SOURCE_FORMATS:
            raise InvalidArgument(f"{where}.file_format", file_format, " or ".join(ENTITY_SOURCE_FORMATS))
        event_column = _str(data, "event_timestamp_column", where)
        if not event_column:
            raise InvalidArgument(f"{where}.event_timestamp_column", event_column, "a column name")
        return cls(
            file_url=_url(_str(data, "file_url", where), f"{where}.file_url"),
            event_timestamp_column=event_column,
            created_timestamp_column=_str(data, "created_timestamp_column", where, ""),
            date_partition_column=_str(data, "date_partition_column", where, ""),
            field_mapping=dict(mapping),
            file_format=file_format,
        )


@dataclass(frozen=True)
class JobTable:
    """What a job needs of a feature table: entities and features with their types, max_age, batch source."""

    name: str
    entities: tuple[Column, ...]
    features: tuple[Column, ...]
    batch_source: JobSource
    max_age_seconds: int = 0

    def __post_init__(self) -> None:
        if not self.entities:
            raise InvalidArgument(f"table {self.name}.entities", [], "at least one entity")
        if not self.features:
            raise InvalidArgument(f"table {self.name}.features", [], "at least one feature")
        names = [c.name for c in (*self.entities, *self.features)]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"table {self.name}", names, "unique entity and feature names")
        if self.max_age_seconds < 0:
            raise InvalidArgument(f"table {self.name}.max_age_seconds", self.max_age_seconds, "a number >= 0")

    def feature(self, name: str) -> Column:
        for f in self.features:
            if f.name == name:
                return f
        raise InvalidArgument(
            "feature_refs",
            f"{self.name}:{name}",
            f"a feature of {self.name}: {[f.name for f in self.features]}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entities": [c.to_dict() for c in self.entities],
            "features": [c.to_dict() for c in self.features],
            "max_age_seconds": self.max_age_seconds,
            "batch_source": self.batch_source.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> JobTable:
        if not isinstance(data, dict):
            raise InvalidArgument(where, data, "a table spec object")
        name = _name(_str(data, "name", where), f"{where}.name")
        entities = _require(data, "entities", where)
        features = _require(data, "features", where)
        if not isinstance(entities, list) or not isinstance(features, list):
            raise InvalidArgument(f"{where}.entities/features", (entities, features), "lists of columns")
        max_age = data.get("max_age_seconds", 0)
        if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
            raise InvalidArgument(f"{where}.max_age_seconds", max_age, "an integer >= 0 (0: no max age)")
        return cls(
            name=name,
            entities=tuple(Column.from_dict(e, f"{where}.entities[{i}]") for i, e in enumerate(entities)),
            features=tuple(Column.from_dict(f, f"{where}.features[{i}]") for i, f in enumerate(features)),
            batch_source=JobSource.from_dict(_require(data, "batch_source", where), f"{where}.batch_source"),
            max_age_seconds=max_age,
        )


class _JsonArgs:
    """to_json/from_json for the job argument classes."""

    KIND: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps({"kind": self.KIND, **self.to_dict()}, sort_keys=True)


def _load(text: str, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArgument("job arguments", text, f"a JSON object ({e.msg} at {e.pos})") from None
    if not isinstance(data, dict):
        raise InvalidArgument("job arguments", data, "a JSON object")
    if data.get("kind", kind) != kind:
        raise InvalidArgument("job arguments.kind", data.get("kind"), repr(kind))
    return data


@dataclass(frozen=True)
class IngestionJobArgs(_JsonArgs):
    """Offline→online ingestion of one table for the window start ≤ event time < end."""

    KIND: ClassVar[str] = "offline_to_online_ingestion"

    project: str
    table: JobTable
    redis_url: str
    start: datetime
    end: datetime
    dead_letter_location: str
    pushgateway_url: str = ""

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InvalidArgument(
                "end", format_timestamp(self.end), f"a time after start {format_timestamp(self.start)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "table": self.table.to_dict(),
            "redis_url": self.redis_url,
            "start": format_timestamp(self.start),
            "end": format_timestamp(self.end),
            "dead_letter_location": self.dead_letter_location,
            "pushgateway_url": self.pushgateway_url,
        }

    @classmethod
    def from_json(cls, text: str) -> IngestionJobArgs:
        data = _load(text, cls.KIND)
        redis_url = _redis_url(data)
        return cls(
            project=_str(data, "project", "args", "default") or "default",
            table=JobTable.from_dict(_require(data, "table", "args"), "args.table"),
            redis_url=redis_url,
            start=_timestamp(_require(data, "start", "args"), "args.start"),
            end=_timestamp(_require(data, "end", "args"), "args.end"),
            dead_letter_location=_url(
                _str(data, "dead_letter_location", "args"), "args.dead_letter_location"
            ),
            pushgateway_url=_str(data, "pushgateway_url", "args", ""),
        )


STREAM_FORMATS = ("avro", "json", "proto")
# JSON messages have no place in Feast 0.9's StreamFormat: a ProtoFormat of this class path stands for them.
JSON_CLASS_PATH = "json"
STARTING_OFFSETS = ("earliest", "latest")


@dataclass(frozen=True)
class KafkaJobSource:
    """A table's stream source: a Kafka topic whose messages are Avro (schemaless binary, the writer's schema
    given as JSON), JSON objects, or protobuf (a message class importable in the job's environment); the event
    time is a field of the message. `field_mapping` renames message fields to entity and feature names."""

    bootstrap_servers: str
    topic: str
    message_format: str
    event_timestamp_column: str
    schema_json: str = ""
    class_path: str = ""
    created_timestamp_column: str = ""
    field_mapping: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise InvalidArgument(
                "stream_source.bootstrap_servers", self.bootstrap_servers, "host:port[,...]"
            )
        if not self.topic:
            raise InvalidArgument("stream_source.topic", self.topic, "a Kafka topic name")
        if self.message_format not in STREAM_FORMATS:
            raise InvalidArgument(
                "stream_source.message_format", self.message_format, " or ".join(STREAM_FORMATS)
            )
        if self.message_format == "avro" and not self.schema_json:
            raise InvalidArgument("stream_source.schema_json", "", "the Avro schema of the messages, as JSON")
        if self.message_format == "proto" and "." not in self.class_path:
            raise InvalidArgument("stream_source.class_path", self.class_path, "a class path module.Message")
        if not self.event_timestamp_column:
            raise InvalidArgument(
                "stream_source.event_timestamp_column", "", "the message field of event time"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "topic": self.topic,
            "message_format": self.message_format,
            "schema_json": self.schema_json,
            "class_path": self.class_path,
            "event_timestamp_column": self.event_timestamp_column,
            "created_timestamp_column": self.created_timestamp_column,
            "field_mapping": dict(self.field_mapping),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> KafkaJobSource:
        if not isinstance(data, dict):
            raise InvalidArgument(where, data, "an object with bootstrap_servers, topic and message_format")
        mapping = data.get("field_mapping", {}) or {}
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in mapping.items()
        ):
            raise InvalidArgument(f"{where}.field_mapping", mapping, "an object of message field -> name")
        return cls(
            bootstrap_servers=_str(data, "bootstrap_servers", where),
            topic=_str(data, "topic", where),
            message_format=_str(data, "message_format", where).lower(),
            event_timestamp_column=_str(data, "event_timestamp_column", where),
            schema_json=_str(data, "schema_json", where, ""),
            class_path=_str(data, "class_path", where, ""),
            created_timestamp_column=_str(data, "created_timestamp_column", where, ""),
            field_mapping=dict(mapping),
        )


@dataclass(frozen=True)
class StreamIngestionJobArgs(_JsonArgs):
    """Stream→online ingestion of one table, running until cancelled: every `trigger_seconds` the new messages
    are decoded, validated (the invalid and undecodable to dead letters) and written with the write rule.
    `checkpoint_location` is stable for the table and its spec hash, so a restarted job resumes at its committed
    offsets; `starting_offsets` applies only to a job without a checkpoint. `max_messages_per_batch` bounds a
    micro-batch (0: no bound), so that a backlog (a job started on a full topic, or after a long stop) is read
    in batches that fit in memory rather than in one."""

    KIND: ClassVar[str] = "stream_to_online_ingestion"

    project: str
    table: JobTable
    source: KafkaJobSource
    redis_url: str
    checkpoint_location: str
    dead_letter_location: str
    trigger_seconds: float = 1.0
    starting_offsets: str = "earliest"
    metrics_port: int = 0
    max_messages_per_batch: int = 0

    def __post_init__(self) -> None:
        if not self.trigger_seconds > 0:
            raise InvalidArgument("trigger_seconds", self.trigger_seconds, "more than 0 seconds")
        if self.starting_offsets not in STARTING_OFFSETS:
            raise InvalidArgument("starting_offsets", self.starting_offsets, " or ".join(STARTING_OFFSETS))
        if not 0 <= self.metrics_port < 65536:
            raise InvalidArgument("metrics_port", self.metrics_port, "a TCP port (0: none)")
        if self.max_messages_per_batch < 0:
            raise InvalidArgument(
                "max_messages_per_batch", self.max_messages_per_batch, "a number of messages (0: no bound)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "table": self.table.to_dict(),
            "source": self.source.to_dict(),
            "redis_url": self.redis_url,
            "checkpoint_location": self.checkpoint_location,
            "dead_letter_location": self.dead_letter_location,
            "trigger_seconds": self.trigger_seconds,
            "starting_offsets": self.starting_offsets,
            "metrics_port": self.metrics_port,
            "max_messages_per_batch": self.max_messages_per_batch,
        }

    @classmethod
    def from_json(cls, text: str) -> StreamIngestionJobArgs:
        data = _load(text, cls.KIND)
        redis_url = _redis_url(data)
        trigger = data.get("trigger_seconds", 1.0)
        if not isinstance(trigger, int | float) or isinstance(trigger, bool):
            raise InvalidArgument("args.trigger_seconds", trigger, "a number of seconds")
        port = data.get("metrics_port", 0)
        if not isinstance(port, int) or isinstance(port, bool):
            raise InvalidArgument("args.metrics_port", port, "a TCP port number")
        most = data.get("max_messages_per_batch", 0)
        if not isinstance(most, int) or isinstance(most, bool):
            raise InvalidArgument("args.max_messages_per_batch", most, "a number of messages (0: no bound)")
        return cls(
            project=_str(data, "project", "args", "default") or "default",
            table=JobTable.from_dict(_require(data, "table", "args"), "args.table"),
            source=KafkaJobSource.from_dict(_require(data, "source", "args"), "args.source"),
            redis_url=redis_url,
            checkpoint_location=_url(_str(data, "checkpoint_location", "args"), "args.checkpoint_location"),
            dead_letter_location=_url(
                _str(data, "dead_letter_location", "args"), "args.dead_letter_location"
            ),
            trigger_seconds=float(trigger),
            starting_offsets=_str(data, "starting_offsets", "args", "earliest"),
            metrics_port=port,
            max_messages_per_batch=most,
        )


@dataclass(frozen=True)
class FeatureSelection:
    """The features of one table a retrieval asks for."""

    table: JobTable
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.features:
            raise InvalidArgument(f"tables.{self.table.name}.features", [], "at least one feature")
        for f in self.features:
            self.table.feature(f)

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table.to_dict(), "features": list(self.features)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> FeatureSelection:
        if not isinstance(data, dict):
            raise InvalidArgument(where, data, 'an object {"table": ..., "features": [...]}')
        features = _require(data, "features", where)
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise InvalidArgument(f"{where}.features", features, "a list of feature names")
        return cls(
            table=JobTable.from_dict(_require(data, "table", where), f"{where}.table"),
            features=tuple(features),
        )


@dataclass(frozen=True)
class RetrievalJobArgs(_JsonArgs):
    """Historical retrieval: entity rows joined point in time with features of several tables, to parquet."""

    KIND: ClassVar[str] = "historical_retrieval"

    project: str
    entity_source: JobSource
    tables: tuple[FeatureSelection, ...]
    output_location: str
    output_format: str = "parquet"

    def __post_init__(self) -> None:
        if not self.tables:
            raise InvalidArgument("feature_refs", [], "at least one feature reference table:feature")
        names = [t.table.name for t in self.tables]
        if len(set(names)) != len(names):
            raise InvalidArgument("tables", names, "each table once")
        if self.output_format not in OUTPUT_FORMATS:
            raise InvalidArgument("output_format", self.output_format, " or ".join(OUTPUT_FORMATS))

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "entity_source": self.entity_source.to_dict(),
            "tables": [t.to_dict() for t in self.tables],
            "output_location": self.output_location,
            "output_format": self.output_format,
        }

    @classmethod
    def from_json(cls, text: str) -> RetrievalJobArgs:
        data = _load(text, cls.KIND)
        tables = _require(data, "tables", "args")
        if not isinstance(tables, list):
            raise InvalidArgument("args.tables", tables, "a list of feature selections")
        return cls(
            project=_str(data, "project", "args", "default") or "default",
            entity_source=JobSource.from_dict(_require(data, "entity_source", "args"), "args.entity_source"),
            tables=tuple(FeatureSelection.from_dict(t, f"args.tables[{i}]") for i, t in enumerate(tables)),
            output_location=_url(_str(data, "output_location", "args"), "args.output_location"),
            output_format=_str(data, "output_format", "args", "parquet").lower() or "parquet",
        )


JobArgs = IngestionJobArgs | RetrievalJobArgs | StreamIngestionJobArgs

_APPLICATIONS: dict[str, str] = {
    IngestionJobArgs.KIND: "ingestion.py",
    RetrievalJobArgs.KIND: "retrieval.py",
    StreamIngestionJobArgs.KIND: "stream_ingestion.py",
}


def _applications_folder() -> Path:
    """The folder of the Spark applications (the provender.jobs package), found without importing it (it needs
    pyspark, which Core's process does not)."""
    spec = find_spec("provender.jobs")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the Spark applications (provender.jobs) are not installed: pip install 'provender[spark]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def application_path(args: JobArgs) -> Path:
    """The PySpark program a launcher submits for these arguments (a file of provender.jobs)."""
    return _applications_folder() / _APPLICATIONS[args.KIND]


def warm_driver_path() -> Path:
    """The PySpark program of the long-lived local driver that runs these applications in one Spark."""
    return _applications_folder() / "warm_driver.py"


# Secrets are not job arguments: Core writes `redis_url` without its user and password (the arguments are kept in
# job records, argument files and SparkApplication specs), and launchers give the job's driver this environment
# variable, a Redis URL whose credentials the job uses (locally from Core's own settings; on Kubernetes from the
# Secret that holds Core's). Executors get them from the driver, inside the job's tasks.
REDIS_URL_ENV = "PROVENDER_REDIS_URL"
A = TypeVar("A")


def with_secrets(args: A, environ: Mapping[str, str]) -> A:
    """The arguments as the job's driver uses them: `redis_url` with the credentials of REDIS_URL_ENV."""
    redis_url = getattr(args, "redis_url", "")
    if not redis_url:
        return args
    return dataclasses.replace(  # type: ignore[type-var]
        args, redis_url=with_credentials(redis_url, environ.get(REDIS_URL_ENV, ""))
    )


def read_argument(argument: str) -> str:
    """The JSON of a job's command-line argument: the JSON itself, or `@<path>` of a file holding it."""
    if not argument.startswith("@"):
        return argument
    try:
        return Path(argument[1:]).read_text()
    except OSError as e:
        raise InvalidArgument(
            "job arguments", argument, f"JSON, or @ and a readable file of JSON ({e.strerror})"
        ) from None


def parse_job_args(text: str) -> JobArgs:
    """Either kind of arguments, by their "kind" field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArgument("job arguments", text, f"a JSON object ({e.msg} at {e.pos})") from None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == IngestionJobArgs.KIND:
        return IngestionJobArgs.from_json(text)
    if kind == RetrievalJobArgs.KIND:
        return RetrievalJobArgs.from_json(text)
    if kind == StreamIngestionJobArgs.KIND:
        return StreamIngestionJobArgs.from_json(text)
    raise InvalidArgument("job arguments.kind", kind, " or ".join(repr(k) for k in _APPLICATIONS))
