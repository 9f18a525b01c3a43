"""Stream→online ingestion: one feature table's Kafka topic into Redis, until the job is cancelled.

    spark-submit --jars <spark-sql-kafka and spark-avro jars> stream_ingestion.py @<StreamIngestionJobArgs file>

A Spark Structured Streaming query reads `subscribe=<topic>` and, every `trigger_seconds`, hands the new messages
to `write_batch` (foreachBatch): decode them (stream_formats), validate them as batch sources are
(online_write.validated), write the latest row of each entity key with the write rule (online_write.write_latest,
the one implementation batch ingestion uses), and put what did not decode or validate in dead-letter parquet
(`<dead_letter_location>/batch=<id>`, with the raw message, its partition, offset, Kafka timestamp and the reason).

Nothing is lost across restarts: the checkpoint is at a stable location for the table and its spec hash, so a
restarted job resumes at the offsets of the last committed micro-batch; a micro-batch replayed after a crash
writes the same rows again, which the write rule makes harmless, and overwrites its own dead letters.

Each micro-batch prints one `PROVENDER_STREAM_PROGRESS {json}` line (what `provender jobs describe` shows) and, with
`metrics_port`, updates the job's Prometheus metrics (stream_metrics), served from the driver.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from provender.jobs import sources, stream_formats
from provender.jobs.entrypoint import spark_main
from provender.jobs.online_write import REASON, validated, write_latest
from provender.jobs.stream_metrics import BatchOutcome, StreamMetrics
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import StreamIngestionJobArgs
from provender.kernel.jobs.conf import STREAM_LOGS_CONF

DEAD_LETTER_REASON = "reason"

# Every micro-batch, Spark turns the decoded stream into the batch frame foreachBatch receives, and derives the
# constraints of the decode-and-validate plan on the way (LogicalRDD.rewriteStatsAndConstraints). On that plan
# (a projection and a null check per column) the derivation was a third of each micro-batch's time, for nothing:
# the batch frame is only counted and written. Without it a micro-batch is ~1 s shorter at 1k messages/s.
STREAM_SESSION_CONF = {"spark.sql.constraintPropagation.enabled": "false"}

# A stream job runs for days, and Spark logs ~260 INFO lines per micro-batch (the Kafka consumer's seeks, every
# stage, task and cached block): at one micro-batch a second, gigabytes a day. Once the query starts, these log
# warnings and errors only; each micro-batch's PROVENDER_STREAM_PROGRESS line says what it did. Submitting the job
# with `--conf spark.provender.streamLogs=full` (STREAM_LOGS_CONF) keeps them (debugging; the benchmark times each
# micro-batch by them).
QUIET_LOGGERS = (
    "org.apache.kafka",
    "org.apache.spark.sql.kafka010",
    "org.apache.spark.sql.execution",
    "org.apache.spark.scheduler",
    "org.apache.spark.executor",
    "org.apache.spark.storage",
    "org.apache.spark.rdd",
    "org.apache.spark.SparkContext",
    "org.apache.spark.mapred",  # dead-letter parquet: its committers and writers
    "org.apache.spark.internal.io",
    "org.apache.hadoop",
    "org.apache.parquet",
)


@dataclass
class StreamSummary:
    """What the job did until it stopped (the sum of its micro-batches in this run)."""

    job: str = "stream_to_online_ingestion"
    project: str = ""
    table: str = ""
    batches: int = 0
    rows_read: int = 0
    rows_written: int = 0
    rows_skipped_stale: int = 0
    rows_dead_lettered: int = 0
    offsets: dict[str, int] = field(default_factory=dict)


def checked_messages(messages: DataFrame, args: StreamIngestionJobArgs) -> DataFrame:
    """Kafka's frame, decoded (stream_formats) and validated (online_write.validated), with REASON: why a
    message is a dead letter (null when it is written). Applied once to the streaming frame, so that each
    micro-batch arrives with its plan built."""
    table, source = args.table, args.source
    decoded = stream_formats.decode(messages, table, source)
    created = source.created_timestamp_column or None
    where = f"table {table.name}.stream_source"
    checked = validated(decoded, table, source.event_timestamp_column, created, frozenset(), where)
    return checked.withColumn(REASON, F.coalesce(F.col(stream_formats.UNDECODABLE), F.col(REASON)))


class BatchWriter:
    """The foreachBatch function: one micro-batch of checked messages in, its rows in Redis and its dead
    letters in parquet. Two Spark jobs when every message is good (the counts, the write), three otherwise."""

    def __init__(self, args: StreamIngestionJobArgs, metrics: StreamMetrics | None) -> None:
        self.args = args
        self.metrics = metrics
        self.summary = StreamSummary(project=args.project, table=args.table.name)

    def __call__(self, checked: DataFrame, batch_id: int) -> None:
        began = time.monotonic()
        args, table = self.args, self.args.table
        checked = checked.persist()
        try:
            per_partition = (
                checked.groupBy("partition")
                .agg(
                    F.count(F.lit(1)).alias("read"),
                    F.count(F.when(F.col(REASON).isNotNull(), 1)).alias("bad"),
                    F.max("timestamp").alias("kafka_ts"),
                    F.max("offset").alias("offset"),
                )
                .collect()
            )
            counts = {
                "read": sum(r["read"] for r in per_partition),
                "bad": sum(r["bad"] for r in per_partition),
                "kafka_ts": max(
                    (r["kafka_ts"] for r in per_partition if r["kafka_ts"] is not None), default=None
                ),
            }
            offsets = {str(r["partition"]): int(r["offset"]) for r in per_partition}
            totals = write_latest(checked.where(F.col(REASON).isNull()), args.project, table, args.redis_url)
            if counts["bad"]:
                checked.where(F.col(REASON).isNotNull()).select(
                    "value", "partition", "offset", "timestamp", F.col(REASON).alias(DEAD_LETTER_REASON)
                ).write.mode("overwrite").parquet(
                    sources.spark_path(f"{args.dead_letter_location.rstrip('/')}/batch={batch_id}")
                )
        finally:
            checked.unpersist()
        now = time.time()
        kafka_ts = counts["kafka_ts"]
        outcome = BatchOutcome(
            rows_read=int(counts["read"]),
            rows_written=totals.written,
            rows_skipped_stale=totals.stale,
            rows_dead_lettered=int(counts["bad"]),
            duration_seconds=time.monotonic() - began,
            max_event_time=totals.max_event_ns / 1e9 if totals.max_event_ns is not None else None,
            max_kafka_timestamp=kafka_ts.replace(tzinfo=UTC).timestamp() if kafka_ts is not None else None,
        )
        s = self.summary
        s.batches += 1
        s.rows_read += outcome.rows_read
        s.rows_written += outcome.rows_written
        s.rows_skipped_stale += outcome.rows_skipped_stale
        s.rows_dead_lettered += outcome.rows_dead_lettered
        s.offsets |= offsets
        if self.metrics is not None:
            self.metrics.batch(outcome, now)
        job_report.print_progress(
            {
                "batch": batch_id,
                "project": args.project,
                "table": table.name,
                **asdict(outcome),
                "event_time_lag_seconds": (
                    round(now - outcome.max_event_time, 3) if outcome.max_event_time is not None else None
                ),
                "offsets": offsets,
                "time": datetime.fromtimestamp(now, UTC).isoformat(),
            }
        )


def consumer_lag(progress: dict[str, Any] | None) -> int | None:
    """Messages in the topic the query has not read: latest offsets minus its end offsets, all partitions
    (None before the first progress report)."""
    if not progress or not progress.get("sources"):
        return None
    source = progress["sources"][0]
    try:
        latest = _offsets(source.get("latestOffset"))
        end = _offsets(source.get("endOffset"))
    except (
        TypeError,
        ValueError,
        AttributeError,
    ):  # a progress report of another shape: no figure, no failure
        return None
    if not latest:
        return None
    return sum(max(0, offset - end.get(key, 0)) for key, offset in latest.items())


def _offsets(value: Any) -> dict[tuple[str, str], int]:
    """Spark's Kafka offsets JSON ({"topic": {"0": 12}}) as {(topic, partition): offset}."""
    data = json.loads(value) if isinstance(value, str) else value
    if not isinstance(data, dict):  # none yet ("null" right after a restart)
        return {}
    return {(t, p): int(o) for t, parts in data.items() if isinstance(parts, dict) for p, o in parts.items()}


