"""The real feast-spark client starts a stream job through our JobService, Avro messages encoded as a Feast 0.9
user encodes them go through a real Kafka, and the real Feast client reads them back through our Serving; the
job is listed and got as a stream job with its hash (which feast-spark's own JobService never filled), and
cancelled."""

from __future__ import annotations

import os
import uuid

import pytest
from prometheus_client import CollectorRegistry

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def scenario(feast09, postgres, redis_server, kafka_broker, kafka_jars, tmp_path_factory):
    from confluent_kafka import Producer

    from provender.core.app import CoreSettings, start_core
    from provender.core.launchers.local import LocalLauncher
    from provender.core.launchers.settings import LocalSettings
    from provender.serving.app import ServingSettings, start_serving

    base = tmp_path_factory.mktemp("feast-spark-streams")
    topic = f"driver-trips-{uuid.uuid4().hex[:8]}"
    core = start_core(
        CoreSettings(
            postgres_url=postgres.create_database(f"compat_streams_{os.getpid()}"),
            port=0,
            host="127.0.0.1",
            spark_master="local[2]",
            staging_location=(base / "staging").as_uri(),
            redis_url=redis_server.url,
            launcher_work_dir=str(base / "launcher"),
            reconcile_seconds=1.0,
            spark_jars=kafka_jars,
            stream_control=False,  # the feast-spark client starts the job, as its users do
        )
    )
    serving = start_serving(
        ServingSettings(
            redis_url=redis_server.url, core_url=f"127.0.0.1:{core.port}", port=0, host="127.0.0.1"
        ),
        registry=CollectorRegistry(),
    )
    common = (
        f"127.0.0.1:{core.port}",
        f"127.0.0.1:{serving.running.port}",
        kafka_broker.bootstrap_servers,
        topic,
        (base / "trips").as_uri(),
    )
    try:
        started = feast09.driver("stream_scenario.py", "start", *common, timeout=120)["steps"]
        producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
        for message in started.get("messages", {}).get("result", []):
            producer.produce(topic, value=bytes.fromhex(message))
        assert producer.flush(30) == 0
        read = feast09.driver("stream_scenario.py", "read", *common, timeout=400)["steps"]
    finally:
        serving.running.stop(grace=1)
        core.stop(grace=1)
        LocalLauncher(LocalSettings(work_dir=base / "launcher")).stop_warm_driver()
    return started, read


def ok(steps: dict, name: str):
    record = steps.get(name)
    assert record is not None, f"step {name} never ran: {steps}"
    assert "error" not in record, f"{name} failed in the Feast SDK: {record['error']}\n{record.get('trace')}"
    return record["result"]


def test_feast_spark_starts_one_stream_job_per_table(scenario):
    started, _ = scenario
    assert ok(started, "apply") is True
    start = ok(started, "start")
    assert start["id"].startswith("stream-") and start["again"] == start["id"]
    assert start["status"] in ("STARTING", "IN_PROGRESS")


def test_the_feast_client_reads_the_streamed_values_through_serving(scenario):
    _, read = scenario
    online = ok(read, "online")
    assert online["driver_id"] == [1001, 1002, 4242]
    assert online["driver_trips:trips_today"] == [4, 7, None]


def test_feast_spark_lists_gets_and_cancels_the_stream_job(scenario):
    started, read = scenario
    job_id = ok(started, "start")["id"]
    assert ok(read, "list_jobs") == [[job_id, "IN_PROGRESS", "RemoteStreamIngestionJob"]]
    got = ok(read, "get_job")
    assert (got["id"], got["status"], got["table"]) == (job_id, "IN_PROGRESS", "driver_trips")
    assert len(got["hash"]) == 16
    assert ok(read, "cancel") == []
