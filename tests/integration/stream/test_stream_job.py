"""The stream ingestion job as Core runs it (the local launcher's spark-submit, with the Kafka and Avro jars), on
a real Kafka broker and a real Redis: Avro messages as Feast 0.9's producers write them appear online with their
exact values; messages that do not decode or validate become dead letters while the stream goes on; a job
killed while messages keep coming and started again resumes from its checkpoint, losing none."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from provender.core.launchers.base import JobStatus, create_launcher
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import (
    Column,
    JobSource,
    JobTable,
    KafkaJobSource,
    StreamIngestionJobArgs,
    to_file_url,
)
from provender.kernel.online import layout as rl
from provender.kernel.value_types import ValueType

from ..jobs.conftest import dump_redis

PROJECT = "streams"
SCHEMA = {
    "type": "record",
    "name": "DriverTrip",
    "fields": [
        {"name": "driver_id", "type": ["null", "long"]},
        {"name": "trips_today", "type": "int"},
        {"name": "rating", "type": "float"},
        {"name": "event_timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}
TABLE = JobTable(
    name="driver_trips",
    entities=(Column("driver_id", ValueType.INT64),),
    features=(Column("trips_today", ValueType.INT32), Column("avg_rating", ValueType.FLOAT)),
    batch_source=JobSource(file_url="file:///not/read/by/streams", event_timestamp_column="event_timestamp"),
)
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
STARTUP_SECONDS = 180  # spark-submit, the JVM and the first micro-batch on a loaded 2-core machine
FRESHNESS_BOUND_SECONDS = 20  # trigger (1 s) + a micro-batch: what a running job must keep to


@pytest.fixture
def launcher(tmp_path, kafka_jars):
    return create_launcher("local", work_dir=tmp_path / "jobs", master="local[2]", jars=kafka_jars)


def avro(record: dict) -> bytes:
    import fastavro

    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(SCHEMA), record)
    return out.getvalue()


def trip(driver: int | None, trips: int, rating: float, seconds: int) -> dict:
    return {
        "driver_id": driver,
        "trips_today": trips,
        "rating": rating,
        "event_timestamp": int((T0.timestamp() + seconds) * 1_000_000),
    }


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def stream_args(bootstrap: str, topic: str, tmp_path: Path, **kw) -> StreamIngestionJobArgs:
    source = KafkaJobSource(
        bootstrap_servers=bootstrap,
        topic=topic,
        message_format="avro",
        event_timestamp_column="event_timestamp",
        schema_json=json.dumps(SCHEMA),
        field_mapping={"rating": "avg_rating"},
    )
    return StreamIngestionJobArgs(
        project=PROJECT,
        table=TABLE,
        source=source,
        redis_url=kw.pop("redis_url"),
        checkpoint_location=to_file_url(tmp_path / "checkpoints" / topic),
        dead_letter_location=to_file_url(tmp_path / "dead-letter" / topic),
        trigger_seconds=1.0,
        **kw,
    )


def expected(trips: list[dict]) -> dict[bytes, tuple[dict[bytes, bytes], int]]:
    """Redis after these messages: the latest of each driver (by event time), no expiry (no max_age)."""
    latest: dict[int, dict] = {}
    for t in trips:
        if t["driver_id"] is not None and (
            t["driver_id"] not in latest or t["event_timestamp"] > latest[t["driver_id"]]["event_timestamp"]
        ):
            latest[t["driver_id"]] = t
    out = {}
    for driver, t in latest.items():
        key = rl.entity_key(PROJECT, {"driver_id": rl.encode_value(driver, ValueType.INT64)})
        features = {
            "trips_today": (t["trips_today"], ValueType.INT32),
            "avg_rating": (t["rating"], ValueType.FLOAT),
        }
        out[key] = (rl.table_row_fields(TABLE.name, features, t["event_timestamp"] * 1000), -1)
    return out


def wait_for(redis, want, launcher, handle: str, timeout: float) -> float:
    """Seconds until Redis holds exactly `want`; fails with the job's state and log tail when it does not."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if dump_redis(redis) == want:
            return time.monotonic() - began
        state, message = launcher.status(handle)
        assert state is JobStatus.RUNNING, f"the stream job is {state.name}: {message}"
        time.sleep(0.2)
    log = Path(launcher.log_uri(handle).removeprefix("file://")).read_text()[-3000:]
    raise AssertionError(f"Redis did not reach the expected rows in {timeout} s; job log:\n{log}")


def progress_lines(log: Path) -> list[dict]:
    """Every micro-batch's progress line in the job's log, in order."""
    prefix, decoder = job_report.PROGRESS_PREFIX, json.JSONDecoder()
    lines = log.read_text(errors="replace").splitlines()
    return [decoder.raw_decode(line, line.index(prefix) + len(prefix))[0] for line in lines if prefix in line]


def new_topic() -> str:
    return f"trips-{uuid.uuid4().hex[:10]}"


