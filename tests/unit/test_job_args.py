"""The Spark jobs' JSON arguments: round trips, and errors that name the field, the value and what is accepted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.args import (
    REDIS_URL_ENV,
    Column,
    FeatureSelection,
    IngestionJobArgs,
    JobSource,
    JobTable,
    KafkaJobSource,
    RetrievalJobArgs,
    StreamIngestionJobArgs,
    application_path,
    parse_job_args,
    read_argument,
    with_secrets,
)
from provender.kernel.value_types import ValueType

TABLE = JobTable(
    name="driver_hourly",
    entities=(Column("driver_id", ValueType.INT64),),
    features=(Column("conv_rate", ValueType.FLOAT), Column("tags", ValueType.STRING_LIST)),
    batch_source=JobSource(
        "s3://bucket/drivers", "event_timestamp", "created", "date", {"src_conv": "conv_rate"}
    ),
    max_age_seconds=7200,
)
INGESTION = IngestionJobArgs(
    project="p",
    table=TABLE,
    redis_url="redis://127.0.0.1:6379",
    start=datetime(2026, 11, 20, tzinfo=UTC),
    end=datetime(2026, 11, 21, 0, 0, 0, 123456, tzinfo=UTC),
    dead_letter_location="file:///tmp/dead",
    pushgateway_url="http://127.0.0.1:9091",
)
RETRIEVAL = RetrievalJobArgs(
    project="p",
    entity_source=JobSource("file:///tmp/e.csv", "event_timestamp", file_format="csv"),
    tables=(FeatureSelection(TABLE, ("conv_rate",)),),
    output_location="file:///tmp/out",
)
STREAM = StreamIngestionJobArgs(
    project="p",
    table=TABLE,
    source=KafkaJobSource("kafka:9092", "driver_trips", "json", "event_timestamp"),
    redis_url="redis://127.0.0.1:6379",
    checkpoint_location="file:///tmp/checkpoints/p/driver_hourly/0123",
    dead_letter_location="file:///tmp/dead",
    trigger_seconds=0.5,
    starting_offsets="latest",
    metrics_port=8090,
    max_messages_per_batch=1000,
)


def test_round_trips() -> None:
    assert IngestionJobArgs.from_json(INGESTION.to_json()) == INGESTION
    assert RetrievalJobArgs.from_json(RETRIEVAL.to_json()) == RETRIEVAL
    assert StreamIngestionJobArgs.from_json(STREAM.to_json()) == STREAM


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_messages_per_batch", -1, "0: no bound"),
        ("max_messages_per_batch", True, "0: no bound"),
        ("trigger_seconds", 0, "more than 0 seconds"),
        ("starting_offsets", "newest", "earliest or latest"),
    ],
)
def test_stream_errors_name_the_field_and_what_is_accepted(key, value, expected) -> None:
    data = json.loads(STREAM.to_json())
    data[key] = value
    with pytest.raises(InvalidArgument) as info:
        StreamIngestionJobArgs.from_json(json.dumps(data))
    assert info.value.field.endswith(key) and expected in info.value.message
    assert parse_job_args(INGESTION.to_json()) == INGESTION
    assert parse_job_args(RETRIEVAL.to_json()) == RETRIEVAL


def test_application_paths_are_the_job_programs() -> None:
    assert application_path(INGESTION).name == "ingestion.py" and application_path(INGESTION).is_file()
    assert application_path(RETRIEVAL).name == "retrieval.py" and application_path(RETRIEVAL).is_file()


def _broken(path: list[str | int], value: object) -> str:
    data = json.loads(INGESTION.to_json())
    node = data
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("path", "value", "field", "expected"),
    [
        (["table", "features", 0, "value_type"], "DECIMAL", "args.table.features[0].value_type", "FLOAT"),
        (["table", "name"], "bad name", "args.table.name", "a name matching"),
        (
            ["table", "batch_source", "file_url"],
            "gs://x",
            "args.table.batch_source.file_url",
            "file:// or s3://",
        ),
        (["table", "max_age_seconds"], -1, "args.table.max_age_seconds", "an integer >= 0"),
        (["start"], "yesterday", "args.start", "ISO 8601"),
        (["end"], "2026-11-19T00:00:00Z", "end", "a time after start"),
        (["kind"], "something", "job arguments.kind", "offline_to_online_ingestion"),
    ],
)
def test_errors_name_the_field_and_what_is_accepted(path, value, field, expected) -> None:
    with pytest.raises(InvalidArgument) as info:
        IngestionJobArgs.from_json(_broken(path, value))
    assert info.value.field == field
    assert expected in info.value.message


def test_missing_field_and_not_json() -> None:
    data = json.loads(INGESTION.to_json())
    del data["redis_url"]
    with pytest.raises(InvalidArgument, match=r"args\.redis_url"):
        IngestionJobArgs.from_json(json.dumps(data))
    with pytest.raises(InvalidArgument, match="a JSON object"):
        parse_job_args("{nope")


def test_retrieval_rejects_unknown_features_and_formats() -> None:
    with pytest.raises(InvalidArgument, match="a feature of driver_hourly"):
        FeatureSelection(TABLE, ("nope",))
    with pytest.raises(InvalidArgument, match="output_format"):
        RetrievalJobArgs("p", RETRIEVAL.entity_source, RETRIEVAL.tables, "file:///o", output_format="avro")


def test_arguments_from_a_file(tmp_path) -> None:
    path = tmp_path / "args.json"
    path.write_text(INGESTION.to_json())
    assert IngestionJobArgs.from_json(read_argument(f"@{path}")) == INGESTION
    assert read_argument('{"kind": "x"}') == '{"kind": "x"}'
    with pytest.raises(InvalidArgument, match="readable file"):
        read_argument(f"@{tmp_path / 'missing.json'}")


def test_jobs_take_the_redis_credentials_of_their_environment() -> None:
    """Core writes the Redis URL without its password; the driver adds that of PROVENDER_REDIS_URL."""
    for args in (INGESTION, STREAM):
        assert with_secrets(args, {}) == args
        secret = with_secrets(args, {REDIS_URL_ENV: "redis://:pw@127.0.0.1:6379"})
        assert secret.redis_url == "redis://:pw@127.0.0.1:6379"
    assert with_secrets(RETRIEVAL, {REDIS_URL_ENV: "redis://:pw@127.0.0.1:6379"}) == RETRIEVAL
