"""Offline→online ingestion on real Spark and a real Redis: the exact PROTOCOL bytes, idempotence, the write rule
(on Redis 6 and 7: the versioned_* fixtures), the dead letter, the window and partition pruning, a source without
its declared created timestamp column. Expected bytes come from redis_layout's scalar encoding."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from provender.jobs import ingestion
from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.args import Column, IngestionJobArgs, JobSource, JobTable, to_file_url
from provender.kernel.online import layout as rl
from provender.kernel.online.columns import ARROW_TYPE
from provender.kernel.value_types import VALID_TYPES, ValueType

from .conftest import dump_redis

PROJECT = "proj"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
BASE = NOW - timedelta(hours=10)  # recent: keys with a 1-day max_age are not expired
MAX_AGE = 86_400
FEATURES = {vt: f"f_{vt.name.lower()}" for vt in VALID_TYPES}


def _ns(when: datetime) -> int:
    return rl.datetime_to_ns(when)


def _value(vt: ValueType, i: int) -> object:
    if vt.is_list:
        return [_value(vt.element_type, i + k) for k in range(i % 4)]
    return {
        ValueType.BYTES: bytes([i % 256, 0, 7]),
        ValueType.STRING: f"s{i}-é" * (i % 3),
        ValueType.INT32: (-1) ** i * i * 1000,
        ValueType.INT64: (-1) ** i * i * 10**12,
        ValueType.DOUBLE: i / 3,
        ValueType.FLOAT: i / 4,  # exact in float32
        ValueType.BOOL: i % 2 == 0,
    }[vt]


def _all_types_table(url: str, name: str = "all_types", max_age: int = MAX_AGE) -> JobTable:
    return JobTable(
        name=name,
        entities=(Column("driver_id", ValueType.INT64),),
        features=tuple(Column(FEATURES[vt], vt) for vt in VALID_TYPES),
        batch_source=JobSource(
            file_url=url,
            event_timestamp_column="event_timestamp",
            created_timestamp_column="created",
            date_partition_column="date",
        ),
        max_age_seconds=max_age,
    )


def _rows_all_types(drivers: range, when: datetime) -> list[dict]:
    """3 rows per driver: two at the same event time (created time decides), one older; some null features."""
    rows = []
    for d in drivers:
        for k, (ev, cr) in enumerate(
            [
                (when, when),
                (when, when + timedelta(seconds=5)),
                (when - timedelta(hours=1), when + timedelta(hours=1)),
            ]
        ):
            ev = ev + timedelta(microseconds=d * 1001)
            row: dict = {"driver_id": d, "event_timestamp": ev, "created": cr}
            for j, vt in enumerate(VALID_TYPES):
                row[FEATURES[vt]] = None if (d + j + k) % 5 == 0 else _value(vt, d * 7 + k + j)
            rows.append(row)
    return rows


def _write_partitioned(root: Path, rows: list[dict], schema: pa.Schema) -> None:
    """Hive-style date partitions (date=YYYY-MM-DD) by event time, as Feast sources are laid out."""
    by_date: dict[str, list[dict]] = {}
    for r in rows:
        by_date.setdefault(r["event_timestamp"].date().isoformat(), []).append(r)
    for date, part in by_date.items():
        folder = root / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.iterdir()))
        pq.write_table(pa.Table.from_pylist(part, schema=schema), folder / f"part-{n}.parquet")


def _all_types_schema() -> pa.Schema:
    return pa.schema(
        [
            ("driver_id", pa.int64()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("created", pa.timestamp("us", tz="UTC")),
            *[(FEATURES[vt], ARROW_TYPE[vt]) for vt in VALID_TYPES],
        ]
    )


def _expected(project: str, table: JobTable, rows: list[dict], stored: dict | None = None) -> dict:
    """The raw Redis state docs/protocol.md prescribes, built row by row with redis_layout (an independent path)."""
    latest: dict[tuple, dict] = {}
    for r in rows:
        key = tuple(r[e.name] for e in table.entities)
        order = (r["event_timestamp"], r.get("created") or datetime.min.replace(tzinfo=UTC))
        if key not in latest or order >= latest[key][0]:
            latest[key] = (order, r)
    out = dict(stored or {})
    for _, r in latest.values():
        key = rl.entity_key(
            project, {e.name: rl.encode_value(r[e.name], e.value_type) for e in table.entities}
        )
        ev = _ns(r["event_timestamp"])
        fields = rl.table_row_fields(
            table.name, {f.name: (r[f.name], f.value_type) for f in table.features}, ev, table.max_age_seconds
        )
        expire = (
            -1 if table.max_age_seconds == 0 else math.ceil(rl.expiry_ns(ev, table.max_age_seconds) / 1e9)
        )
        out[key] = (fields, expire)
    return out


class _Pushed:
    url = ""
    body = ""
    paths: list[str]


@contextlib.contextmanager
def _pushgateway() -> Iterator[_Pushed]:
    """A stand-in Pushgateway on loopback that records what is pushed to it."""
    pushed = _Pushed()
    pushed.paths = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            pushed.paths.append(self.path)
            pushed.body += self.rfile.read(int(self.headers["Content-Length"])).decode()
            self.send_response(200)
            self.end_headers()

        do_POST = do_PUT

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    pushed.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield pushed
    finally:
        server.shutdown()
        server.server_close()


def _args(table: JobTable, redis_url: str, tmp: Path, start: datetime, end: datetime) -> IngestionJobArgs:
    return IngestionJobArgs(
        project=PROJECT,
        table=table,
        redis_url=redis_url,
        start=start,
        end=end,
        dead_letter_location=to_file_url(tmp / "dead-letter"),
    )


@pytest.fixture
def all_types_source(tmp_path: Path) -> tuple[JobTable, list[dict]]:
    rows = _rows_all_types(range(1, 41), BASE)
    _write_partitioned(tmp_path / "src", rows, _all_types_schema())
    return _all_types_table(to_file_url(tmp_path / "src")), rows


def test_writes_exactly_the_protocol_bytes_and_rerun_is_identical(
    spark, versioned_redis, versioned_redis_server, tmp_path, all_types_source
) -> None:
    table, rows = all_types_source
    args = _args(
        table, versioned_redis_server.url, tmp_path, BASE - timedelta(days=1), BASE + timedelta(days=1)
    )
    summary = ingestion.run(spark, args)
    first = dump_redis(versioned_redis)
    assert first == _expected(PROJECT, table, rows)
    assert summary.rows_read == summary.rows_in_window == len(rows) == 120
    assert (summary.keys, summary.rows_written, summary.rows_dead_lettered) == (40, 40, 0)
    assert summary.dead_letter_location is None
    assert summary.event_time_lag_seconds is not None and summary.event_time_lag_seconds > 0

    again = ingestion.run(spark, args)
    assert dump_redis(versioned_redis) == first
    assert again.rows_written == 40 and again.rows_skipped_stale == 0


def test_a_rerun_after_a_partial_run_equals_a_clean_run(
    spark, redis, redis_server, tmp_path, all_types_source
) -> None:
    """A job killed half-way left some keys written (each key's write is atomic): the rerun completes the state."""
    table, rows = all_types_source
    window = (BASE - timedelta(days=1), BASE + timedelta(days=1))
    _write_partitioned(tmp_path / "half", [r for r in rows if r["driver_id"] % 2 == 0], _all_types_schema())
    half = _all_types_table(to_file_url(tmp_path / "half"))
    assert ingestion.run(spark, _args(half, redis_server.url, tmp_path, *window)).rows_written == 20
    ingestion.run(spark, _args(table, redis_server.url, tmp_path, *window))
    assert dump_redis(redis) == _expected(PROJECT, table, rows)


def test_an_older_row_never_overwrites_and_a_newer_null_removes_the_field(
    spark, versioned_redis, versioned_redis_server, tmp_path, all_types_source
) -> None:
    table, rows = all_types_source
    window = (BASE - timedelta(days=1), BASE + timedelta(days=1))
    ingestion.run(spark, _args(table, versioned_redis_server.url, tmp_path, *window))
    before = dump_redis(versioned_redis)

    newer_time = BASE + timedelta(minutes=30)
    older = [dict(r, event_timestamp=r["event_timestamp"] - timedelta(minutes=1), created=BASE + timedelta(days=1))
             for r in rows if r["driver_id"] <= 5]  # fmt: skip
    newer = {"driver_id": 6, "event_timestamp": newer_time, "created": None}
    newer |= {FEATURES[vt]: (None if vt is ValueType.STRING else _value(vt, 99)) for vt in VALID_TYPES}
    _write_partitioned(tmp_path / "src2", [*older, newer], _all_types_schema())
    second = _all_types_table(to_file_url(tmp_path / "src2"))
    summary = ingestion.run(spark, _args(second, versioned_redis_server.url, tmp_path, *window))
    assert (summary.rows_written, summary.rows_skipped_stale) == (1, 5)

    after = dump_redis(versioned_redis)
    expected = dict(before)
    expected.update(_expected(PROJECT, table, [newer]))
    assert after == expected
    key6 = rl.entity_key(PROJECT, {"driver_id": rl.encode_value(6, ValueType.INT64)})
    assert rl.feature_field(table.name, FEATURES[ValueType.STRING]) not in after[key6][0]


def test_window_bounds_and_date_partition_pruning(spark, redis, redis_server, tmp_path) -> None:
    # A window within one date, from 1 us before its start to its end (else a row is filed under another date,
    # which pruning skips), ending before now and starting within the 1-day max_age. 19 hours of every day
    # qualify as its middle, so 17 consecutive hours always hold one.
    mid = next(
        m
        for m in (NOW - timedelta(hours=h) for h in range(2, 19))
        if (m - timedelta(hours=2, microseconds=1)).date() == (m + timedelta(hours=2)).date()
    )
    start, end = mid - timedelta(hours=2), mid + timedelta(hours=2)
    rows = [
        {"driver_id": 1, "event_timestamp": start},  # start is inside
        {"driver_id": 2, "event_timestamp": end},  # end is outside
        {"driver_id": 3, "event_timestamp": end - timedelta(microseconds=1)},
        {"driver_id": 4, "event_timestamp": start - timedelta(microseconds=1)},
    ]
    for r in rows:
        r.update({"created": None, **{FEATURES[vt]: _value(vt, r["driver_id"]) for vt in VALID_TYPES}})
    _write_partitioned(tmp_path / "src", rows, _all_types_schema())
    # A row filed under a date partition outside the window, whose event time is inside it: pruning skips the
    # folder, so the row is never read (the event-time filter alone would have kept it).
    misfiled = dict(rows[0], driver_id=5)
    outside = (start - timedelta(days=3)).date().isoformat()
    (tmp_path / "src" / f"date={outside}").mkdir()
    pq.write_table(
        pa.Table.from_pylist([misfiled] * 3, schema=_all_types_schema()),
        tmp_path / "src" / f"date={outside}" / "x.parquet",
    )

    table = _all_types_table(to_file_url(tmp_path / "src"))
    summary = ingestion.run(spark, _args(table, redis_server.url, tmp_path, start, end))
    assert summary.rows_read == 4
    assert summary.rows_in_window == summary.rows_written == 2
    assert dump_redis(redis) == _expected(PROJECT, table, [rows[0], rows[2]])


def test_invalid_rows_go_to_the_dead_letter_with_reasons(spark, redis, redis_server, tmp_path) -> None:
    t = BASE.strftime("%Y-%m-%d %H:%M:%S")
    source = pd.DataFrame(
        {
            "driver": pd.array([1, 2, None, 4, 5, 6, 7], dtype="Int64"),
            "trips": ["5", "abc", "7", "8", "9", str(2**40), "11"],
            "rate": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5],
            "ts": [t, t, t, "not a time", None, t, "2001-01-01 00:00:00"],
        }
    )
    path = tmp_path / "src.parquet"
    source.to_parquet(path)
    table = JobTable(
        name="trips",
        entities=(Column("driver_id", ValueType.INT64),),
        features=(Column("trips", ValueType.INT32), Column("rate", ValueType.DOUBLE)),
        batch_source=JobSource(to_file_url(path), "ts", field_mapping={"driver": "driver_id"}),
        max_age_seconds=0,
    )
    args = _args(table, redis_server.url, tmp_path, BASE - timedelta(days=1), BASE + timedelta(days=1))
    with _pushgateway() as pushed:
        summary = ingestion.run(spark, dataclasses.replace(args, pushgateway_url=pushed.url))
    # the run's figures, through metrics_push, under the table's group
    assert len(pushed.paths) == 1
    parts = pushed.paths[0].removeprefix("/metrics/").split("/")
    assert dict(zip(parts[::2], parts[1::2], strict=True)) == {
        "job": "provender_ingestion",
        "project": "proj",
        "feature_table": "trips",
    }
    assert "provender_ingestion_rows_dead_lettered 5.0" in pushed.body
    assert (
        'provender_ingestion_last_run_info{job_id="provender-jobs-tests",outcome="success"} 1.0'
        in pushed.body
    )
    assert (summary.rows_read, summary.rows_in_window, summary.rows_dead_lettered, summary.rows_written) == (
        7,
        1,
        5,
        1,
    )
    dead = pd.read_parquet(tmp_path / "dead-letter").sort_values("driver_id", na_position="first")
    assert list(dead.columns) == ["driver_id", "trips", "rate", "ts", "reason"]
    assert dead["reason"].tolist() == [
        "entity driver_id: null",
        "feature trips: not INT32: abc",
        "event timestamp ts: unparseable: not a time",
        "event timestamp ts: null",
        f"feature trips: not INT32: {2**40}",
    ]
    expected_rows = [{"driver_id": 1, "trips": 5, "rate": 1.5, "event_timestamp": BASE}]
    assert dump_redis(redis) == _expected(PROJECT, table, expected_rows)


