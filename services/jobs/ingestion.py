"""Offline→online ingestion: one feature table's batch source, for a window of event times, into Redis.

    spark-submit ingestion.py '<IngestionJobArgs JSON>' | @<file of it>      (or run(spark, args) in-process)

Reads the parquet source (date partitions outside the window pruned), applies field_mapping, sends invalid rows
(null entity, a value not of the declared type, an unparseable or null event time, an unparseable created time)
to a dead-letter parquet with a `reason` column, keeps rows with start ≤ event time < end, keeps the latest row
per entity key (event time, then created time; a source without its declared created column: event time alone;
rows equal in both: the greatest hash of the values, so that a rerun picks the same), and writes the Redis layout
of docs/protocol.md with the write rule of redis_sink (never over a newer stored row); the validation and the write
are online_write's, which stream ingestion shares. Prints one `PROVENDER_JOB_SUMMARY {json}` line and returns the summary.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from provender.jobs import metrics_push, sources
from provender.jobs.entrypoint import spark_main
from provender.jobs.online_write import EVENT_NS, REASON, validated, write_latest
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import IngestionJobArgs
from provender.kernel.jobs.conf import JOB_ID_CONF
from provender.kernel.online import layout as redis_layout


@dataclass(frozen=True)
class IngestionSummary:
    job: str
    project: str
    table: str
    start: str
    end: str
    rows_read: int  # rows of the date partitions read (all of the source without a date partition column)
    rows_in_window: int  # valid rows with start <= event time < end
    rows_dead_lettered: int
    keys: int  # distinct entity keys in the window: one row each after deduplication
    rows_written: int
    rows_skipped_stale: int  # a newer row was already stored
    max_event_time: str | None
    event_time_lag_seconds: float | None  # now - latest event time written
    dead_letter_location: str | None
    duration_seconds: float


def _prepared(spark: SparkSession, args: IngestionJobArgs) -> tuple[DataFrame, list[str]]:
    """The source in the window's partitions, validated (online_write.validated); and its source column names
    (what the dead letter keeps)."""
    table = args.table
    src = table.batch_source
    where = f"table {table.name}.batch_source"
    df = sources.read(spark, src, (args.start, args.end), where=where)
    columns = [c.name for c in (*table.entities, *table.features)]
    sources.require_columns(df, [*columns, src.event_timestamp_column], where)
    cr_col = sources.created_column(df, src, table.name)
    nanos = sources.nanosecond_columns(sources.timestamp_columns(src, where))
    return validated(df, table, src.event_timestamp_column, cr_col, nanos, where), df.columns


def _window_filter(args: IngestionJobArgs) -> Column:
    start = redis_layout.datetime_to_ns(args.start)
    end = redis_layout.datetime_to_ns(args.end)
    return (F.col(EVENT_NS) >= F.lit(start)) & (F.col(EVENT_NS) < F.lit(end))


def run(spark: SparkSession, args: IngestionJobArgs) -> IngestionSummary:
    """Ingest the window; idempotent (a rerun leaves Redis identical). With a Pushgateway URL, the run's metrics
    are pushed (metrics_push), a failure's too."""
    began = time.monotonic()
    try:
        summary, lag = _run(spark, args, began)
    except Exception:
        _push(spark, args, None, metrics_push.FAILURE, None, time.monotonic() - began)
        raise
    job_report.print_summary(asdict(summary))
    _push(spark, args, summary, metrics_push.SUCCESS, lag, summary.duration_seconds)
    return summary


def _push(
    spark: SparkSession,
    args: IngestionJobArgs,
    summary: IngestionSummary | None,
    outcome: str,
    lag: metrics_push.LagCounts | None,
    duration: float,
) -> None:
    if not args.pushgateway_url:
        return
    job_id = spark.conf.get(JOB_ID_CONF, "") or spark.sparkContext.appName
    metrics_push.push_ingestion_metrics(
        args.pushgateway_url,
        summary,
        job_id=job_id,
        project=args.project,
        table=args.table.name,
        outcome=outcome,
        duration_seconds=duration,
        lag_counts=lag,
    )


def _run(
    spark: SparkSession, args: IngestionJobArgs, began: float
) -> tuple[IngestionSummary, metrics_push.LagCounts]:
    sources.configure_session(spark)
    table = args.table
    prepared, source_columns = _prepared(spark, args)
    in_window = _window_filter(args)
    valid = F.col(REASON).isNull() & in_window
    # an invalid row counts when its time is unknown or in the window (an out-of-window row is not ours)
    invalid = F.col(REASON).isNotNull() & (F.col(EVENT_NS).isNull() | in_window)
    # The counts are observed while the write reads the source: one pass over it when no row is invalid.
    observation = Observation("ingestion_counts")
    observed = prepared.observe(
        observation,
        F.count(F.lit(1)).alias("read"),
        F.count(F.when(valid, 1)).alias("valid"),
        F.count(F.when(invalid, 1)).alias("bad"),
    )
    totals = write_latest(observed.where(valid), args.project, table, args.redis_url)
    written, stale, max_event, lag = totals.written, totals.stale, totals.max_event_ns, totals.lag
    keys = written + stale
    counts = observation.get
    rows_read, rows_valid, rows_bad = int(counts["read"]), int(counts["valid"]), int(counts["bad"])

    dead_letter = None
    if rows_bad:
        reason_name = "reason" if "reason" not in source_columns else "_reason"
        prepared.where(invalid).select(
            *[F.col(f"`{c}`") for c in source_columns], F.col(REASON).alias(reason_name)
        ).write.mode("overwrite").parquet(sources.spark_path(args.dead_letter_location))
        dead_letter = args.dead_letter_location

    now_ns = redis_layout.datetime_to_ns(datetime.now(UTC))
    summary = IngestionSummary(
        job="offline_to_online_ingestion",
        project=args.project,
        table=table.name,
        start=args.start.isoformat(),
        end=args.end.isoformat(),
        rows_read=rows_read,
        rows_in_window=rows_valid,
        rows_dead_lettered=rows_bad,
        keys=keys,
        rows_written=written,
        rows_skipped_stale=stale,
        max_event_time=_iso(max_event),
        event_time_lag_seconds=(now_ns - max_event) / 1e9 if max_event is not None else None,
        dead_letter_location=dead_letter,
        duration_seconds=round(time.monotonic() - began, 3),
    )
    return summary, lag


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000).isoformat()


def main(argv: Sequence[str]) -> dict[str, Any]:
    return spark_main(argv, IngestionJobArgs.from_json, run)


if __name__ == "__main__":
    # By module name, so that the executors unpickle the job's functions by reference.
    from provender.jobs.ingestion import main as _main

    sys.exit(job_report.run_main(_main, sys.argv[1:]))
