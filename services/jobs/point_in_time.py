"""The point-in-time join: the one module that says which feature row an entity row gets.

For an entity row with entity key k and time t, and a feature table with max_age m (seconds, 0 = unlimited), the
row gets the feature row of key k with the greatest (event time, created time) among those with event time ≤ t
and, when m > 0, t - event time ≤ m. No such row: every feature is null. Every entity row is kept, duplicates
included; an entity row with a null key or a null time gets nulls. Feature rows with a null key or a null event
time never match. A created time that is null sorts before every created time. Rows equal in both times are a
full tie: one of them is taken.

Two ways to compute it, the same answer (the tests run both against an independent oracle):
- BROADCAST: the entity rows (a few columns each) are broadcast to every task that scans the feature rows; each
  feature row is paired with the entity rows of its key whose time window it falls in, and the candidates of each
  entity row reduce to the greatest (event time, created time). The big feature side is never shuffled or sorted,
  which makes it several times faster than sorting; but its work grows with the number of entity rows per key
  (each feature row is compared with every entity row of its key), and the entity rows must fit in memory.
- SEQUENCE: the entity rows and the feature rows of each key are put in one sequence ordered by time, feature rows
  before entity rows at the same time (event time ≤ t) and by created time among themselves; each entity row
  takes the last feature row before it (a window `last(..., ignorenulls)`), then max_age is applied. One shuffle
  and sort of both sides by key: no pairing of rows, whatever the number of entity rows per key.
`choose` picks BROADCAST when the entity rows are few enough and no key has many of them, SEQUENCE otherwise;
the Spark setting `spark.provender.retrieval.strategy` (auto, broadcast, sequence) overrides it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.conf import EVENT_NS_COLUMN, RETRIEVAL_STRATEGY_CONF

ROW_ID = "__row_id"
ENTITY_TIME_NS = "__entity_ns"
EVENT_TIME_NS = EVENT_NS_COLUMN
CREATED_TIME_NS = "__created_ns"

STRATEGY_SETTING = RETRIEVAL_STRATEGY_CONF
# BROADCAST's limits: entity rows in memory on every task, and feature-row comparisons per entity key.
BROADCAST_MAX_ROWS = 5_000_000
BROADCAST_MAX_ROWS_PER_KEY = 32

_TIME = "__pit_time"
_KIND = "__pit_kind"  # 0: feature row, 1: entity row (feature rows first at equal times)
_CREATED = "__pit_created"
_FEATURES = "__pit_features"
_LAST = "__pit_last"
_BEST = "__pit_best"
_NO_TIME = -(2**63)


class Strategy(enum.Enum):
    BROADCAST = "broadcast"
    SEQUENCE = "sequence"


@dataclass(frozen=True)
class FeatureRows:
    """One table's feature rows: entity columns, EVENT_TIME_NS, CREATED_TIME_NS (nullable) and feature columns."""

    frame: DataFrame
    entities: Sequence[str]
    features: Sequence[str]  # column names, kept as the output names
    max_age_seconds: int = 0


@dataclass(frozen=True)
class EntityProfile:
    """How many entity rows have a key, and the most rows any one key has."""

    rows: int
    max_rows_per_key: int


def profile(entity_rows: DataFrame, entities: Sequence[str]) -> EntityProfile:
    """One small Spark job over the entity rows (cache them first: they are read again by the join)."""
    keyed = entity_rows
    for e in entities:  # rows with a null key match nothing: they do not count
        keyed = keyed.where(F.col(f"`{e}`").isNotNull())
    per_key = keyed.groupBy(*[F.col(f"`{e}`") for e in entities]).agg(F.count(F.lit(1)).alias("n"))
    row = per_key.agg(F.sum("n").alias("rows"), F.max("n").alias("most")).first()
    return EntityProfile(rows=int(row["rows"] or 0), max_rows_per_key=int(row["most"] or 0))


def choose(spark: SparkSession, entity_profile: EntityProfile) -> Strategy:
    setting = (spark.conf.get(STRATEGY_SETTING, "auto") or "auto").strip().lower()
    if setting != "auto":
        try:
            return Strategy(setting)
        except ValueError:
            raise InvalidArgument(STRATEGY_SETTING, setting, "auto, broadcast or sequence") from None
    if (
        entity_profile.rows <= BROADCAST_MAX_ROWS
        and entity_profile.max_rows_per_key <= BROADCAST_MAX_ROWS_PER_KEY
    ):
        return Strategy.BROADCAST
    return Strategy.SEQUENCE


