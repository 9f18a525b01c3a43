"""A stream micro-batch decoded and validated on real Spark, for the JSON and protobuf formats (Avro, which needs
the spark-avro jar, runs in the stream job tests): good messages become the table's columns, a message that does
not decode is named undecodable, and a field of the wrong type is named by the batch validation rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from pyspark.sql import functions as F

from provender.jobs import stream_formats
from provender.jobs.online_write import EVENT_NS, REASON, validated
from provender.kernel.jobs.args import Column, JobSource, JobTable, KafkaJobSource
from provender.kernel.value_types import ValueType
from provender.proto.feast.core.FeatureTable_pb2 import FeatureTableMeta

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
T0_NS = int(T0.timestamp()) * 1_000_000_000
BATCH = JobSource(file_url="file:///unused", event_timestamp_column="event_timestamp")
SCHEMA = "value binary, partition int, offset long, timestamp timestamp"


def checked(spark, table: JobTable, source: KafkaJobSource, values: list[bytes | None]) -> list[dict]:
    batch = spark.createDataFrame([(v, 0, i, T0) for i, v in enumerate(values)], SCHEMA)
    decoded = stream_formats.decode(batch, table, source)
    out = validated(decoded, table, source.event_timestamp_column, None, frozenset(), "stream")
    out = out.withColumn(REASON, F.coalesce(F.col(stream_formats.UNDECODABLE), F.col(REASON)))
    typed = [f"__typed_{c.name}" for c in (*table.entities, *table.features)]
    return [r.asDict() for r in out.select("offset", *typed, EVENT_NS, REASON).orderBy("offset").collect()]


def test_json_messages(spark):
    table = JobTable(
        "trips",
        (Column("driver_id", ValueType.INT64),),
        (
            Column("trips_today", ValueType.INT32),
            Column("rating", ValueType.FLOAT),
            Column("tags", ValueType.STRING_LIST),
        ),
        BATCH,
    )
    source = KafkaJobSource("k:9092", "trips", "json", "ts", field_mapping={"driver": "driver_id"})
    good = {"driver": 1001, "trips_today": 3, "rating": 4.5, "tags": ["a", "b"], "ts": T0.isoformat()}
    rows = checked(
        spark,
        table,
        source,
        [
            json.dumps(good).encode(),
            json.dumps(good | {"trips_today": "many"}).encode(),
            b"not json at all",
            json.dumps(good | {"ts": None}).encode(),
        ],
    )
    assert rows[0] == {
        "offset": 0, "__typed_driver_id": 1001, "__typed_trips_today": 3, "__typed_rating": 4.5,
        "__typed_tags": ["a", "b"], EVENT_NS: T0_NS, REASON: None,
    }  # fmt: skip
    assert rows[1][REASON] == "feature trips_today: not INT32: many"
    assert rows[2][REASON] == "json: not a message of the source's format"
    assert rows[3][REASON] == "event timestamp ts: null"


def test_protobuf_messages(spark):
    """A message class importable in the job (here one of Provender's own): fields by their declared names."""
    table = JobTable(
        "meta", (Column("hash", ValueType.STRING),), (Column("revision", ValueType.INT64),), BATCH
    )
    source = KafkaJobSource(
        "k:9092", "metas", "proto", "created_timestamp",
        class_path="provender.proto.feast.core.FeatureTable_pb2.FeatureTableMeta",
    )  # fmt: skip
    stamp = Timestamp()
    stamp.FromDatetime(T0)
    message = FeatureTableMeta(created_timestamp=stamp, revision=2**40, hash="abc").SerializeToString()
    rows = checked(spark, table, source, [message, b"\xff\xff\xff", None])
    assert rows[0] == {
        "offset": 0, "__typed_hash": "abc", "__typed_revision": 2**40, EVENT_NS: T0_NS, REASON: None
    }  # fmt: skip
    assert rows[1][REASON] == "proto: not a message of the source's format"
    assert rows[2][REASON] == "proto: a message without a value"
