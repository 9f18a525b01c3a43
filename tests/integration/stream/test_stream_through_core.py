"""A stream as a user runs it: the SDK registers a table with a KafkaSource, starts its stream job through Core's
JobService (the local launcher, with the Kafka and Avro jars), produces rows to its topic in the table's format,
and reads them back through Serving. The same start twice is the same job (one job per table spec hash), the
job is listed and described as a stream with its hash and latest micro-batch, and CancelJob stops it."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from provender import AvroFormat, Client, Entity, Feature, FeatureTable, FileSource, KafkaSource, ValueType
from provender.local.kafka import KafkaNotAvailable, spark_kafka_jars
from tests.conftest import running_platform

from .conftest import missing

SCHEMA = {
    "type": "record",
    "name": "DriverTrip",
    "fields": [
        {"name": "driver_id", "type": "long"},
        {"name": "trips_today", "type": "int"},
        {"name": "event_timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}
STARTUP_SECONDS = 180


@pytest.fixture(scope="module")
def jars() -> list[str]:
    try:
        return [str(j) for j in spark_kafka_jars()]
    except KafkaNotAvailable as e:
        missing(str(e))
        raise


def trips_table(bootstrap: str, topic: str, max_age: timedelta) -> FeatureTable:
    return FeatureTable(
        name="driver_trips",
        entities=["driver_id"],
        features=[Feature("trips_today", ValueType.INT32)],
        batch_source=FileSource(
            event_timestamp_column="event_timestamp", file_url="file:///tmp/unused-trips"
        ),
        stream_source=KafkaSource(
            event_timestamp_column="event_timestamp",
            bootstrap_servers=bootstrap,
            topic=topic,
            message_format=AvroFormat(json.dumps(SCHEMA)),
        ),
        max_age=max_age,
    )


def online(client: Client, drivers: list[int]) -> dict[str, list]:
    return client.get_online_features(
        ["driver_trips:trips_today"], entity_rows=[{"driver_id": d} for d in drivers]
    ).to_dict()


def test_a_table_streams_through_core_to_serving(postgres, redis_server, redis, kafka_broker, jars, tmp_path):
    topic = f"trips-{uuid.uuid4().hex[:10]}"
    with running_platform(postgres, redis_server, tmp_path, "streams", spark_jars=jars) as platform:
        client = Client(core_url=platform.core_url, serving_url=platform.serving_url)
        client.apply(
            [
                Entity("driver_id", ValueType.INT64),
                trips_table(kafka_broker.bootstrap_servers, topic, timedelta(days=1)),
            ]
        )
        job = client.start_stream_to_online_ingestion("driver_trips")
        assert client.start_stream_to_online_ingestion("driver_trips").get_id() == job.get_id()
        now = datetime.now(UTC)
        rows = pd.DataFrame(
            {
                "driver_id": [1001, 1002, 1001],
                "trips_today": [3, 7, 4],
                "event_timestamp": [
                    now - timedelta(minutes=10),
                    now - timedelta(minutes=5),
                    now - timedelta(minutes=1),
                ],
            }
        )
        assert client.produce_to_stream("driver_trips", rows).messages == 3
        want = {"driver_id": [1001, 1002, 1003], "driver_trips:trips_today": [4, 7, None]}
        deadline = time.monotonic() + STARTUP_SECONDS
        while online(client, [1001, 1002, 1003]) != want:
            info = client.get_job(job.get_id())
            assert info.status in ("PENDING", "RUNNING"), f"stream job {info.status}: {info.error_message}"
            assert time.monotonic() < deadline, (
                f"not online after {STARTUP_SECONDS} s: {online(client, [1001, 1002, 1003])}"
            )
            time.sleep(0.5)

        info = client.get_job(job.get_id())
        table_hash = client.get_feature_table("driver_trips").hash
        assert (info.type, info.status, info.table_name, info.hash) == (
            "STREAM_INGESTION_JOB", "RUNNING", "driver_trips", table_hash,
        )  # fmt: skip
        assert info.report["rows_written"] >= 1 and info.report["offsets"]
        assert [j.id for j in client.list_jobs(include_terminated=False, job_type="stream")] == [job.get_id()]
        assert client.list_jobs(job_type="batch") == []

        client.cancel_job(job.get_id())
        assert client.get_job(job.get_id()).status == "ERROR"
        # a new start after the cancel is a new attempt of the same spec: it resumes from the checkpoint
        again = client.start_stream_to_online_ingestion("driver_trips")
        assert again.get_id() == f"{job.get_id()}-2"
        client.cancel_job(again.get_id())
