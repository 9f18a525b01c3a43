"""Historical retrieval on real Spark against an independent oracle (DuckDB ASOF LEFT JOIN), on generated data
with ties, max_age edges, entities absent from the sources and tables with different entity sets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from provender.jobs import point_in_time, retrieval
from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.args import (
    Column,
    FeatureSelection,
    JobSource,
    JobTable,
    RetrievalJobArgs,
    to_file_url,
)
from provender.kernel.value_types import ValueType

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DRIVER_MAX_AGE = 2 * 86_400
PAIR_MAX_AGE = 3600


def _ts(seconds: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(T0) + pd.to_timedelta(seconds, unit="s")).astype("datetime64[us, UTC]")


def _sources(tmp: Path, rng: np.random.Generator) -> dict[str, JobTable]:
    # driver_stats: 30 drivers, ~15 rows each over 10 days on a coarse grid (many equal event times: ties,
    # decided by created time, which is null on some rows)
    n = 450
    ev = rng.integers(0, 40, n) * 6 * 3600
    created = rng.integers(0, 10**6, n).astype("float")
    created[rng.random(n) < 0.1] = np.nan
    drivers = pd.DataFrame(
        {
            "driver_id": rng.integers(0, 30, n),
            "ts": _ts(ev),
            "created_at": _ts(np.nan_to_num(created)).where(~np.isnan(created)),
            "src_conv": rng.random(n).astype("float32"),
            "trips": rng.integers(-1000, 1000, n),
            "label": [None if x < 0.2 else f"l{int(x * 100)}" for x in rng.random(n)],
        }
    )
    # a null created time only on the first row of an (entity, time) group: no full ties
    drivers.loc[drivers.duplicated(["driver_id", "ts"]), "created_at"] = _ts(np.arange(n) + 2 * 10**6)
    drivers.to_parquet(tmp / "drivers.parquet")
    # customer_profile: string entity, no max_age, a list feature
    m = 120
    customers = pd.DataFrame(
        {
            "customer": [f"c{i}" for i in rng.integers(0, 20, m)],
            "event_timestamp": _ts(rng.integers(0, 10 * 86_400, m)),
            "score": rng.normal(size=m),
            "tags": [[f"t{j}" for j in range(i % 3)] for i in range(m)],
        }
    )
    customers = customers.drop_duplicates(["customer", "event_timestamp"])
    (tmp / "customers").mkdir()
    customers.iloc[:60].to_parquet(tmp / "customers" / "a.parquet")
    customers.iloc[60:].to_parquet(tmp / "customers" / "b.parquet")
    # pair: two entities, 1 h max_age
    k = 300
    pairs = pd.DataFrame(
        {
            "driver_id": rng.integers(0, 30, k).astype("int32"),
            "customer": [f"c{i}" for i in rng.integers(0, 20, k)],
            "event_timestamp": _ts(rng.integers(0, 10 * 24 * 6, k) * 600),
            "affinity": rng.random(k),
        }
    )
    pairs = pairs.drop_duplicates(["driver_id", "customer", "event_timestamp"])
    pairs.to_parquet(tmp / "pairs.parquet")
    return {
        "driver_stats": JobTable(
            "driver_stats",
            (Column("driver_id", ValueType.INT64),),
            (
                Column("conv", ValueType.FLOAT),
                Column("trips", ValueType.INT64),
                Column("label", ValueType.STRING),
            ),
            JobSource(
                to_file_url(tmp / "drivers.parquet"), "ts", "created_at", field_mapping={"src_conv": "conv"}
            ),
            DRIVER_MAX_AGE,
        ),
        "customer_profile": JobTable(
            "customer_profile",
            (Column("customer", ValueType.STRING),),
            (Column("score", ValueType.DOUBLE), Column("tags", ValueType.STRING_LIST)),
            JobSource(to_file_url(tmp / "customers"), "event_timestamp"),
            0,
        ),
        "pair": JobTable(
            "pair",
            (Column("driver_id", ValueType.INT64), Column("customer", ValueType.STRING)),
            (Column("affinity", ValueType.DOUBLE),),
            JobSource(to_file_url(tmp / "pairs.parquet"), "event_timestamp"),
            PAIR_MAX_AGE,
        ),
    }


def _entity_rows(tmp: Path, rng: np.random.Generator) -> pd.DataFrame:
    drivers = pd.read_parquet(tmp / "drivers.parquet")
    n = 400
    rows = pd.DataFrame(
        {
            "driver_id": pd.array(rng.integers(0, 34, n), dtype="Int64"),  # 30..33: absent from every source
            "customer": [f"c{i}" for i in rng.integers(0, 23, n)],  # c20..c22: absent
            "event_timestamp": _ts(rng.integers(-86_400, 12 * 86_400, n)),
        }
    )
    # max_age edges and exact-time matches, taken from real feature rows
    picks = drivers.sample(20, random_state=1)
    edges = []
    for offset in (
        timedelta(0),
        timedelta(seconds=DRIVER_MAX_AGE),
        timedelta(seconds=DRIVER_MAX_AGE, microseconds=1),
        timedelta(microseconds=-1),
    ):
        edges.append(
            pd.DataFrame(
                {
                    "driver_id": pd.array(picks["driver_id"], dtype="Int64"),
                    "customer": "c1",
                    "event_timestamp": picks["ts"] + offset,
                }
            )
        )
    pairs = pd.read_parquet(tmp / "pairs.parquet").sample(15, random_state=2)
    for offset in (
        timedelta(0),
        timedelta(seconds=PAIR_MAX_AGE),
        timedelta(seconds=PAIR_MAX_AGE, microseconds=1),
    ):
        edges.append(
            pd.DataFrame(
                {
                    "driver_id": pd.array(pairs["driver_id"], dtype="Int64"),
                    "customer": pairs["customer"],
                    "event_timestamp": pairs["event_timestamp"] + offset,
                }
            )
        )
    nulls = pd.DataFrame(
        {
            "driver_id": pd.array([None, None], dtype="Int64"),
            "customer": ["c1", "c2"],
            "event_timestamp": _ts(np.array([86_400, 86_400])),
        }
    )
    out = pd.concat([rows, *edges, nulls, rows.iloc[:10]], ignore_index=True)  # the last 10 are duplicates
    out.insert(0, "request_id", np.arange(len(out)))
    out["event_timestamp"] = out["event_timestamp"].astype("datetime64[us, UTC]")
    return out


def _oracle(
    entities: pd.DataFrame, tables: dict[str, JobTable], selections: list[FeatureSelection]
) -> pd.DataFrame:
    """DuckDB ASOF LEFT JOIN per table: latest row with event time <= the entity row's time (ties: latest created
    time, nulls first), nulled outside max_age."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("entities", entities)
    result = entities.copy()
    for sel in selections:
        t = sel.table
        src = t.batch_source
        path = src.file_url.removeprefix("file://")
        if Path(path).is_dir():
            path += "/*.parquet"
        rename = {v: k for k, v in src.field_mapping.items()}
        keys = [e.name for e in t.entities]
        cols = ", ".join(f'"{rename.get(f, f)}" AS "{f}"' for f in sel.features)
        created = f'"{src.created_timestamp_column}"' if src.created_timestamp_column else "NULL"
        key_eq = " AND ".join(f'e."{k}" = f."{k}"' for k in keys)
        within = (
            "TRUE"
            if t.max_age_seconds == 0
            else f"e.event_timestamp - f.ev <= INTERVAL {t.max_age_seconds} SECOND"
        )
        selected = ", ".join(
            f'CASE WHEN f.ev IS NOT NULL AND {within} THEN f."{f}" END AS "{t.name}__{f}"'
            for f in sel.features
        )
        key_cast = ", ".join(
            f'CAST("{k}" AS {"BIGINT" if k == "driver_id" else "VARCHAR"}) AS "{k}"' for k in keys
        )
        query = f"""
            WITH f AS (
                SELECT {key_cast}, "{src.event_timestamp_column}" AS ev, {cols}
                FROM read_parquet('{path}')
                QUALIFY row_number() OVER (PARTITION BY {", ".join(f'"{k}"' for k in keys)}, ev
                                           ORDER BY {created} DESC NULLS LAST) = 1
            )
            SELECT e.request_id, {selected}
            FROM entities e ASOF LEFT JOIN f ON {key_eq} AND e.event_timestamp >= f.ev
        """
        result = result.merge(con.execute(query).df(), on="request_id", how="left")
    return result