def test_multi_entity_key_no_max_age_and_nanosecond_source(spark, redis, redis_server, tmp_path) -> None:
    ev = pd.Timestamp(BASE) + pd.Timedelta(nanoseconds=123_456_789)
    source = pd.DataFrame(
        {
            "customer": ["c1", "c2"],
            "driver": pd.array([7, -3], dtype="int32"),
            "src_rate": [0.25, 0.5],
            "event_timestamp": [ev, ev],
        }
    )
    source.to_parquet(tmp_path / "ns.parquet")  # pandas keeps nanoseconds: parquet TIMESTAMP(NANOS)
    table = JobTable(
        name="pairs",
        entities=(Column("driver", ValueType.INT32), Column("customer", ValueType.STRING)),
        features=(Column("rate", ValueType.FLOAT),),
        batch_source=JobSource(
            to_file_url(tmp_path / "ns.parquet"), "event_timestamp", field_mapping={"src_rate": "rate"}
        ),
        max_age_seconds=0,
    )
    ingestion.run(spark, _args(table, redis_server.url, tmp_path, BASE, BASE + timedelta(hours=1)))
    got = dump_redis(redis)
    expected = {}
    for customer, driver, rate in (("c1", 7, 0.25), ("c2", -3, 0.5)):
        key = rl.entity_key(
            PROJECT,
            {
                "driver": rl.encode_value(driver, ValueType.INT32),
                "customer": rl.encode_value(customer, ValueType.STRING),
            },
        )
        expected[key] = (rl.table_row_fields("pairs", {"rate": (rate, ValueType.FLOAT)}, ev.value, 0), -1)
    assert got == expected
    assert all(rl.ex_field("pairs") not in fields for fields, _ in got.values())


