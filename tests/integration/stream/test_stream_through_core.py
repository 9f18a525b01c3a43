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

from provender import AvroFormat, Client, Entity, Feature, FeatureTable, FileSource, KafkaSource, ValueType
from tests.conftest import running_platform

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


def wait_online(client: Client, want: dict, job_id: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    drivers = want["driver_id"]
    while (got := online(client, drivers)) != want:
        info = client.get_job(job_id)
        assert info.status in ("PENDING", "RUNNING"), f"stream job {info.status}: {info.error_message}"
        assert time.monotonic() < deadline, f"not online after {STARTUP_SECONDS} s: {got}"
        time.sleep(0.5)


def trips(drivers: list[int], counts: list[int], minutes_ago: list[int]) -> pd.DataFrame:
    now = datetime.now(UTC)
    return pd.DataFrame(
        {
            "driver_id": drivers,
            "trips_today": counts,
            "event_timestamp": [now - timedelta(minutes=m) for m in minutes_ago],
        }
    )


def test_a_table_streams_through_core_to_serving(
    postgres, redis_server, redis, kafka_broker, kafka_jars, tmp_path
):
    """Core's control loop starts the job when the table is applied; StartStreamToOnlineIngestionJob returns
    that job; a changed table gets a new job, and the old one is cancelled only once the new one runs, so that
    messages produced meanwhile arrive. The table names no brokers: Core's stream job reads the deployment's
    Kafka (--kafka-bootstrap-servers) and the SDK produces to the one it is given."""
    topic = f"trips-{uuid.uuid4().hex[:10]}"
    brokers = kafka_broker.bootstrap_servers
    settings = {
        "spark_jars": kafka_jars,
        "stream_restart_backoff_seconds": 2.0,
        "kafka_bootstrap_servers": brokers,
    }
    with running_platform(postgres, redis_server, tmp_path, "streams", **settings) as platform:
        client = Client(
            core_url=platform.core_url, serving_url=platform.serving_url, kafka_bootstrap_servers=brokers
        )
        table = trips_table("", topic, timedelta(days=1))
        client.apply([Entity("driver_id", ValueType.INT64), table])
        assert (
            client.produce_to_stream(
                "driver_trips", trips([1001, 1002, 1001], [3, 7, 4], [10, 5, 1])
            ).messages
            == 3
        )
        deadline = time.monotonic() + 30
        while not (running := client.list_jobs(include_terminated=False, job_type="stream")):
            assert time.monotonic() < deadline, "the control loop started no stream job"
            time.sleep(0.5)
        [first] = running
        assert client.start_stream_to_online_ingestion("driver_trips").get_id() == first.id
        wait_online(
            client, {"driver_id": [1001, 1002, 1003], "driver_trips:trips_today": [4, 7, None]}, first.id
        )

        deadline = time.monotonic() + 10  # the batch's progress line follows its writes
        while not (info := client.get_job(first.id)).report and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (info.type, info.status, info.table_name) == (
            "STREAM_INGESTION_JOB",
            "RUNNING",
            "driver_trips",
        )
        assert len(info.hash) == 16 and info.report["rows_written"] >= 1 and info.report["offsets"]
        assert client.list_jobs(job_type="batch") == []

        # a new max_age is a new job; messages produced while the jobs swap all arrive
        client.apply(trips_table("", topic, timedelta(hours=12)))
        for i in range(10):
            client.produce_to_stream("driver_trips", trips([2000 + i], [i], [0]))
            time.sleep(1)
        want = {"driver_id": [1001, *range(2000, 2010)], "driver_trips:trips_today": [4, *range(10)]}
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            jobs = {j.id: j for j in client.list_jobs(job_type="stream")}
            if jobs[first.id].status == "ERROR" and online(client, want["driver_id"]) == want:
                break
            assert time.monotonic() < deadline, f"no swap: {jobs}, online {online(client, want['driver_id'])}"
            time.sleep(0.5)
        [second] = [j for j in jobs.values() if j.id != first.id]
        assert second.status == "RUNNING" and second.hash != info.hash
        assert jobs[first.id].error_message.startswith("cancelled by the stream control loop")

        client.cancel_job(second.id)
        assert client.get_job(second.id).status == "ERROR"
        time.sleep(3)  # a job cancelled by request is not restarted by the loop
        assert client.list_jobs(include_terminated=False, job_type="stream") == []
