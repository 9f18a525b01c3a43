"""Offline→online ingestion: one feature table's batch source, for a window of event times, into Redis.

    spark-submit ingestion.py '<IngestionJobArgs JSON>' | @<file of it>      (or run(spark, args) in-process)

Reads the parquet source (date partitions outside the window pruned), applies field_mapping, sends invalid rows
(null entity, a value not of the declared type, an unparseable or null event time, an unparseable created time)
to a dead-letter parquet with a `reason` column, keeps rows with start ≤ event time < end, keeps the latest row
per entity key (event time, then created time; a source without its declared created column: event time alone;
rows equal in both: the greatest hash of the values, so that a rerun picks the same), and writes the Redis layout
of docs/protocol.md with the write rule of redis_sink (never over a newer stored row). The rows of a key meet in one
partition (a hash exchange); choosing the latest and encoding are columnar (numpy/pyarrow, columnar_encoding) over
each partition's Arrow batches. Prints one `PROVENDER_JOB_SUMMARY {json}` line and returns the summary.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from provender.jobs import metrics_push, sources
from provender.jobs.entrypoint import spark_main
from provender.jobs.redis_sink import EncodedRows, RedisSink
from provender.jobs.typed_columns import convert
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import IngestionJobArgs, JobTable
from provender.kernel.jobs.conf import EVENT_NS_COLUMN, JOB_ID_CONF
from provender.kernel.online import columns as columnar_encoding
from provender.kernel.online import layout as redis_layout

EVENT_NS = EVENT_NS_COLUMN
CREATED_NS = "__created_ns"
REASON = "__reason"
TIE = "__tie"
WRITE_SLICE_ROWS = 10_000
_OUT_SCHEMA = "written long, stale long, max_event_ns long, lag_counts array<long>, lag_sum double"
_NO_TIME = -(2**63)


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
    """The source in the window's partitions with typed columns, event/created ns and the reason a row is invalid.

    Returns the frame and its source column names (what the dead letter keeps).
    """
    table = args.table
    src = table.batch_source
    df = sources.read(spark, src, (args.start, args.end), where=f"table {table.name}.batch_source")
    columns = [c.name for c in (*table.entities, *table.features)]
    sources.require_columns(df, [*columns, src.event_timestamp_column], f"table {table.name}.batch_source")
    cr_col = sources.created_column(df, src, table.name)
    source_columns = df.columns
    nanos = sources.nanosecond_columns(sources.timestamp_columns(src, f"table {table.name}.batch_source"))

    reasons: list[Column] = []
    typed: dict[str, Column] = {}
    for entity in table.entities:
        tc = convert(entity.name, df.schema[entity.name].dataType, entity.value_type, "entity")
        col = F.col(f"`{entity.name}`")
        reasons.append(F.when(col.isNull(), F.lit(f"entity {entity.name}: null")))
        reasons.append(
            F.when(
                tc.bad,
                F.concat(F.lit(f"entity {entity.name}: not {entity.value_type.name}: "), col.cast("string")),
            )
        )
        typed[entity.name] = tc.value
    for feature in table.features:
        tc = convert(feature.name, df.schema[feature.name].dataType, feature.value_type, "feature")
        col = F.col(f"`{feature.name}`")
        reasons.append(
            F.when(
                tc.bad,
                F.concat(
                    F.lit(f"feature {feature.name}: not {feature.value_type.name}: "), col.cast("string")
                ),
            )
        )
        typed[feature.name] = tc.value

    ev_col = src.event_timestamp_column
    ev = sources.event_ns(df, ev_col, nanos, f"table {table.name}.batch_source")
    reasons.insert(0, F.when(F.col(f"`{ev_col}`").isNull(), F.lit(f"event timestamp {ev_col}: null")))
    reasons.insert(
        1,
        F.when(
            ev.isNull(),
            F.concat(F.lit(f"event timestamp {ev_col}: unparseable: "), F.col(f"`{ev_col}`").cast("string")),
        ),
    )
    if cr_col:
        cr = sources.event_ns(df, cr_col, nanos, f"table {table.name}.batch_source")
        reasons.append(
            F.when(
                F.col(f"`{cr_col}`").isNotNull() & cr.isNull(),
                F.concat(
                    F.lit(f"created timestamp {cr_col}: unparseable: "), F.col(f"`{cr_col}`").cast("string")
                ),
            )
        )
    else:
        cr = F.lit(None).cast("long")

    prepared = df.select(
        *[F.col(f"`{c}`") for c in source_columns],
        *[value.alias(f"__typed_{name}") for name, value in typed.items()],
        ev.alias(EVENT_NS),
        cr.alias(CREATED_NS),
        F.coalesce(*reasons).alias(REASON),
    )
    return prepared, source_columns


def _window_filter(args: IngestionJobArgs) -> Column:
    start = redis_layout.datetime_to_ns(args.start)
    end = redis_layout.datetime_to_ns(args.end)
    return (F.col(EVENT_NS) >= F.lit(start)) & (F.col(EVENT_NS) < F.lit(end))


def _keyed_rows(valid: DataFrame, table: JobTable) -> DataFrame:
    """The valid rows with their typed columns, a tie-breaker, and all rows of one entity key in one partition.

    The latest row of each key is then chosen in the partition (latest_per_key): a hash exchange and a vectorised
    sort instead of a sort-based aggregation of whole rows in Spark.
    """
    entities = [F.col(f"`__typed_{e.name}`").alias(e.name) for e in table.entities]
    features = [F.col(f"`__typed_{f.name}`") for f in table.features]
    return valid.select(
        *entities,
        F.col(EVENT_NS),
        F.coalesce(F.col(CREATED_NS), F.lit(_NO_TIME)).alias(CREATED_NS),
        # rows equal in both times: the one with the greatest hash of its values, the same on every run
        F.xxhash64(F.lit(0), *features).alias(TIE),
        *[c.alias(f.name) for c, f in zip(features, table.features, strict=True)],
    ).repartition(*[F.col(f"`{e.name}`") for e in table.entities])


def latest_per_key(rows: pa.Table, keys: pa.BinaryArray) -> tuple[pa.Table, pa.BinaryArray]:
    """The latest row of each key (event time, then created time, then TIE) and its key, keys in sorted order."""
    order = pc.sort_indices(
        pa.table({"k": keys, "e": rows[EVENT_NS], "c": rows[CREATED_NS], "t": rows[TIE]}),
        sort_keys=[("k", "ascending"), ("e", "ascending"), ("c", "ascending"), ("t", "ascending")],
    )
    sorted_keys = keys.take(order)
    last = np.ones(len(keys), dtype=bool)
    if len(keys) > 1:
        last[:-1] = pc.not_equal(sorted_keys[1:], sorted_keys[:-1]).to_numpy(zero_copy_only=False)
    pick = order.to_numpy()[last]
    return rows.take(pick), keys.take(pick)


def encode_keys(rows: pa.Table | pa.RecordBatch, project: str, table: JobTable) -> pa.BinaryArray:
    entity_types = {e.name: e.value_type for e in table.entities}
    return columnar_encoding.encode_keys(
        project, {name: rows.column(name) for name in entity_types}, entity_types
    )


def encode_rows(rows: pa.Table | pa.RecordBatch, keys: pa.BinaryArray, table: JobTable) -> EncodedRows:
    """The Redis writes of deduplicated rows (columnar, no per-row Python)."""
    event_ns = rows.column(EVENT_NS).to_numpy().astype(np.int64)
    ts_values = columnar_encoding.encode_timestamps_ns(event_ns)
    ex_values = None
    if table.max_age_seconds > 0:
        ex_values = columnar_encoding.encode_timestamps_ns(
            redis_layout.expiry_ns(event_ns, table.max_age_seconds)
        )
    features = {
        redis_layout.feature_field(table.name, f.name): columnar_encoding.encode_values(
            rows.column(f.name), f.value_type
        )
        for f in table.features
    }
    return EncodedRows(
        keys=keys,
        event_ns=event_ns,
        ts_values=ts_values,
        ex_values=ex_values,
        expire_at=columnar_encoding.expire_at_seconds(event_ns, table.max_age_seconds),
        features=features,
    )


def _writer(
    project: str, table: JobTable, redis_url: str
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function each partition runs: the latest row of each of its keys, encoded and written in slices."""
    ts_field = redis_layout.ts_field(table.name)
    ex_field = redis_layout.ex_field(table.name)

    def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        written = stale = 0
        max_event = _NO_TIME
        lag = metrics_push.LagCounts()
        received = [b for b in batches if b.num_rows]
        if received:
            rows = pa.Table.from_batches(received).combine_chunks()
            del received
            rows, keys = latest_per_key(rows, encode_keys(rows, project, table))
            sink = RedisSink(redis_url, ts_field, ex_field)
            try:
                order = sink.write_order(keys)
                if order is not None:
                    rows, keys = rows.take(order), keys.take(order)
                for start in range(0, rows.num_rows, WRITE_SLICE_ROWS):
                    encoded = encode_rows(
                        rows.slice(start, WRITE_SLICE_ROWS), keys.slice(start, WRITE_SLICE_ROWS), table
                    )
                    sink.send(encoded)  # returns while Redis writes it: the next slice is encoded meanwhile
                    max_event = max(max_event, int(encoded.event_ns.max()))
                    lag = lag + metrics_push.LagCounts.of_event_times(encoded.event_ns, time.time_ns())
                result = sink.flush()
                written, stale = result.written, result.stale
            finally:
                sink.close()
        yield pa.RecordBatch.from_pydict(
            {
                "written": [written],
                "stale": [stale],
                "max_event_ns": [max_event],
                "lag_counts": [list(lag.counts)],
                "lag_sum": [lag.sum_seconds],
            },
            schema=pa.schema(
                [
                    ("written", pa.int64()),
                    ("stale", pa.int64()),
                    ("max_event_ns", pa.int64()),
                    ("lag_counts", pa.list_(pa.int64())),
                    ("lag_sum", pa.float64()),
                ]
            ),
        )

    return write_partition


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
    latest = _keyed_rows(observed.where(valid), table)
    results = latest.mapInArrow(_writer(args.project, table, args.redis_url), _OUT_SCHEMA).collect()
    written = sum(r["written"] for r in results)
    stale = sum(r["stale"] for r in results)
    keys = written + stale
    events = [r["max_event_ns"] for r in results if r["max_event_ns"] != _NO_TIME]
    lag = metrics_push.LagCounts()
    for r in results:
        lag = lag + metrics_push.LagCounts(tuple(r["lag_counts"]), r["lag_sum"])
    max_event = max(events) if events else None
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