def test_bad_configuration_is_an_error_naming_the_column(spark, redis_server, tmp_path) -> None:
    pd.DataFrame({"driver_id": [1], "ts": [pd.Timestamp(BASE)], "rate": ["x"]}).to_parquet(
        tmp_path / "s.parquet"
    )
    base = JobSource(to_file_url(tmp_path / "s.parquet"), "ts")
    missing = JobTable(
        "t", (Column("driver_id", ValueType.INT64),), (Column("nope", ValueType.DOUBLE),), base
    )
    with _pushgateway() as pushed, pytest.raises(InvalidArgument, match=r"nope"):
        args = _args(missing, redis_server.url, tmp_path, BASE, BASE + timedelta(hours=1))
        ingestion.run(spark, dataclasses.replace(args, pushgateway_url=pushed.url))
    assert 'outcome="failure"' in pushed.body  # a failed run is pushed too
    wrong = JobTable(
        "t", (Column("driver_id", ValueType.INT64),), (Column("rate", ValueType.STRING_LIST),), base
    )
    with pytest.raises(InvalidArgument, match=r"feature column 'rate'.*STRING_LIST"):
        ingestion.run(spark, _args(wrong, redis_server.url, tmp_path, BASE, BASE + timedelta(hours=1)))


def test_ingestion_into_a_redis_cluster_writes_the_same_bytes(
    spark, versioned_redis_cluster, versioned_cluster_client, tmp_path, all_types_source
) -> None:
    table, rows = all_types_source
    args = _args(
        table, versioned_redis_cluster.seeds, tmp_path, BASE - timedelta(days=1), BASE + timedelta(days=1)
    )
    summary = ingestion.run(spark, args)
    assert summary.rows_written == 40
    got = dump_redis(versioned_cluster_client)
    assert got == _expected(PROJECT, table, rows)
    # the keys really are spread over the cluster
    assert len({versioned_cluster_client.keyslot(k) for k in got}) > 1
    again = ingestion.run(spark, args)  # the write rule holds on a cluster too: same state, nothing stale
    assert again.rows_written == 40