def test_avro_messages_appear_online_exactly_and_bad_ones_become_dead_letters(
    kafka_broker, redis, redis_server, launcher, tmp_path
):
    """One job: the messages produced before it starts (earliest offsets), bad ones among them, are written or
    dead-lettered, in micro-batches of at most `max_messages_per_batch`; then, while it runs, a newer row appears
    within the bound, an older one never overwrites, and a bad message in between does not stop the stream."""
    topic = new_topic()
    first = [trip(1001, 3, 4.5, 0), trip(1002, 7, 4.9, 1), trip(1001, 4, 4.25, 60), trip(1001, 2, 1.0, 30)]
    garbage = b"\x02"  # a union index and then nothing: not a DriverTrip
    null_entity = avro(trip(None, 5, 3.0, 0))
    produce(
        kafka_broker.bootstrap_servers, topic, [avro(first[0]), garbage, *map(avro, first[1:]), null_entity]
    )
    args = stream_args(
        kafka_broker.bootstrap_servers, topic, tmp_path, redis_url=redis_server.url, max_messages_per_batch=4
    )
    launched = launcher.submit("stream-" + uuid.uuid4().hex[:16], args)
    try:
        wait_for(redis, expected(first), launcher, launched.handle, STARTUP_SECONDS)
        log = Path(launched.log_uri.removeprefix("file://"))
        deadline = time.monotonic() + 10  # a batch's progress line follows its writes
        while sum(backlog := [p["rows_read"] for p in progress_lines(log)]) < 6:
            assert time.monotonic() < deadline, f"progress lines for {backlog} of the 6 messages"
            time.sleep(0.2)
        assert sum(backlog) == 6 and max(backlog) <= 4 and len(backlog) >= 2, backlog
        # the log does not grow by Spark's and Kafka's INFO lines with every micro-batch (~260 each otherwise)
        lines = log.read_text(errors="replace").splitlines()
        marks = [i for i, line in enumerate(lines) if job_report.PROGRESS_PREFIX in line]
        between = lines[marks[0] + 1 : marks[-1]]
        assert len(between) - (len(marks) - 2) < 20 * (len(marks) - 1), "\n".join(between[-40:])
        second = [trip(1002, 8, 4.0, 120), trip(1003, 1, 5.0, 5), trip(1001, 9, 3.0, 10)]
        produce(
            kafka_broker.bootstrap_servers, topic, [avro(second[0]), b"{not avro}", *map(avro, second[1:])]
        )
        seconds = wait_for(
            redis, expected(first + second), launcher, launched.handle, FRESHNESS_BOUND_SECONDS
        )
        print(f"visible {seconds:.2f} s after the produce returned")
        deadline = time.monotonic() + 10  # the batch's progress line follows its writes
        while (progress := job_report.find_summary(log)) is None or progress["offsets"] != {"0": 9}:
            assert time.monotonic() < deadline, f"no progress line for the last offset (9): {progress}"
            time.sleep(0.2)
        assert progress["table"] == TABLE.name
    finally:
        launcher.cancel(launched.handle)
    assert launcher.status(launched.handle)[0] is JobStatus.ERROR  # cancelled
    dead = pq.read_table(args.dead_letter_location.removeprefix("file://")).to_pylist()
    undecodable = "avro: not a message of the source's schema"
    assert sorted((d["offset"], d["value"], d["reason"]) for d in dead) == [
        (1, garbage, undecodable),
        (5, null_entity, "entity driver_id: null"),
        (7, b"{not avro}", undecodable),
    ]


def test_a_killed_job_resumes_from_its_checkpoint_and_loses_nothing(
    kafka_broker, redis, redis_server, launcher, tmp_path
):
    """Messages keep coming while the job is killed and started again (a new attempt, as Core's restart makes
    it): every message arrives. The second attempt would start at the latest offset without its checkpoint. The
    first starts before its topic exists, as a job started when its table is applied does."""
    topic = new_topic()
    args = stream_args(kafka_broker.bootstrap_servers, topic, tmp_path, redis_url=redis_server.url)
    sent: list[dict] = []
    stop = threading.Event()

    def keep_producing() -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers, "enable.idempotence": True})
        n = 0
        while not stop.is_set():
            t = trip(10_000 + n, n, 1.0, n)  # one driver per message: every message leaves its own key
            producer.produce(topic, value=avro(t))
            sent.append(t)
            n += 1
            producer.poll(0)
            time.sleep(0.02)
        assert producer.flush(30) == 0

    first = launcher.submit("stream-" + uuid.uuid4().hex[:16], args)
    time.sleep(5)
    assert launcher.status(first.handle)[0] is JobStatus.RUNNING
    producer = threading.Thread(target=keep_producing)
    producer.start()
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not dump_redis(redis) and time.monotonic() < deadline:
            assert launcher.status(first.handle)[0] is JobStatus.RUNNING
            time.sleep(0.5)
        assert dump_redis(redis), "the first attempt wrote nothing"
        launcher.cancel(first.handle)  # SIGTERM, then SIGKILL after the grace period
        time.sleep(3)  # messages arrive while no job runs
        again = StreamIngestionJobArgs(**{**args.__dict__, "starting_offsets": "latest"})
        second = launcher.submit("stream-" + uuid.uuid4().hex[:16], again)
        time.sleep(5)
    finally:
        stop.set()
        producer.join()
    try:
        wait_for(redis, expected(sent), launcher, second.handle, STARTUP_SECONDS)
    finally:
        launcher.cancel(second.handle)
    assert len(sent) > 100