def quiet_logs(spark: SparkSession) -> None:
    """QUIET_LOGGERS at WARN in the driver's JVM (log4j2, which Spark 4 logs with; local executors share it)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # a classic session, as spark-submit makes
    configurator = jvm.org.apache.logging.log4j.core.config.Configurator
    warn = jvm.org.apache.logging.log4j.Level.WARN
    for name in QUIET_LOGGERS:
        configurator.setLevel(name, warn)


def topic_pattern(topic: str) -> str:
    """A Java regex matching exactly this topic name (Kafka topic names are [a-zA-Z0-9._-]+)."""
    return topic.replace(".", "\\.")


def start(
    spark: SparkSession, args: StreamIngestionJobArgs, metrics: StreamMetrics | None
) -> tuple[StreamingQuery, BatchWriter]:
    """Start the streaming query (returns at once), and its foreachBatch writer (which keeps the summary)."""
    sources.configure_session(spark)
    for key, value in STREAM_SESSION_CONF.items():
        spark.conf.set(key, value)
    if spark.sparkContext.getConf().get(STREAM_LOGS_CONF, "quiet") != "full":
        quiet_logs(spark)
    stream_formats.check(args.table, args.source)
    reader = spark.readStream.format("kafka")
    if args.max_messages_per_batch:
        reader = reader.option("maxOffsetsPerTrigger", str(args.max_messages_per_batch))
    raw = (
        reader.option("kafka.bootstrap.servers", args.source.bootstrap_servers)
        # a pattern rather than `subscribe`: a topic that does not exist yet is waited for, not an error (a table
        # is often applied before anything is produced); Spark reads a topic it finds later from its start
        .option("subscribePattern", topic_pattern(args.source.topic))
        .option("startingOffsets", args.starting_offsets)
        # offsets deleted by retention while the job was down: go on from the oldest left (and say so in the log)
        .option("failOnDataLoss", "false")
        .load()
    )
    writer = BatchWriter(args, metrics)
    query = (
        checked_messages(raw, args)
        .writeStream.queryName(f"provender-stream-{args.project}-{args.table.name}")
        .foreachBatch(writer)
        .option("checkpointLocation", sources.spark_path(args.checkpoint_location))
        .trigger(processingTime=f"{int(args.trigger_seconds * 1000)} milliseconds")
        .start()
    )
    return query, writer


def run(spark: SparkSession, args: StreamIngestionJobArgs) -> StreamSummary:
    """Run until stopped by a signal (the query stops; the process exits 128 + the signal) or until the query
    fails (an error)."""
    metrics = StreamMetrics(args.project, args.table.name)
    if args.metrics_port:
        port = metrics.serve(args.metrics_port)
        print(f"stream metrics on port {port}", flush=True)
    query, writer = start(spark, args, metrics)
    stopped_by: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: stopped_by.append(signum))
    while not stopped_by and query.isActive:
        query.awaitTermination(timeout=max(1.0, args.trigger_seconds))
        lag = consumer_lag(query.lastProgress)
        if lag is not None:
            metrics.lag(lag)
    if query.isActive:
        query.stop()
    if stopped_by:
        # A stream never ends of its own accord: stopped by a signal (a cancel, an eviction) it exits non-zero,
        # so that a supervisor (Core's control loop, the operator's restart policy) sees it ended.
        print(
            f"stream stopped by signal {stopped_by[0]} after {writer.summary.batches} micro-batches",
            flush=True,
        )
        raise SystemExit(128 + stopped_by[0])
    error = query.exception()
    if error is not None:
        raise RuntimeError(f"the stream query failed: {error.desc if hasattr(error, 'desc') else error}")
    return writer.summary


def main(argv: Sequence[str]) -> dict[str, Any]:
    return spark_main(argv, StreamIngestionJobArgs.from_json, run)


if __name__ == "__main__":
    # By module name, so that the executors unpickle the job's functions by reference.
    from provender.jobs.stream_ingestion import main as _main

    sys.exit(job_report.run_main(_main, sys.argv[1:]))
