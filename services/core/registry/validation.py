"""Validation of registry specs: every rule a spec must satisfy before it is stored.

Pure functions over the protobuf specs; each failure is an InvalidArgument naming the field path, the value
and what would be accepted. Rules that need the database (entities exist, immutable fields) live in
registry.service.
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.message import Message

from provender.kernel.errors import InvalidArgument, shown
from provender.kernel.names import MAX_NAME_LENGTH, NAME_RULE, is_valid_name
from provender.kernel.timestamps import MAX_DURATION_SECONDS
from provender.kernel.value_types import VALID_NAMES, VALID_TYPES, ValueType
from provender.proto.feast.core import DataSource_pb2, Entity_pb2, Feature_pb2, FeatureTable_pb2

RESERVED_FEATURE_NAMES = frozenset({"created_timestamp", "event_timestamp"})
DEFAULT_PROJECT = "default"

SourceType = DataSource_pb2.DataSource.SourceType
BATCH_SOURCE_OPTIONS = {SourceType.BATCH_FILE: "file_options", SourceType.BATCH_BIGQUERY: "bigquery_options"}
STREAM_SOURCE_OPTIONS = {
    SourceType.STREAM_KAFKA: "kafka_options",
    SourceType.STREAM_KINESIS: "kinesis_options",
}


# Bounds of what one spec may hold, so that one table cannot break listing its project or Serving's reloads.
MAX_SPEC_BYTES = 1 << 20  # a whole entity or feature table spec, serialized
MAX_TEXT_LENGTH = 64 * 1024  # any one string (a description, a URL, a query)
MAX_LABELS = 100  # labels of one object
MAX_LABEL_KEY_LENGTH, MAX_LABEL_VALUE_LENGTH = 255, 4096


def check_size(field: str, message: Message) -> None:
    size = message.ByteSize()
    if size > MAX_SPEC_BYTES:
        raise InvalidArgument(field, f"{size} bytes", f"a spec of at most {MAX_SPEC_BYTES} bytes serialized")


def _check_string(field: str, text: str) -> None:
    if "\x00" in text:
        raise InvalidArgument(field, text, "text without NUL characters")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidArgument(
            field, f"{len(text)} characters", f"text of at most {MAX_TEXT_LENGTH} characters"
        )


def check_text(field: str, message: Message) -> None:
    """No string anywhere in `message` may hold a NUL character (PostgreSQL cannot store one) or be longer than
    MAX_TEXT_LENGTH."""
    for descriptor, value in message.ListFields():
        path = f"{field}.{descriptor.name}"
        if descriptor.type == descriptor.TYPE_STRING:
            items = value if descriptor.is_repeated else [value]
            for i, item in enumerate(items):
                _check_string(path if not descriptor.is_repeated else f"{path}[{i}]", item)
        elif descriptor.type == descriptor.TYPE_MESSAGE:
            if descriptor.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    for text in (key, item if isinstance(item, str) else ""):
                        _check_string(f"{path}[{shown(key)}]", text)
                    if isinstance(item, Message):
                        check_text(f"{path}[{key!r}]", item)
            elif descriptor.is_repeated:
                for i, item in enumerate(value):
                    check_text(f"{path}[{i}]", item)
            else:
                check_text(path, value)


def check_name(field: str, value: str) -> str:
    if not is_valid_name(value):
        raise InvalidArgument(field, value, NAME_RULE + f", at most {MAX_NAME_LENGTH} characters")
    return value


def project_name(value: str, field: str = "project") -> str:
    """The project a request means: empty is `default`."""
    return check_name(field, value) if value else DEFAULT_PROJECT


def check_labels(field: str, labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(field, f"{len(labels)} labels", f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not key.strip() or len(key) > MAX_LABEL_KEY_LENGTH:
            raise InvalidArgument(
                f"{field} key", key, f"a non-empty label key of at most {MAX_LABEL_KEY_LENGTH} characters"
            )
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            raise InvalidArgument(
                f"{field}[{shown(key)}]",
                f"{len(value)} characters",
                f"a label value of at most {MAX_LABEL_VALUE_LENGTH} characters",
            )


def check_value_type(field: str, value_type: int) -> ValueType:
    if value_type not in {t.value for t in VALID_TYPES}:
        name = ValueType(value_type).name if value_type in ValueType._value2member_map_ else value_type
        raise InvalidArgument(field, name, f"one of {', '.join(VALID_NAMES)}")
    return ValueType(value_type)


def validate_entity(spec: Entity_pb2.EntitySpecV2) -> None:
    check_name("spec.name", spec.name)
    check_size("spec", spec)
    check_text("spec", spec)
    check_value_type("spec.value_type", spec.value_type)
    check_labels("spec.labels", spec.labels)


def validate_feature(field: str, spec: Feature_pb2.FeatureSpecV2) -> None:
    check_name(f"{field}.name", spec.name)
    if spec.name in RESERVED_FEATURE_NAMES:
        raise InvalidArgument(
            f"{field}.name",
            spec.name,
            f"a name other than the reserved {', '.join(sorted(RESERVED_FEATURE_NAMES))}",
        )
    check_value_type(f"{field}.value_type", spec.value_type)
    check_labels(f"{field}.labels", spec.labels)


def validate_source(
    field: str, source: DataSource_pb2.DataSource, allowed: Mapping[int, str], kafka_default: str = ""
) -> None:
    """`kafka_default`: the deployment's Kafka (Core's --kafka-bootstrap-servers), which a KafkaSource that
    names no brokers reads; without it a KafkaSource must name its brokers."""
    kinds = ", ".join(SourceType.Name(t) for t in allowed)
    if source.type not in allowed:
        shown = SourceType.Name(source.type) if source.type in SourceType.values() else source.type
        raise InvalidArgument(f"{field}.type", shown, f"one of {kinds}")
    expected_options = allowed[source.type]
    options = source.WhichOneof("options")
    if options != expected_options:
        raise InvalidArgument(
            f"{field}.options", options, f"{expected_options} for a {SourceType.Name(source.type)} source"
        )
    if not source.event_timestamp_column:
        raise InvalidArgument(f"{field}.event_timestamp_column", "", "the name of the event time column")
    for key, column in source.field_mapping.items():
        if not key or not column:
            raise InvalidArgument(f"{field}.field_mapping", {key: column}, "non-empty names on both sides")
    if options == "file_options":
        url = source.file_options.file_url
        if not url:
            raise InvalidArgument(
                f"{field}.file_options.file_url", url, "a URL such as file:///data/x or s3://b/x"
            )
        if source.file_options.file_format.WhichOneof("format") is None:
            raise InvalidArgument(f"{field}.file_options.file_format", "unset", "a file format (parquet)")
    elif options == "bigquery_options" and not source.bigquery_options.table_ref:
        raise InvalidArgument(
            f"{field}.bigquery_options.table_ref", "", "a table reference project:dataset.table"
        )
    elif options == "kafka_options":
        kafka = source.kafka_options
        if not kafka.bootstrap_servers and not kafka_default:
            raise InvalidArgument(
                f"{field}.kafka_options.bootstrap_servers",
                "",
                "host:port[,host:port...] (or start Core with --kafka-bootstrap-servers, the brokers a "
                "KafkaSource that names none reads)",
            )
        if not kafka.topic:
            raise InvalidArgument(f"{field}.kafka_options.topic", "", "a topic name")
        if kafka.message_format.WhichOneof("format") is None:
            raise InvalidArgument(
                f"{field}.kafka_options.message_format", "unset", "avro_format or proto_format"
            )
    elif options == "kinesis_options":
        kinesis = source.kinesis_options
        if not kinesis.region or not kinesis.stream_name:
            raise InvalidArgument(f"{field}.kinesis_options", "incomplete", "a region and a stream_name")
        if kinesis.record_format.WhichOneof("format") is None:
            raise InvalidArgument(
                f"{field}.kinesis_options.record_format", "unset", "avro_format or proto_format"
            )


def validate_feature_table(spec: FeatureTable_pb2.FeatureTableSpec, kafka_default: str = "") -> None:
    check_name("table_spec.name", spec.name)
    check_size("table_spec", spec)
    check_text("table_spec", spec)
    if not spec.entities:
        raise InvalidArgument("table_spec.entities", [], "at least one entity name")
    seen: set[str] = set()
    for i, entity in enumerate(spec.entities):
        check_name(f"table_spec.entities[{i}]", entity)
        if entity in seen:
            raise InvalidArgument(f"table_spec.entities[{i}]", entity, "each entity listed once")
        seen.add(entity)
    if not spec.features:
        raise InvalidArgument("table_spec.features", [], "at least one feature")
    names: set[str] = set()
    for i, feature in enumerate(spec.features):
        validate_feature(f"table_spec.features[{i}]", feature)
        if feature.name in names:
            raise InvalidArgument(
                f"table_spec.features[{i}].name", feature.name, "a name unique within the table"
            )
        names.add(feature.name)
    check_labels("table_spec.labels", spec.labels)
    if not (0 <= spec.max_age.seconds <= MAX_DURATION_SECONDS and 0 <= spec.max_age.nanos < 1_000_000_000):
        raise InvalidArgument(
            "table_spec.max_age",
            f"{spec.max_age.seconds}s {spec.max_age.nanos}ns",
            "a duration of zero or more, at most 10,000 years",
        )
    if not spec.HasField("batch_source"):
        raise InvalidArgument(
            "table_spec.batch_source", "unset", "a batch source (a file or BigQuery source)"
        )
    validate_source("table_spec.batch_source", spec.batch_source, BATCH_SOURCE_OPTIONS)
    if spec.HasField("stream_source"):
        validate_source("table_spec.stream_source", spec.stream_source, STREAM_SOURCE_OPTIONS, kafka_default)
