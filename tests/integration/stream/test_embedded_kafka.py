"""The embedded Kafka broker and the Spark Kafka jars, on real Apache Kafka: messages come back exactly (keys, values,
timestamps), a restarted broker keeps its messages and the consumer groups' committed offsets (stream jobs resume
from them), and PySpark 4.2 reads a topic with the jars `spark_kafka_jars()` finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest

from provender.local.kafka import EmbeddedKafka, KafkaNotAvailable, find_kafka_libs, spark_kafka_jars

from .conftest import missing

# Historical event times, as a backfill sends: the broker must keep them (a default broker deletes records over 7
# days old at its first retention check, 30 s after it starts).
T0 = int(datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp() * 1000)
RECORDS = [(b"driver-1001", b'{"conv_rate": 0.5}', T0), (b"driver-1002", b"\x00\x01\xff binary", T0 + 1),
           (b"driver-1001", b'{"conv_rate": 0.75}', T0 + 60_000), (b"", b"", T0 + 60_001)]  # fmt: skip


def new_topic() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def produce(bootstrap: str, topic: str, records) -> None:
    """Send (key, value, timestamp ms) records in order (one partition: the topic is created on first use)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    errors = []
    for key, value, ts in records:
        producer.produce(
            topic, value=value, key=key, timestamp=ts, on_delivery=lambda e, _m: e and errors.append(e)
        )
    assert producer.flush(30) == 0, "messages still unsent after 30 s"
    assert not errors, errors


def consume(bootstrap: str, topic: str, count: int, group: str | None = None, timeout: float = 30.0) -> list:
    """`count` messages as (key, value, (timestamp type, ms), offset): with `group`, from the group's committed
    offset (committing each one read); without, from the start of partition 0, and checking that no more follow."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group or f"reader-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })  # fmt: skip
    if group:  # subscribe: librdkafka then rides out the group coordinator's start (NOT_COORDINATOR, loading)
        consumer.subscribe([topic])
    else:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append((message.key(), message.value(), message.timestamp(), message.offset()))
            if group:
                consumer.commit(message=message, asynchronous=False)
        if not group:
            assert consumer.poll(0.5) is None, "more messages than expected"
    finally:
        consumer.close()
    return got


def expected(records, first_offset: int = 0) -> list:
    from confluent_kafka import TIMESTAMP_CREATE_TIME

    return [(k, v, (TIMESTAMP_CREATE_TIME, ts), first_offset + i) for i, (k, v, ts) in enumerate(records)]


def test_messages_come_back_exactly(kafka_broker):
    topic = new_topic()
    produce(kafka_broker.bootstrap_servers, topic, RECORDS)
    assert consume(kafka_broker.bootstrap_servers, topic, len(RECORDS)) == expected(RECORDS)


def test_a_restarted_broker_keeps_messages_and_committed_offsets(kafka_libs, kafka_dir):
    broker = EmbeddedKafka(kafka_dir, libs=kafka_libs)
    try:
        broker.start()
        topic, bootstrap = new_topic(), broker.bootstrap_servers
        produce(bootstrap, topic, RECORDS)
        assert consume(bootstrap, topic, 2, group="stream-job") == expected(RECORDS[:2])

        broker.stop()
        assert not broker.is_running()
        broker.start()  # same folder, same ports
        assert broker.bootstrap_servers == bootstrap
        assert consume(bootstrap, topic, len(RECORDS)) == expected(RECORDS)
        assert consume(bootstrap, topic, 2, group="stream-job") == expected(RECORDS[2:], first_offset=2)
        broker.stop()

        again = EmbeddedKafka(kafka_dir, libs=kafka_libs).start()  # a new broker on the folder: other ports
        try:
            assert again.bootstrap_servers != bootstrap
            assert consume(again.bootstrap_servers, topic, len(RECORDS)) == expected(RECORDS)
            more = [(b"driver-1003", b"after restarts", T0 + 120_000)]
            produce(again.bootstrap_servers, topic, more)
            assert consume(again.bootstrap_servers, topic, 1, group="stream-job") == expected(
                more, first_offset=4
            )
        finally:
            again.stop()
    finally:
        broker.stop()


# In a process of its own: `spark.jars` reaches the driver's classpath only when the session's own spark-submit
# launches the JVM. A session made after another one started Spark's JVM in this process (other test modules) would
# not find the "kafka" source, whatever its spark.jars says.
SPARK_READ = """
import json, sys
from pyspark.sql import SparkSession

bootstrap, topic, jars = sys.argv[1:4]
spark = (
    SparkSession.builder.master("local[1]")
    .appName("provender-kafka-jars-test")
    .config("spark.jars", jars)
    .config("spark.ui.enabled", "false")
    .config("spark.sql.shuffle.partitions", "1")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .getOrCreate()
)
frame = (
    spark.read.format("kafka")
    .option("kafka.bootstrap.servers", bootstrap)
    .option("subscribe", topic)
    .option("startingOffsets", "earliest")
    .option("endingOffsets", "latest")
    .load()
)
rows = frame.selectExpr("key", "value", "unix_millis(timestamp) AS ms", "timestampType", "partition", "offset")
out = [[r.key.hex() if r.key is not None else None, r.value.hex(), r.ms, r.timestampType, r.partition, r.offset]
       for r in rows.orderBy("offset").collect()]
print("ROWS " + json.dumps(out))
spark.stop()
"""


def test_spark_reads_the_topic_with_the_fetched_jars(kafka_broker, tmp_path):
    try:
        jars = spark_kafka_jars()
    except KafkaNotAvailable as e:
        missing(str(e))
    assert sorted(j.name.rsplit("-", 1)[0] for j in jars) == [
        "commons-pool2",
        "kafka-clients",
        "spark-avro_2.13",
        "spark-sql-kafka-0-10_2.13",
        "spark-token-provider-kafka-0-10_2.13",
    ]
    topic = new_topic()
    produce(kafka_broker.bootstrap_servers, topic, RECORDS)
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(
        [sys.executable, "-c", SPARK_READ, kafka_broker.bootstrap_servers, topic, ",".join(map(str, jars))],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("ROWS ")]
    assert done.returncode == 0 and lines, f"exit {done.returncode}; stderr:\n{done.stderr[-4000:]}"
    # timestampType 0 is CreateTime; Spark reads the empty key as an empty byte string, as Kafka stores it
    assert json.loads(lines[0][5:]) == [
        [k.hex(), v.hex(), ts, 0, 0, i] for i, (k, v, ts) in enumerate(RECORDS)
    ]


def test_missing_jars_name_make_jvm_deps(monkeypatch, tmp_path):
    monkeypatch.setenv("PROVENDER_KAFKA_LIBS", str(tmp_path))
    monkeypatch.setenv("PROVENDER_SPARK_KAFKA_JARS", str(tmp_path))
    with pytest.raises(KafkaNotAvailable, match="make jvm-deps"):
        find_kafka_libs()
    with pytest.raises(KafkaNotAvailable, match="make jvm-deps"):
        spark_kafka_jars()
    with pytest.raises(KafkaNotAvailable, match="make jvm-deps"):
        EmbeddedKafka(tmp_path / "broker")