def join(
    entity_rows: DataFrame, table: FeatureRows, strategy: Strategy, carry: str | None = None
) -> DataFrame:
    """For every entity row (ROW_ID, the table's entity columns, ENTITY_TIME_NS): ROW_ID and the table's features
    as of the row's time, one output row per entity row. Entity and feature columns must already have the same
    types. `carry` names a column of the entity rows passed through unchanged (what spares a join back to them)."""
    if strategy is Strategy.BROADCAST:
        return _by_broadcast(entity_rows, table, carry)
    return _by_sequence(entity_rows, table, carry)


def _by_broadcast(entity_rows: DataFrame, table: FeatureRows, carry: str | None) -> DataFrame:
    keys = list(table.entities)
    carried = [F.col(carry)] if carry else []
    entity_side = entity_rows.select(F.col(ROW_ID), *[F.col(f"`{k}`") for k in keys], F.col(ENTITY_TIME_NS))
    feature_side = table.frame.select(
        *[F.col(f"`{k}`") for k in keys],
        F.col(EVENT_TIME_NS),
        F.coalesce(F.col(CREATED_TIME_NS), F.lit(_NO_TIME)).alias(_CREATED),
        *[F.col(f"`{f}`") for f in table.features],
    )
    in_window = F.col(EVENT_TIME_NS) <= F.col(ENTITY_TIME_NS)
    if table.max_age_seconds > 0:
        in_window = in_window & (
            F.col(ENTITY_TIME_NS) - F.col(EVENT_TIME_NS) <= F.lit(table.max_age_seconds * 1_000_000_000)
        )
    # an equi-join on the keys never pairs null keys; a null time fails the window
    candidates = feature_side.join(F.broadcast(entity_side), on=keys, how="inner").where(in_window)
    # structs compare field by field: the greatest event time, then created time (a full tie takes either)
    ranked = F.struct(
        F.col(EVENT_TIME_NS),
        F.col(_CREATED),
        *[F.col(f"`{f}`").alias(f"v{i}") for i, f in enumerate(table.features)],
    )
    candidates = candidates.select(F.col(ROW_ID), ranked.alias(_BEST))
    # every entity row joins the reduction as a row without a candidate: it is kept, with what it carries, and
    # no join back to the entity rows is needed
    placeholders = entity_rows.select(
        F.col(ROW_ID), F.lit(None).cast(candidates.schema[_BEST].dataType).alias(_BEST), *carried
    )
    if carry:
        candidates = candidates.withColumn(carry, F.lit(None).cast(entity_rows.schema[carry].dataType))
    # partitioned by row first, the reduction sorts once and skips a partial reduction per scan task (which would
    # sort without reducing much: the candidates of one entity row come from all over the feature rows)
    best = placeholders.unionByName(candidates).repartition(F.col(ROW_ID)).groupBy(F.col(ROW_ID))
    best = best.agg(F.max(_BEST).alias(_BEST), *[F.first(c, ignorenulls=True).alias(carry) for c in carried])
    return best.select(
        F.col(ROW_ID),
        *carried,
        *[F.col(_BEST)[f"v{i}"].alias(f) for i, f in enumerate(table.features)],
    )


def _by_sequence(entity_rows: DataFrame, table: FeatureRows, carry: str | None) -> DataFrame:
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
    usable = F.col(f"{_LAST}.event_ns").isNotNull()
    if table.max_age_seconds > 0:
        max_age_ns = F.lit(table.max_age_seconds * 1_000_000_000)
        usable = usable & (F.col(_TIME) - F.col(f"{_LAST}.event_ns") <= max_age_ns)
    return sequenced.where(F.col(_KIND) == 1).select(
        F.col(ROW_ID), *carried, *[F.when(usable, F.col(_LAST)[f]).alias(f) for f in table.features]
    )


def _feature_struct_type(table: FeatureRows) -> T.StructType:
    schema = table.frame.schema
    return T.StructType(
        [
            T.StructField("event_ns", T.LongType()),
            *[T.StructField(f, schema[f].dataType) for f in table.features],
        ]
    )
