"""The point-in-time join: the one module that says which feature row an entity row gets.

For an entity row with entity key k and time t, and a feature table with max_age m (seconds, 0 = unlimited), the
row gets the feature row of key k with the greatest (event time, created time) among those with event time ≤ t
and, when m > 0, t - event time ≤ m. No such row: every feature is null. Every entity row is kept, duplicates
included; an entity row with a null key or a null time gets nulls. Feature rows with a null key or a null event
time never match. A created time that is null sorts before every created time. Rows equal in both times are a
full tie: one of them is taken.

How: the entity rows and the feature rows of each key are put in one sequence ordered by time, feature rows
before entity rows at the same time (event time ≤ t) and by created time among themselves; each entity row takes
the last feature row before it (a window `last(..., ignorenulls)`), then max_age is applied. One shuffle and sort
by key, no key-to-key explosion of a range join.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

ROW_ID = "__row_id"
ENTITY_TIME_NS = "__entity_ns"
EVENT_TIME_NS = "__event_ns"
CREATED_TIME_NS = "__created_ns"

_TIME = "__pit_time"
_KIND = "__pit_kind"  # 0: feature row, 1: entity row (feature rows first at equal times)
_CREATED = "__pit_created"
_FEATURES = "__pit_features"
_LAST = "__pit_last"
_NO_TIME = -(2**63)


@dataclass(frozen=True)
class FeatureRows:
    """One table's feature rows: entity columns, EVENT_TIME_NS, CREATED_TIME_NS (nullable) and feature columns."""

    frame: DataFrame
    entities: Sequence[str]
    features: Sequence[str]  # column names, kept as the output names
    max_age_seconds: int = 0


def join(entity_rows: DataFrame, table: FeatureRows, carry: str | None = None) -> DataFrame:
    """For every entity row (ROW_ID, the table's entity columns, ENTITY_TIME_NS): ROW_ID and the table's features
    as of the row's time. Entity and feature columns must already have the same types. `carry` names a column of
    the entity rows passed through to the output unchanged (what spares a join back to the entity rows)."""
    keys = [F.col(f"`{e}`") for e in table.entities]
    carried = [F.col(carry)] if carry else []
    entity_side = entity_rows.select(
        F.col(ROW_ID),
        *carried,
        *keys,
        F.col(ENTITY_TIME_NS).alias(_TIME),
        F.lit(1).alias(_KIND),
        F.lit(_NO_TIME).cast("long").alias(_CREATED),
        F.lit(None).cast(_feature_struct_type(table)).alias(_FEATURES),
    )
    feature_frame = table.frame.where(F.col(EVENT_TIME_NS).isNotNull())
    for k in keys:
        feature_frame = feature_frame.where(k.isNotNull())
    feature_side = feature_frame.select(
        F.lit(None).cast("long").alias(ROW_ID),
        *([F.lit(None).cast(entity_rows.schema[carry].dataType).alias(carry)] if carry else []),
        *keys,
        F.col(EVENT_TIME_NS).alias(_TIME),
        F.lit(0).alias(_KIND),
        F.coalesce(F.col(CREATED_TIME_NS), F.lit(_NO_TIME)).alias(_CREATED),
        F.struct(F.col(EVENT_TIME_NS).alias("event_ns"), *[F.col(f"`{f}`") for f in table.features]).alias(
            _FEATURES
        ),
    )
    order = (
        Window.partitionBy(*keys)
        .orderBy(F.col(_TIME).asc_nulls_first(), F.col(_KIND), F.col(_CREATED))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    sequenced = entity_side.unionByName(feature_side).withColumn(
        _LAST, F.last(F.col(_FEATURES), ignorenulls=True).over(order)
    )
    matched = sequenced.where(F.col(_KIND) == 1)
    usable = F.col(f"{_LAST}.event_ns").isNotNull()
    if table.max_age_seconds > 0:
        max_age_ns = F.lit(table.max_age_seconds * 1_000_000_000)
        usable = usable & (F.col(_TIME) - F.col(f"{_LAST}.event_ns") <= max_age_ns)
    return matched.select(
        F.col(ROW_ID),
        *carried,
        *[F.when(usable, F.col(_LAST)[f]).alias(f) for f in table.features],
    )


def _feature_struct_type(table: FeatureRows) -> T.StructType:
    schema = table.frame.schema
    return T.StructType(
        [
            T.StructField("event_ns", T.LongType()),
            *[T.StructField(f, schema[f].dataType) for f in table.features],
        ]
    )