def _args(
    tmp: Path, entity_url: str, selections: list[FeatureSelection], file_format: str = "parquet"
) -> RetrievalJobArgs:
    return RetrievalJobArgs(
        project="proj",
        entity_source=JobSource(entity_url, "event_timestamp", file_format=file_format),
        tables=tuple(selections),
        output_location=to_file_url(tmp / f"out-{file_format}"),
    )


def _normalised(df: pd.DataFrame) -> pd.DataFrame:
    df = df.sort_values("request_id").reset_index(drop=True)
    for c in df.columns:
        df[c] = [
            None
            if (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT
            else (list(v) if isinstance(v, np.ndarray) else v)
            for v in df[c]
        ]
    return df


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict[str, JobTable], pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("retrieval")
    rng = np.random.default_rng(42)
    tables = _sources(tmp, rng)
    entities = _entity_rows(tmp, rng)
    entities.to_parquet(tmp / "entities.parquet")
    return tmp, tables, entities


def _selections(tables: dict[str, JobTable]) -> list[FeatureSelection]:
    return [
        FeatureSelection(tables["driver_stats"], ("conv", "trips", "label")),
        FeatureSelection(tables["customer_profile"], ("score", "tags")),
        FeatureSelection(tables["pair"], ("affinity",)),
    ]


@pytest.fixture(
    params=[point_in_time.Strategy.BROADCAST, point_in_time.Strategy.SEQUENCE], ids=lambda s: s.value
)
def strategy(request, spark) -> Iterator[point_in_time.Strategy]:
    """Both ways of computing the join, forced through the job's Spark setting (auto picks by the data)."""
    spark.conf.set(point_in_time.STRATEGY_SETTING, request.param.value)
    yield request.param
    spark.conf.unset(point_in_time.STRATEGY_SETTING)


def test_retrieval_equals_the_duckdb_asof_oracle(spark, data, strategy) -> None:
    tmp, tables, entities = data
    selections = _selections(tables)
    summary = retrieval.run(spark, _args(tmp, to_file_url(tmp / "entities.parquet"), selections))
    got = pd.read_parquet(tmp / "out-parquet")
    assert summary.entity_rows == len(entities) == len(got)
    assert list(got.columns) == [
        "request_id", "driver_id", "customer", "event_timestamp",
        "driver_stats__conv", "driver_stats__trips", "driver_stats__label",
        "customer_profile__score", "customer_profile__tags", "pair__affinity",
    ]  # fmt: skip
    expected = _oracle(entities, tables, selections)
    expected["driver_stats__conv"] = expected["driver_stats__conv"].astype("float32")
    pd.testing.assert_frame_equal(_normalised(got), _normalised(expected), check_dtype=False)
    # the data exercises what it claims to: matches, misses, max_age cut-offs and ties on event time
    assert got["driver_stats__trips"].notna().sum() > 50 and got["driver_stats__trips"].isna().sum() > 50
    assert got["pair__affinity"].notna().sum() >= 30
    drivers = pd.read_parquet(tmp / "drivers.parquet")
    assert drivers.duplicated(["driver_id", "ts"]).sum() > 10


def test_point_in_time_edges_by_hand(spark, tmp_path, strategy) -> None:
    t = pd.Timestamp(T0)
    pd.DataFrame(
        {
            "driver_id": [1, 1, 1, 2],
            "ts": [t, t, t + pd.Timedelta(hours=1), t],
            "created": [t + pd.Timedelta(seconds=2), t + pd.Timedelta(seconds=1), t, t],
            "v": [10, 11, 12, 20],
        }
    ).to_parquet(tmp_path / "f.parquet")
    entities = pd.DataFrame(
        {
            "driver_id": [1, 1, 1, 1, 2, 2, 3],
            "event_timestamp": [
                t - pd.Timedelta(microseconds=1),  # before any row
                t,  # the tie at t: created time decides (10)
                t + pd.Timedelta(hours=1),  # the later row (12)
                t + pd.Timedelta(hours=1, seconds=60),  # 12 is exactly max_age old: kept
                t + pd.Timedelta(seconds=60),  # exactly max_age: kept
                t + pd.Timedelta(seconds=60, microseconds=1),  # beyond max_age
                t,  # absent entity
            ],
        }
    )
    entities.to_parquet(tmp_path / "e.parquet")
    table = JobTable(
        "tbl",
        (Column("driver_id", ValueType.INT64),),
        (Column("v", ValueType.INT32),),
        JobSource(to_file_url(tmp_path / "f.parquet"), "ts", "created"),
        60,
    )
    retrieval.run(
        spark, _args(tmp_path, to_file_url(tmp_path / "e.parquet"), [FeatureSelection(table, ("v",))])
    )
    got = pd.read_parquet(tmp_path / "out-parquet").sort_values(["driver_id", "event_timestamp"])
    assert [None if pd.isna(v) else int(v) for v in got["tbl__v"]] == [None, 10, 12, 12, 20, None, None]


def test_csv_entity_source_gives_the_same_rows(spark, data, strategy) -> None:
    tmp, tables, entities = data
    csv = entities.copy()
    csv["event_timestamp"] = csv["event_timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    csv.to_csv(tmp / "entities.csv", index=False)
    selections = [
        FeatureSelection(tables["driver_stats"], ("trips",)),
        FeatureSelection(tables["pair"], ("affinity",)),
    ]
    retrieval.run(spark, _args(tmp, to_file_url(tmp / "entities.csv"), selections, "csv"))
    got = pd.read_parquet(tmp / "out-csv")
    expected = _oracle(entities, tables, selections)
    cols = ["request_id", "driver_stats__trips", "pair__affinity"]
    pd.testing.assert_frame_equal(_normalised(got[cols]), _normalised(expected[cols]), check_dtype=False)


def test_entity_source_without_a_needed_column_is_rejected(spark, data) -> None:
    tmp, tables, entities = data
    entities.drop(columns=["customer"]).to_parquet(tmp / "no_customer.parquet")
    with pytest.raises(InvalidArgument, match="customer"):
        retrieval.run(
            spark,
            _args(
                tmp,
                to_file_url(tmp / "no_customer.parquet"),
                [FeatureSelection(tables["pair"], ("affinity",))],
            ),
        )


def test_auto_strategy_pairs_rows_only_when_few_entity_rows_share_a_key(spark) -> None:
    few = spark.createDataFrame([(k % 1000, k) for k in range(5000)], "driver_id long, n long")
    many = spark.createDataFrame([(k % 10, k) for k in range(5000)], "driver_id long, n long")
    profiled = point_in_time.profile(few, ["driver_id"])
    assert profiled == point_in_time.EntityProfile(rows=5000, max_rows_per_key=5)
    assert point_in_time.choose(spark, profiled) is point_in_time.Strategy.BROADCAST
    assert (
        point_in_time.choose(spark, point_in_time.profile(many, ["driver_id"]))
        is point_in_time.Strategy.SEQUENCE
    )
    huge = point_in_time.EntityProfile(rows=point_in_time.BROADCAST_MAX_ROWS + 1, max_rows_per_key=1)
    assert point_in_time.choose(spark, huge) is point_in_time.Strategy.SEQUENCE
    spark.conf.set(point_in_time.STRATEGY_SETTING, "fastest")
    try:
        with pytest.raises(InvalidArgument, match="auto, broadcast or sequence"):
            point_in_time.choose(spark, profiled)
    finally:
        spark.conf.unset(point_in_time.STRATEGY_SETTING)


def test_a_feature_source_without_its_declared_created_column_is_matched_by_event_time(
    spark, tmp_path, strategy, capsys
) -> None:
    """Feast 0.9's sources declare created_timestamp_column="created_timestamp" and never write it."""
    t = pd.Timestamp(T0)
    pd.DataFrame(
        {"driver_id": [1, 1, 2], "ts": [t, t + pd.Timedelta(hours=1), t], "v": [10, 11, 20]}
    ).to_parquet(tmp_path / "f.parquet")
    pd.DataFrame(
        {
            "driver_id": [1, 1, 1, 2, 2],
            "event_timestamp": [
                t + pd.Timedelta(minutes=30),
                t + pd.Timedelta(hours=1),
                t + pd.Timedelta(hours=2),
                t - pd.Timedelta(microseconds=1),
                t,
            ],
        }
    ).to_parquet(tmp_path / "e.parquet")
    table = JobTable(
        "driver_hourly",
        (Column("driver_id", ValueType.INT64),),
        (Column("v", ValueType.INT64),),
        JobSource(to_file_url(tmp_path / "f.parquet"), "ts", "created_timestamp"),
        0,
    )
    retrieval.run(
        spark, _args(tmp_path, to_file_url(tmp_path / "e.parquet"), [FeatureSelection(table, ("v",))])
    )
    assert (
        "table driver_hourly: batch source has no created timestamp column 'created_timestamp'; "
        "the latest row per entity is chosen by event time alone"
    ) in capsys.readouterr().out
    got = pd.read_parquet(tmp_path / "out-parquet").sort_values(["driver_id", "event_timestamp"])
    assert [None if pd.isna(v) else int(v) for v in got["driver_hourly__v"]] == [10, 11, 11, None, 20]


# A time with nanoseconds, and the nanosecond before 1970: written by pandas as parquet TIMESTAMP(NANOS).
INSTANTS = pd.Series(
    [
        pd.Timestamp("2026-11-01 10:00:00.123456789", tz="UTC"),
        pd.Timestamp("2026-11-01 11:00:00.000000999", tz="UTC"),
        pd.Timestamp(-1, unit="ns", tz="UTC"),
    ]
)


def _drivers_table(tmp: Path) -> JobTable:
    """Driver 1 at the first instant (to the µs), driver 2 at the second: the entity rows at those instants
    (a few ns later) match them."""
    pd.DataFrame(
        {"driver_id": [1, 2], "ts": INSTANTS[:2].dt.floor("us").astype("datetime64[us, UTC]"), "v": [10, 20]}
    ).to_parquet(tmp / "drivers.parquet")
    return JobTable(
        "drivers",
        (Column("driver_id", ValueType.INT64),),
        (Column("v", ValueType.INT64),),
        JobSource(to_file_url(tmp / "drivers.parquet"), "ts"),
        0,
    )


def _as_us(values: pd.Series, aware: bool) -> list[pd.Timestamp]:
    """What a timestamp column should come back as: at µs (rounded down), in UTC when tz-aware, else naive."""
    utc = values.dt.floor("us").astype("datetime64[us, UTC]")
    return (utc if aware else utc.dt.tz_localize(None)).tolist()


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", None], ids=["utc", "new-york", "naive"])
def test_timestamps_of_a_pandas_entity_source_come_back_as_timestamps(spark, tmp_path, zone) -> None:
    """Every timestamp column, the event timestamp of any zone (or naive) among them, comes back a timestamp:
    tz-aware in UTC when it was tz-aware, naive when it was naive, at µs; the other columns in their types."""
    event = INSTANTS.dt.tz_convert(zone) if zone else INSTANTS.dt.tz_localize(None)
    pd.DataFrame(
        {
            "request_id": [0, 1, 2],
            "driver_id": [1, 2, 3],
            "event_timestamp": event,
            "seen_at": INSTANTS.dt.tz_convert("Asia/Kolkata"),
            "local_time": INSTANTS.dt.tz_localize(None),
            "local_us": INSTANTS.dt.tz_localize(None).astype("datetime64[us]"),
            "small": pd.array([1, 2, 3], dtype="int32"),
            "name": ["a", "b", "c"],
        }
    ).to_parquet(tmp_path / "e.parquet")
    selection = FeatureSelection(_drivers_table(tmp_path), ("v",))
    retrieval.run(spark, _args(tmp_path, to_file_url(tmp_path / "e.parquet"), [selection]))
    got = pd.read_parquet(tmp_path / "out-parquet").sort_values("request_id").reset_index(drop=True)
    assert {c: str(t) for c, t in got.dtypes.items()} == {
        "request_id": "int64",
        "driver_id": "int64",
        "event_timestamp": "datetime64[us, UTC]" if zone else "datetime64[us]",
        "seen_at": "datetime64[us, UTC]",
        "local_time": "datetime64[us]",
        "local_us": "datetime64[us]",
        "small": "int32",
        "name": "object",
        "drivers__v": "float64",
    }
    assert got["event_timestamp"].tolist() == _as_us(INSTANTS, aware=zone is not None)
    assert got["seen_at"].tolist() == _as_us(INSTANTS, aware=True)
    assert got["local_time"].tolist() == got["local_us"].tolist() == _as_us(INSTANTS, aware=False)
    assert got["small"].tolist() == [1, 2, 3] and got["name"].tolist() == ["a", "b", "c"]
    assert [None if pd.isna(v) else int(v) for v in got["drivers__v"]] == [10, 20, None]


def test_a_csv_entity_source_comes_back_in_the_types_pandas_reads(spark, tmp_path) -> None:
    """Integers int64 (as pandas reads a CSV), floats and strings as they are, and the values pandas writes for
    timestamps as timestamps: tz-aware (UTC) with an offset, naive without."""
    pd.DataFrame(
        {
            "request_id": [0, 1, 2],
            "driver_id": [1, 2, 3],
            "event_timestamp": INSTANTS,
            "seen_at": INSTANTS.dt.tz_convert("America/New_York"),
            "local_time": INSTANTS.dt.tz_localize(None),
            "trips": [5, -6, 7],
            "rate": [0.5, 1.5, 2.0],
            "name": ["a", "b", "c"],
        }
    ).to_csv(tmp_path / "e.csv", index=False)
    selection = FeatureSelection(_drivers_table(tmp_path), ("v",))
    retrieval.run(spark, _args(tmp_path, to_file_url(tmp_path / "e.csv"), [selection], "csv"))
    got = pd.read_parquet(tmp_path / "out-csv").sort_values("request_id").reset_index(drop=True)
    carried = ["request_id", "driver_id", "trips", "rate", "name"]
    as_pandas_reads = pd.read_csv(tmp_path / "e.csv")
    assert {c: str(got[c].dtype) for c in carried} == {c: str(as_pandas_reads[c].dtype) for c in carried}
    assert {c: str(got[c].dtype) for c in carried} == {
        "request_id": "int64",
        "driver_id": "int64",
        "trips": "int64",
        "rate": "float64",
        "name": "object",
    }
    pd.testing.assert_frame_equal(got[carried], as_pandas_reads[carried])
    assert got["event_timestamp"].tolist() == got["seen_at"].tolist() == _as_us(INSTANTS, aware=True)
    assert got["local_time"].tolist() == _as_us(INSTANTS, aware=False)
    assert [None if pd.isna(v) else int(v) for v in got["drivers__v"]] == [10, 20, None]
