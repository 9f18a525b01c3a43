"""Reading a JobSource in a Spark job: URL to path, parquet or CSV, date-partition pruning, field_mapping, the
source's timestamp columns as pyarrow sees them (nanoseconds, tz-aware or naive), the created timestamp column when
the source has it, and event/created timestamp columns as Unix nanoseconds (with a null where a value does not parse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.args import JobSource

# Session settings every job needs: times in UTC, parquet TIMESTAMP(NANOS) readable (as longs, see event_ns), and
# timestamps written to parquet as TIMESTAMP(MICROS) (pandas reads them tz-aware; Spark's default INT96 reads naive).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def configure_session(spark: SparkSession) -> None:
    for key, value in SESSION_CONF.items():
        spark.conf.set(key, value)


def spark_path(url: str) -> str:
    """A source URL as Spark reads it: file:// as is, s3:// through the s3a connector."""
    if url.startswith("s3://"):
        return "s3a://" + url[len("s3://") :]
    return url


@dataclass(frozen=True)
class TimestampColumn:
    """A timestamp column of a source file as pyarrow reads it."""

    nanos: bool  # parquet TIMESTAMP(NANOS), which Spark reads as a long of Unix nanoseconds (nanosAsLong)
    tz_aware: bool  # an instant (pandas: datetime64[..., tz]); else a wall-clock time (naive)


def timestamp_columns(source: JobSource, where: str = "source") -> dict[str, TimestampColumn]:
    """The timestamp columns of the source's files, found with pyarrow (CSV: the types pyarrow infers from the
    first rows), by the names the table uses (field_mapping applied). Empty, with a line in the job log, when
    pyarrow cannot read the files."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    url = source.file_url
    try:
        schema = ds.dataset(
            url.removeprefix("file://") if url.startswith("file://") else url,
            format="csv" if source.file_format == "csv" else "parquet",
            partitioning="hive",
        ).schema
    except (OSError, ValueError, pa.ArrowException) as e:
        reason = _first_line(e)
        print(
            f"{where}: schema not readable with pyarrow ({reason}); timestamps as Spark reads them",
            flush=True,
        )
        return {}
    return {
        source.field_mapping.get(f.name, f.name): TimestampColumn(
            nanos=source.file_format != "csv" and f.type.unit == "ns", tz_aware=f.type.tz is not None
        )
        for f in schema
        if pa.types.is_timestamp(f.type)
    }


def nanosecond_columns(timestamps: dict[str, TimestampColumn]) -> frozenset[str]:
    """The columns Spark reads as longs of Unix nanoseconds (see event_ns)."""
    return frozenset(name for name, t in timestamps.items() if t.nanos)


def read(
    spark: SparkSession,
    source: JobSource,
    window: tuple[datetime, datetime] | None = None,
    where: str = "source",
) -> DataFrame:
    """The source as a DataFrame, field_mapping applied; with a window, only the date partitions it touches."""
    path = spark_path(source.file_url)
    try:
        if source.file_format == "csv":
            df = spark.read.option("header", "true").option("inferSchema", "true").csv(path)
        else:
            df = spark.read.parquet(path)
    except Exception as e:  # AnalysisException: path missing, not parquet, ...
        if type(e).__name__ in ("AnalysisException", "Py4JJavaError", "IllegalArgumentException"):
            raise InvalidArgument(
                f"{where}.file_url",
                source.file_url,
                f"a readable {source.file_format} location ({_first_line(e)})",
            ) from None
        raise
    if window is not None and source.date_partition_column:
        df = _prune_partitions(df, source, window, where)
    return apply_field_mapping(df, source.field_mapping, where)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def _prune_partitions(
    df: DataFrame, source: JobSource, window: tuple[datetime, datetime], where: str
) -> DataFrame:
    column = source.date_partition_column
    if column not in df.columns:
        raise InvalidArgument(
            f"{where}.date_partition_column",
            column,
            f"a partition column of the source (it has {df.columns})",
        )
    start, end = window
    first = start.date().isoformat()
    last = (end - timedelta(microseconds=1)).date().isoformat()
    # A filter on the partition column alone: Spark prunes the partition folders outside it before reading.
    as_text = F.col(f"`{column}`").cast("string")
    return df.where((as_text >= F.lit(first)) & (as_text <= F.lit(last)))


def apply_field_mapping(df: DataFrame, mapping: dict[str, str], where: str) -> DataFrame:
    """Rename source columns to the names the table uses (field_mapping: source column -> name)."""
    for source_name, name in mapping.items():
        if source_name not in df.columns:
            continue
        if name in df.columns and name != source_name:
            raise InvalidArgument(
                f"{where}.field_mapping",
                {source_name: name},
                f"a target name that is not already a column ({name!r} is)",
            )
        df = df.withColumnRenamed(source_name, name)
    return df


def created_column(df: DataFrame, source: JobSource, table: str) -> str | None:
    """The source's created timestamp column; None when it declares none, or declares one it does not have (as
    Feast 0.9's sources may: Feast never needed it), which the job log says: the latest row of an entity is then
    chosen by event time alone, as if every created time were null."""
    name = source.created_timestamp_column
    if name and name not in df.columns:
        print(
            f"table {table}: batch source has no created timestamp column {name!r}; "
            "the latest row per entity is chosen by event time alone",
            flush=True,
        )
        return None
    return name or None


def require_columns(df: DataFrame, names: list[str], where: str) -> None:
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise InvalidArgument(f"{where} columns", missing, f"columns of the source (it has {df.columns})")


def event_ns(df: DataFrame, column: str, nanos: frozenset[str], where: str) -> Column:
    """Unix nanoseconds of a timestamp column (null where the value is null or does not parse).

    Accepted: timestamp, timestamp_ntz and date columns, strings Spark parses as timestamps (ISO 8601), and
    parquet TIMESTAMP(NANOS) columns (kept to the nanosecond).
    """
    dtype = df.schema[column].dataType
    col = F.col(f"`{column}`")
    if isinstance(dtype, T.TimestampType):
        return F.unix_micros(col) * F.lit(1000)
    if isinstance(dtype, T.TimestampNTZType | T.DateType):
        return F.unix_micros(col.cast(T.TimestampType())) * F.lit(1000)
    if isinstance(dtype, T.StringType):
        return F.unix_micros(col.try_cast(T.TimestampType())) * F.lit(1000)
    if isinstance(dtype, T.LongType) and column in nanos:
        return col
    raise InvalidArgument(
        f"{where} timestamp column {column!r}",
        dtype.simpleString(),
        "a timestamp, date or ISO 8601 string column (or parquet TIMESTAMP(NANOS))",
    )
