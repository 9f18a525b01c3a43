"""Writing a DataFrame into a feature table's batch source: typed as the table says, partitioned by its date
partition column, checked completely before the first byte is written."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from provender.data_source import FileSource
from provender.feature_table import FeatureTable
from provender.kernel.errors import InvalidArgument
from provender.kernel.value_types import ValueType, arrow_type
from provender.storage import filesystem


@dataclass(frozen=True)
class IngestResult:
    table: str
    rows: int
    url: str
    partitions: list[str]

    def _repr_html_(self) -> str:
        from provender.rendering import html_table

        shown = (
            self.partitions
            if len(self.partitions) <= 6
            else [*self.partitions[:3], "...", *self.partitions[-2:]]
        )
        rows = [("rows", f"{self.rows:,}"), ("written to", self.url), ("date partitions", ", ".join(shown))]
        return html_table(f"ingested into {self.table}", ["", ""], rows, header=False)


def source_columns(table: FeatureTable, entity_types: dict[str, ValueType]) -> dict[str, ValueType | str]:
    """Every column the batch source must have: name -> value type ("timestamp" for time columns)."""
    source = table.batch_source
    if not isinstance(source, FileSource):
        raise InvalidArgument("table.batch_source", type(source).__name__, "a FileSource to ingest into")
    mapping = source.field_mapping
    columns: dict[str, ValueType | str] = {}
    for name in table.entities:
        columns[mapping.get(name, name)] = entity_types[name]
    for feature in table.features:
        columns[mapping.get(feature.name, feature.name)] = feature.dtype
    columns[source.event_timestamp_column] = "timestamp"
    if source.created_timestamp_column:
        columns[source.created_timestamp_column] = "timestamp"
    return columns


def optional_columns(table: FeatureTable) -> set[str]:
    """Source columns a DataFrame may leave out: the created timestamp, as Feast 0.9's own data does. It is
    written as nulls then (every file of the source keeps one schema), and the jobs keep the latest row per
    entity by event time alone."""
    source = table.batch_source
    return {source.created_timestamp_column} if isinstance(source, FileSource) else set()


def to_arrow(df: pd.DataFrame, table: FeatureTable, entity_types: dict[str, ValueType]) -> pa.Table:
    """The rows as an Arrow table with exactly the declared types; InvalidArgument names a missing column or
    the first value that does not fit, and nothing has been written then."""
    columns = source_columns(table, entity_types)
    absent = {name for name in optional_columns(table) if name and name not in df.columns}
    missing = [c for c in columns if c not in df.columns and c not in absent]
    if missing:
        raise InvalidArgument(
            "dataframe columns",
            sorted(df.columns),
            f"the columns of table {table.name!r}, including {missing}",
        )
    arrays: dict[str, pa.Array] = {}
    for name, kind in columns.items():
        if name in absent:
            arrays[name] = pa.nulls(len(df), pa.timestamp("us", tz="UTC"))
            continue
        series = df[name]
        if kind == "timestamp":
            try:
                converted = pd.to_datetime(series, utc=True)
            except (ValueError, TypeError) as e:
                raise InvalidArgument(f"column {name}", str(series.iloc[0]), f"timestamps ({e})") from None
            arrays[name] = pa.array(converted, type=pa.timestamp("us", tz="UTC"))
            continue
        target = arrow_type(kind)
        try:
            arrays[name] = pa.array(series, type=target, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as e:
            raise InvalidArgument(
                f"column {name}", f"{series.dtype} values", f"values that fit {kind.name} ({e})"
            ) from None
    source = table.batch_source
    assert isinstance(source, FileSource)
    if source.date_partition_column:
        part = source.date_partition_column
        if part in df.columns:
            arrays[part] = pa.array(df[part].astype(str))
        else:  # derived from the event time, as the jobs prune partitions by it
            times = pd.to_datetime(df[source.event_timestamp_column], utc=True)
            arrays[part] = pa.array(times.dt.strftime("%Y-%m-%d"))
    return pa.table(arrays)


def write(data: pa.Table, table: FeatureTable) -> IngestResult:
    source = table.batch_source
    assert isinstance(source, FileSource)
    fs, path = filesystem(source.file_url)
    partition_cols = [source.date_partition_column] if source.date_partition_column else None
    # A new file name per ingest: earlier data stays; the jobs keep the latest row per key.
    basename = f"part-{uuid.uuid4().hex}-{{i}}.parquet"
    try:
        pq.write_to_dataset(
            data, root_path=path, filesystem=fs, partition_cols=partition_cols, basename_template=basename
        )
    except OSError as e:
        reason = e.strerror or str(e)
        raise InvalidArgument(
            f"feature table {table.name!r} batch_source.file_url",
            source.file_url,
            f"a location this process can write ({reason}); apply the table with a file_url you can write",
        ) from None
    partitions = sorted(set(data.column(partition_cols[0]).to_pylist())) if partition_cols else []
    return IngestResult(table=table.name, rows=data.num_rows, url=source.file_url, partitions=partitions)
