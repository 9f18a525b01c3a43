"""Historical retrieval: a point-in-time correct training set, written as parquet.

    spark-submit retrieval.py '<RetrievalJobArgs JSON>' | @<file of it>      (or run(spark, args) in-process)

The entity source (parquet or CSV with the entity columns and an event timestamp column) is joined, for each
requested table, with that table's feature rows as point_in_time defines. The output keeps every entity row and
every entity source column, plus one column `<table>__<feature>` per feature reference (null when there is no
row), as parquet files in the output location (a directory `pandas.read_parquet` opens). Prints one
`PROVENDER_JOB_SUMMARY {json}` line and returns the summary.

The entity source's columns come back in their own types: a timestamp column as a timestamp, tz-aware in UTC when
pyarrow reads it tz-aware (in any zone; in a CSV: values with an offset or Z), naive when naive, at microsecond
precision (nanoseconds rounded down in the output; the join uses them); a CSV's integer columns as int64, as pandas
reads them (Spark's inference makes small ones int32); any other column as Spark reads it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from provender.jobs import point_in_time, sources
from provender.jobs.entrypoint import spark_main
from provender.jobs.typed_columns import convert
from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import FeatureSelection, RetrievalJobArgs

_ENTITY = "__entity_row"


@dataclass(frozen=True)
class RetrievalSummary:
    job: str
    project: str
    entity_rows: int
    feature_refs: list[str]
    output_location: str
    duration_seconds: float


def output_column(table: str, feature: str) -> str:
    return f"{table}__{feature}"


def _entity_rows(spark: SparkSession, args: RetrievalJobArgs) -> tuple[DataFrame, list[str], list[Column]]:
    """The entity source with ROW_ID and ENTITY_TIME_NS, its own column names, and its columns as the output gives
    them back (_as_output)."""
    src = args.entity_source
    df = sources.read(spark, src, where="entity_source")
    sources.require_columns(df, [src.event_timestamp_column], "entity_source")
    needed = sorted({e.name for sel in args.tables for e in sel.table.entities})
    missing = [n for n in needed if n not in df.columns]
    if missing:
        users = {
            n: [s.table.name for s in args.tables if n in {e.name for e in s.table.entities}] for n in missing
        }
        raise InvalidArgument(
            "entity_source columns",
            missing,
            f"the entity columns of the requested tables {users} (it has {df.columns})",
        )
    for sel in args.tables:
        for f in sel.features:
            name = output_column(sel.table.name, f)
            if name in df.columns:
                raise InvalidArgument(
                    "entity_source columns", name, "no column named like a feature reference output"
                )
    original = df.columns
    timestamps = sources.timestamp_columns(src, "entity_source")
    entity_ns = sources.event_ns(
        df, src.event_timestamp_column, sources.nanosecond_columns(timestamps), "entity_source"
    )
    return (
        df.withColumn(point_in_time.ENTITY_TIME_NS, entity_ns).withColumn(
            point_in_time.ROW_ID, F.monotonically_increasing_id()
        ),
        original,
        [_as_output(df, c, timestamps.get(c), src.file_format).alias(c) for c in original],
    )


def _as_output(
    df: DataFrame, name: str, timestamp: sources.TimestampColumn | None, file_format: str
) -> Column:
    """An entity source column in the type pandas would read it in: a timestamp column (parquet TIMESTAMP(NANOS)
    too, read as a long) as a timestamp, tz-aware (Spark's TIMESTAMP) or naive (TIMESTAMP_NTZ) as it was; a CSV's
    integers as longs. Any other column as it is."""
    dtype = df.schema[name].dataType
    col = F.col(f"`{name}`")
    if timestamp is not None:
        if isinstance(dtype, T.LongType) and timestamp.nanos:
            # Unix ns to µs, rounded down (exact in decimal: a double would lose the low digits)
            micros = F.floor(col.cast(T.DecimalType(20, 0)) / F.lit(1000)).cast(T.LongType())
            col, dtype = F.timestamp_micros(micros), T.TimestampType()
        if isinstance(dtype, T.TimestampType | T.TimestampNTZType):
            # (the session is in UTC: a naive time keeps its wall-clock value)
            return col.cast(T.TimestampType() if timestamp.tz_aware else T.TimestampNTZType())
    if file_format == "csv" and isinstance(dtype, T.ByteType | T.ShortType | T.IntegerType):
        return col.cast(T.LongType())
    return col


def _typed_entities(entity_rows: DataFrame, sel: FeatureSelection, carry: str | None = None) -> DataFrame:
    """ROW_ID, ENTITY_TIME_NS and the table's entity columns in their declared types (a bad value: null key),
    and the `carry` column when given."""
    typed = [
        convert(
            e.name, entity_rows.schema[e.name].dataType, e.value_type, "entity_source entity"
        ).value.alias(e.name)
        for e in sel.table.entities
    ]
    carried = [F.col(carry)] if carry else []
    return entity_rows.select(
        F.col(point_in_time.ROW_ID), F.col(point_in_time.ENTITY_TIME_NS), *carried, *typed
    )


def _feature_rows(spark: SparkSession, sel: FeatureSelection) -> point_in_time.FeatureRows:
    table = sel.table
    src = table.batch_source
    where = f"table {table.name}.batch_source"
    df = sources.read(spark, src, where=where)
    sources.require_columns(
        df, [*(e.name for e in table.entities), *sel.features, src.event_timestamp_column], where
    )
    created_column = sources.created_column(df, src, table.name)
    nanos = sources.nanosecond_columns(sources.timestamp_columns(src, where))
    columns = [
        convert(e.name, df.schema[e.name].dataType, e.value_type, "entity").value.alias(e.name)
        for e in table.entities
    ]
    for name in sel.features:
        feature = table.feature(name)
        value = convert(name, df.schema[name].dataType, feature.value_type, "feature").value
        columns.append(value.alias(output_column(table.name, name)))
    columns.append(
        sources.event_ns(df, src.event_timestamp_column, nanos, where).alias(point_in_time.EVENT_TIME_NS)
    )
    if created_column:
        created = sources.event_ns(df, created_column, nanos, where)
    else:
        created = F.lit(None).cast("long")
    columns.append(created.alias(point_in_time.CREATED_TIME_NS))
    return point_in_time.FeatureRows(
        frame=df.select(*columns),
        entities=[e.name for e in table.entities],
        features=[output_column(table.name, f) for f in sel.features],
        max_age_seconds=table.max_age_seconds,
    )


def _strategy(spark: SparkSession, typed: DataFrame, sel: FeatureSelection) -> point_in_time.Strategy:
    entity_profile = point_in_time.profile(typed, [e.name for e in sel.table.entities])
    strategy = point_in_time.choose(spark, entity_profile)
    print(f"point-in-time join of {sel.table.name}: {strategy.value} ({entity_profile})", flush=True)
    return strategy


def run(spark: SparkSession, args: RetrievalJobArgs) -> RetrievalSummary:
    began = time.monotonic()
    sources.configure_session(spark)
    entity_rows, original, as_output = _entity_rows(spark, args)
    # The entity source's columns ride through the first table's join in one struct: no join back to them.
    # Cached: ROW_ID must be the same wherever the rows are read again (profiles, every join).
    keys = sorted({e.name for sel in args.tables for e in sel.table.entities})
    entity_rows = entity_rows.select(
        F.col(point_in_time.ROW_ID),
        F.col(point_in_time.ENTITY_TIME_NS),
        *[F.col(f"`{k}`") for k in keys],
        F.struct(*as_output).alias(_ENTITY),
    ).persist()
    try:
        first, *others = args.tables
        typed = _typed_entities(entity_rows, first, _ENTITY)
        result = point_in_time.join(
            typed, _feature_rows(spark, first), _strategy(spark, typed, first), _ENTITY
        )
        for sel in others:
            typed = _typed_entities(entity_rows, sel)
            features = point_in_time.join(typed, _feature_rows(spark, sel), _strategy(spark, typed, sel))
            result = result.join(features, on=point_in_time.ROW_ID, how="left")
        out_columns = [F.col(f"{_ENTITY}.`{c}`").alias(c) for c in original]
        out_columns += [F.col(output_column(s.table.name, f)) for s in args.tables for f in s.features]
        result.select(*out_columns).write.mode("overwrite").parquet(sources.spark_path(args.output_location))
        count = entity_rows.count()  # from the cache
    finally:
        entity_rows.unpersist()
    summary = RetrievalSummary(
        job="historical_retrieval",
        project=args.project,
        entity_rows=count,
        feature_refs=[f"{s.table.name}:{f}" for s in args.tables for f in s.features],
        output_location=args.output_location,
        duration_seconds=round(time.monotonic() - began, 3),
    )
    job_report.print_summary(asdict(summary))
    return summary


def main(argv: Sequence[str]) -> dict[str, Any]:
    return spark_main(argv, RetrievalJobArgs.from_json, run)


if __name__ == "__main__":
    # By module name, so that the executors unpickle the job's functions by reference.
    from provender.jobs.retrieval import main as _main

    sys.exit(job_report.run_main(_main, sys.argv[1:]))