def test_rows_equal_in_both_times_resolve_the_same_whatever_their_order(
    spark, redis, redis_server, tmp_path
) -> None:
    rows = [
        {
            "driver_id": 1,
            "event_timestamp": BASE,
            "created": BASE,
            **{FEATURES[vt]: _value(vt, k) for vt in VALID_TYPES},
        }
        for k in range(1, 6)
    ]
    states = []
    for name, ordered in (("fwd", rows), ("rev", list(reversed(rows)))):
        folder = tmp_path / name / f"date={BASE.date().isoformat()}"
        folder.mkdir(parents=True)
        for i, r in enumerate(ordered):  # one file per row: the order Spark meets them in differs too
            pq.write_table(
                pa.Table.from_pylist([r], schema=_all_types_schema()), folder / f"part-{i}.parquet"
            )
        redis.flushall()
        table = _all_types_table(to_file_url(tmp_path / name))
        ingestion.run(
            spark,
            _args(table, redis_server.url, tmp_path, BASE - timedelta(days=1), BASE + timedelta(days=1)),
        )
        states.append(dump_redis(redis))
    assert states[0] == states[1]
    assert len(states[0]) == 1
    assert any(states[0] == _expected(PROJECT, _all_types_table("file:///x"), [r]) for r in rows)


def test_a_source_without_its_declared_created_column_is_deduplicated_by_event_time(
    spark, redis, redis_server, tmp_path, capsys
) -> None:
    """Feast 0.9's sources declare created_timestamp_column="created_timestamp" and never write it: the latest row
    per entity is then the one with the latest event time, and the job log says so."""
    source = pd.DataFrame(
        {
            "driver_id": [1, 1, 2, 3, 3],
            "event_timestamp": [
                BASE - timedelta(hours=1),
                BASE,  # the latest of driver 1
                BASE - timedelta(minutes=5),
                BASE + timedelta(seconds=1),  # the latest of driver 3, though written first below
                BASE,
            ],
            "conv_rate": [0.1, 0.2, 0.3, 0.4, 0.5],
            "trips": pd.array([10, 20, 30, 40, 50], dtype="int32"),
        }
    )
    source.to_parquet(tmp_path / "feast.parquet")
    table = JobTable(
        name="driver_hourly",
        entities=(Column("driver_id", ValueType.INT64),),
        features=(Column("conv_rate", ValueType.DOUBLE), Column("trips", ValueType.INT32)),
        batch_source=JobSource(
            to_file_url(tmp_path / "feast.parquet"), "event_timestamp", "created_timestamp"
        ),
        max_age_seconds=MAX_AGE,
    )
    args = _args(table, redis_server.url, tmp_path, BASE - timedelta(days=1), BASE + timedelta(days=1))
    summary = ingestion.run(spark, args)
    assert (summary.rows_in_window, summary.rows_dead_lettered, summary.rows_written) == (5, 0, 3)
    assert (
        "table driver_hourly: batch source has no created timestamp column 'created_timestamp'; "
        "the latest row per entity is chosen by event time alone"
    ) in capsys.readouterr().out
    latest = [
        {"driver_id": 1, "event_timestamp": BASE, "conv_rate": 0.2, "trips": 20},
        {"driver_id": 2, "event_timestamp": BASE - timedelta(minutes=5), "conv_rate": 0.3, "trips": 30},
        {"driver_id": 3, "event_timestamp": BASE + timedelta(seconds=1), "conv_rate": 0.4, "trips": 40},
    ]
    assert dump_redis(redis) == _expected(PROJECT, table, latest)
