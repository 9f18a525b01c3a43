"""Writing validated rows to the online store, the same for batch and stream ingestion: source columns converted
to their declared types with the reason a row is invalid; the latest row of each entity key (event time, then
created time, then the greatest hash of the values, so that a rerun picks the same); the Redis layout encoded
column by column (kernel.online.columns) and written with the write rule (redis_sink: never over a newer stored
row). The rows of a key meet in one partition (a hash exchange); choosing and encoding run over each partition's
Arrow batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from provender.jobs import metrics_push, sources
from provender.jobs.redis_sink import EncodedRows, RedisSink
from provender.jobs.typed_columns import convert
from provender.kernel.jobs.args import JobTable
from provender.kernel.jobs.conf import EVENT_NS_COLUMN
from provender.kernel.online import columns as columnar_encoding
from provender.kernel.online import layout as redis_layout

EVENT_NS = EVENT_NS_COLUMN
CREATED_NS = "__created_ns"
REASON = "__reason"
TIE = "__tie"
WRITE_SLICE_ROWS = 10_000
OUT_SCHEMA = "written long, stale long, max_event_ns long, lag_counts array<long>, lag_sum double"
NO_TIME = -(2**63)


def validated(
    df: DataFrame,
    table: JobTable,
    event_column: str,
    created_column: str | None,
    nanos: frozenset[str],
    where: str,
) -> DataFrame:
    """`df`'s columns, each entity and feature converted to its declared type (`__typed_<name>`), event and
    created times in Unix ns, and `__reason`: why the row is invalid (null when it is valid). `df` has the
    table's names (field_mapping applied); `nanos` are its columns of Unix nanoseconds."""
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

    ev_col = event_column
    ev = sources.event_ns(df, ev_col, nanos, where)
    reasons.insert(0, F.when(F.col(f"`{ev_col}`").isNull(), F.lit(f"event timestamp {ev_col}: null")))
    reasons.insert(
        1,
        F.when(
            ev.isNull(),
            F.concat(F.lit(f"event timestamp {ev_col}: unparseable: "), F.col(f"`{ev_col}`").cast("string")),
        ),
    )
    cr_col = created_column
    if cr_col:
        cr = sources.event_ns(df, cr_col, nanos, where)
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

    return df.select(
        *[F.col(f"`{c}`") for c in df.columns],
        *[value.alias(f"__typed_{name}") for name, value in typed.items()],
        ev.alias(EVENT_NS),
        cr.alias(CREATED_NS),
        F.coalesce(*reasons).alias(REASON),
    )


@dataclass(frozen=True)
class WriteTotals:
    """What writing the latest row of each key did: rows written, skipped (a newer row was stored), the latest
    event time written (None: nothing), and event-time lag counts for the metrics."""

    written: int = 0
    stale: int = 0
    max_event_ns: int | None = None
    lag: metrics_push.LagCounts = field(default_factory=metrics_push.LagCounts)


def write_latest(valid: DataFrame, project: str, table: JobTable, redis_url: str) -> WriteTotals:
    """Write the latest valid row of each entity key of `valid` (a `validated` frame's valid rows)."""
    results = (
        keyed_rows(valid, table).mapInArrow(partition_writer(project, table, redis_url), OUT_SCHEMA).collect()
    )
    events = [r["max_event_ns"] for r in results if r["max_event_ns"] != NO_TIME]
    lag = metrics_push.LagCounts()
    for r in results:
        lag = lag + metrics_push.LagCounts(tuple(r["lag_counts"]), r["lag_sum"])
    return WriteTotals(
        written=sum(r["written"] for r in results),
        stale=sum(r["stale"] for r in results),
        max_event_ns=max(events) if events else None,
        lag=lag,
    )


def keyed_rows(valid: DataFrame, table: JobTable) -> DataFrame:
    """The valid rows with their typed columns, a tie-breaker, and all rows of one entity key in one partition.

    The latest row of each key is then chosen in the partition (latest_per_key): a hash exchange and a vectorised
    sort instead of a sort-based aggregation of whole rows in Spark.
    """
    entities = [F.col(f"`__typed_{e.name}`").alias(e.name) for e in table.entities]
    features = [F.col(f"`__typed_{f.name}`") for f in table.features]
    return valid.select(
        *entities,
        F.col(EVENT_NS),
        F.coalesce(F.col(CREATED_NS), F.lit(NO_TIME)).alias(CREATED_NS),
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


def partition_writer(
    project: str, table: JobTable, redis_url: str
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function each partition runs: the latest row of each of its keys, encoded and written in slices."""
    ts_field = redis_layout.ts_field(table.name)
    ex_field = redis_layout.ex_field(table.name)

    def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        written = stale = 0
        max_event = NO_TIME
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
