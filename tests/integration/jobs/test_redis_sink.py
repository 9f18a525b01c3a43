"""The batched write of ingestion on real servers, each test on Redis 6 and on Redis 7 (the versioned_* fixtures):
several keys per script call (sharing a hash slot on a Redis Cluster), the write rule inside one call and across
calls and batches, the key's expiry against other tables' expiries, replication, and the recovery paths (a lost
script, a slot map gone stale). Expected bytes come from redis_layout's scalar encoding; a cluster must end up
holding exactly what a single Redis holds."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from provender.jobs import ingestion, online_write, redis_sink
from provender.jobs.redis_sink import EncodedRows, RedisSink
from provender.kernel.jobs.args import Column, IngestionJobArgs, JobSource, JobTable, to_file_url
from provender.kernel.online import layout as rl
from provender.kernel.value_types import ValueType
from provender.local.redis import EmbeddedRedis, EmbeddedRedisCluster

from .conftest import dump_redis

PROJECT = "proj"
NOW = datetime.now(UTC).replace(microsecond=0)
BASE_NS = rl.datetime_to_ns(NOW - timedelta(hours=5))
MAX_AGE = 86_400
TABLE = JobTable(
    "batched",
    (Column("user", ValueType.STRING),),
    (Column("score", ValueType.DOUBLE), Column("tags", ValueType.STRING_LIST), Column("n", ValueType.INT64)),
    JobSource("file:///unused", "event_timestamp"),
    MAX_AGE,
)
FIELDS = {f.name: rl.feature_field(TABLE.name, f.name) for f in TABLE.features}


def _users(n: int) -> list[str]:
    """Entity values: most share a hash tag (so their keys share a slot on a cluster), some do not."""
    return [f"{{t{i % 3}}}u{i}" if i % 10 else f"free-{i}" for i in range(n)]


def _row(user: str, i: int, event_ns: int) -> dict:
    return {
        "user": user,
        "score": None if i % 7 == 0 else i / 8,
        "tags": None if i % 4 == 0 else [f"x{i}"] * (i % 3),
        "n": i * 1000,
        online_write.EVENT_NS: event_ns,
    }


COLUMNS = [("user", pa.string()), ("score", pa.float64()), ("tags", pa.list_(pa.string())), ("n", pa.int64())]
SOURCE_SCHEMA = pa.schema(
    [*COLUMNS, ("event_timestamp", pa.timestamp("us", tz="UTC")), ("created", pa.timestamp("us", tz="UTC"))]
)


def _encoded(rows: list[dict], table: JobTable = TABLE) -> EncodedRows:
    batch = pa.Table.from_pylist(rows, schema=pa.schema([*COLUMNS, (online_write.EVENT_NS, pa.int64())]))
    return online_write.encode_rows(batch, online_write.encode_keys(batch, PROJECT, table), table)


def _expected(rows: list[dict], table: JobTable = TABLE) -> dict[bytes, tuple[dict[bytes, bytes], int]]:
    out = {}
    for r in rows:
        key = rl.entity_key(PROJECT, {"user": rl.encode_value(r["user"], ValueType.STRING)})
        fields = rl.table_row_fields(
            table.name,
            {f.name: (r[f.name], f.value_type) for f in table.features},
            r[online_write.EVENT_NS],
            table.max_age_seconds,
        )
        expiry = rl.expiry_ns(r[online_write.EVENT_NS], table.max_age_seconds)
        out[key] = (fields, -(-expiry // 1_000_000_000) if table.max_age_seconds else -1)
    return out


def _script_calls(cluster: EmbeddedRedisCluster) -> int:
    return sum(
        int(n.client().info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)) for n in cluster.nodes
    )


def _sink(url: str, table: JobTable = TABLE) -> RedisSink:
    return RedisSink(url, rl.ts_field(table.name), rl.ex_field(table.name))


def _write(url: str, rows: list[dict], table: JobTable = TABLE) -> redis_sink.WriteResult:
    sink = _sink(url, table)
    try:
        return sink.write(_encoded(rows, table))
    finally:
        sink.close()


@pytest.fixture
def small_calls(monkeypatch) -> None:
    """Few keys per script call: one batch makes many calls, and one slot's keys span several."""
    monkeypatch.setattr(redis_sink, "KEYS_PER_CALL", 4)


def test_a_cluster_holds_exactly_what_a_single_redis_holds(
    versioned_redis, versioned_redis_server, versioned_redis_cluster, versioned_cluster_client, small_calls
) -> None:
    rows = [_row(u, i, BASE_NS + i * 1001) for i, u in enumerate(_users(300))]
    for url in (versioned_redis_server.url, versioned_redis_cluster.seeds):
        sink = _sink(url)
        try:
            for start in range(
                0, len(rows), 70
            ):  # several batches, the next sent before the last is answered
                sink.send(_encoded(rows[start : start + 70]))
            assert sink.flush() == redis_sink.WriteResult(written=300, stale=0)
        finally:
            sink.close()
    single = dump_redis(versioned_redis)
    assert single == _expected(rows)
    assert dump_redis(versioned_cluster_client) == single
    keys = list(single)
    assert len({versioned_cluster_client.keyslot(k) for k in keys}) > 3  # spread over slots and nodes ...
    assert all(n.client().dbsize() > 0 for n in versioned_redis_cluster.nodes)
    # ... yet one call carries several keys of one slot: far fewer calls than keys
    assert _script_calls(versioned_redis_cluster) < len(keys) / 2


def test_older_rows_never_overwrite_within_one_call_and_across_batches(
    versioned_redis, versioned_redis_server, versioned_redis_cluster, versioned_cluster_client, small_calls
) -> None:
    users = _users(120)
    first = [_row(u, i, BASE_NS + i) for i, u in enumerate(users)]
    # second: every third key older (stale), every third the same time (rewritten), the others newer, with other
    # values and nulls where the first had values: the calls mix all three, as do the batches
    second = []
    for i, u in enumerate(users):
        shift = (-1, 0, 1)[i % 3] * 60_000_000_000
        second.append(_row(u, i + 1, BASE_NS + i + shift))
    for url, dump in (
        (versioned_redis_server.url, lambda: dump_redis(versioned_redis)),
        (versioned_redis_cluster.seeds, lambda: dump_redis(versioned_cluster_client)),
    ):
        sink = _sink(url)
        try:
            assert sink.write(_encoded(first)) == redis_sink.WriteResult(written=120, stale=0)
            for start in range(0, len(second), 25):
                sink.send(_encoded(second[start : start + 25]))
            assert sink.flush() == redis_sink.WriteResult(written=80, stale=40)
        finally:
            sink.close()
        expected = _expected([s if i % 3 else f for i, (f, s) in enumerate(zip(first, second, strict=True))])
        assert dump() == expected
        emptied = [  # a newer row's null removed the older row's field
            u
            for i, u in enumerate(users)
            if i % 3 and second[i]["score"] is None and first[i]["score"] is not None
        ]
        assert emptied
        for u in emptied:
            key = rl.entity_key(PROJECT, {"user": rl.encode_value(u, ValueType.STRING)})
            assert FIELDS["score"] not in dump()[key][0]


def test_ingestion_into_a_cluster_batches_by_slot_and_keeps_the_write_rule(
    spark, versioned_redis_cluster, versioned_cluster_client, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(online_write, "WRITE_SLICE_ROWS", 50)  # several slices (batches) per partition
    users = _users(400)
    when = NOW - timedelta(hours=3)

    def source(rows: list[dict], name: str) -> JobTable:
        folder = tmp_path / name
        folder.mkdir()
        columns = [{k: v for k, v in r.items() if k != online_write.EVENT_NS} for r in rows]
        pq.write_table(pa.Table.from_pylist(columns, schema=SOURCE_SCHEMA), folder / "part-0.parquet")
        src = JobSource(to_file_url(folder), "event_timestamp", created_timestamp_column="created")
        return dataclasses.replace(TABLE, batch_source=src)

    def rows_at(offset: timedelta, salt: int) -> list[dict]:
        out = []
        for i, u in enumerate(users):
            ev = when + offset + timedelta(microseconds=i)
            r = _row(u, i + salt, rl.datetime_to_ns(ev))
            out.append(r | {"event_timestamp": ev, "created": ev})
        return out

    first = rows_at(timedelta(0), 0)
    # then: older rows for the odd keys (stale), an older and a newer row for every fourth (dedup keeps the newer)
    older = rows_at(-timedelta(minutes=5), 1)
    newer = rows_at(timedelta(minutes=5), 2)
    second = [r for i, r in enumerate(older) if i % 2 or i % 4 == 0] + newer[::4]
    args = {
        "project": PROJECT,
        "redis_url": versioned_redis_cluster.seeds,
        "start": when - timedelta(days=1),
        "end": when + timedelta(days=1),
        "dead_letter_location": to_file_url(tmp_path / "dead"),
    }
    s1 = ingestion.run(spark, IngestionJobArgs(table=source(first, "first"), **args))
    assert (s1.rows_written, s1.rows_skipped_stale) == (400, 0)
    assert dump_redis(versioned_cluster_client) == _expected(first)
    assert _script_calls(versioned_redis_cluster) < 400 / 2  # several keys per call
    s2 = ingestion.run(spark, IngestionJobArgs(table=source(second, "second"), **args))
    assert (s2.rows_written, s2.rows_skipped_stale) == (100, 200)
    wins = [newer[i] if i % 4 == 0 else first[i] for i in range(len(users))]
    assert dump_redis(versioned_cluster_client) == _expected(wins)


def test_a_lost_script_is_loaded_again_and_the_batch_rewritten(
    versioned_redis, versioned_redis_server
) -> None:
    rows = [_row(u, i, BASE_NS + i) for i, u in enumerate(_users(200))]
    sink = _sink(versioned_redis_server.url)
    try:
        sink.send(_encoded(rows[:100]))
        assert sink.flush().written == 100
        versioned_redis.script_flush()
        sink.send(_encoded(rows[100:150]))
        sink.send(_encoded(rows[150:]))
        assert sink.flush() == redis_sink.WriteResult(written=100, stale=0)
    finally:
        sink.close()
    assert dump_redis(versioned_redis) == _expected(rows)


def test_calls_sent_to_the_wrong_node_are_written_key_by_key(
    versioned_redis_cluster, versioned_cluster_client
) -> None:
    """A slot map gone stale (a resharding): the nodes answer MOVED; those keys still get written, once."""
    rows = [_row(u, i, BASE_NS + i) for i, u in enumerate(_users(150))]
    sink = _sink(versioned_redis_cluster.seeds)
    try:
        assert sink.write(_encoded(rows[:10])).written == 10
        right = sink._node_of_slot
        assert right is not None
        sink._node_of_slot = (right + 1) % len(versioned_redis_cluster.nodes)  # every slot on the next node
        sink.send(_encoded(rows[10:50]))
        sink.send(_encoded(rows[50:80]))
        assert sink.flush() == redis_sink.WriteResult(written=70, stale=0)
        sink.send(_encoded(rows[80:]))  # the map is learnt again first
        assert np.array_equal(sink._node_of_slot, right)
        assert sink.flush() == redis_sink.WriteResult(written=70, stale=0)
    finally:
        sink.close()
    assert dump_redis(versioned_cluster_client) == _expected(rows)


def _key(user: str) -> bytes:
    return rl.entity_key(PROJECT, {"user": rl.encode_value(user, ValueType.STRING)})


def _fields(rows: list[tuple[JobTable, dict]]) -> dict[bytes, bytes]:
    """The hash of one key that rows of several tables were written to (each table's own fields)."""
    out: dict[bytes, bytes] = {}
    for table, r in rows:
        values = {f.name: (r[f.name], f.value_type) for f in table.features}
        out |= rl.table_row_fields(table.name, values, r[online_write.EVENT_NS], table.max_age_seconds)
    return out


def _expire_at(table: JobTable, row: dict) -> int:
    return -(-rl.expiry_ns(row[online_write.EVENT_NS], table.max_age_seconds) // 1_000_000_000)


def test_a_key_expires_at_the_latest_of_its_tables_expiries(versioned_redis, versioned_redis_server) -> None:
    """Tables sharing keys: the key's expiry is the latest of theirs, to the second (what the script reads back
    from the server as PTTL plus its clock on Redis 6); a table without max_age leaves the key without expiry."""
    hour = dataclasses.replace(TABLE, name="hourly", max_age_seconds=3600)
    day = dataclasses.replace(TABLE, name="daily", max_age_seconds=86_400)
    hour2 = dataclasses.replace(TABLE, name="hourly2", max_age_seconds=3600)
    forever = dataclasses.replace(TABLE, name="forever", max_age_seconds=0)
    second = 1_000_000_000
    recent = rl.datetime_to_ns(NOW - timedelta(minutes=10))  # (an hour's max_age has not run out)
    ev = recent - recent % second + 250_000_000  # .25 s: the expiries are rounded up to the next second
    cases = {  # user: the rows written, in order, and the key's expiry afterwards
        "day-then-hour": ([(day, 0), (hour, 0)], (day, 0)),
        "hour-then-day": ([(hour, 0), (day, 0)], (day, 0)),
        "one-second-later": ([(hour, 0), (hour2, second)], (hour2, second)),
        "one-second-earlier": ([(hour, 0), (hour2, -second)], (hour, 0)),
        "same-second": ([(hour, 0), (hour2, 500_000_000)], (hour, 0)),
        "rewritten": ([(hour, 0), (hour, 0)], (hour, 0)),
        "none-then-day": ([(forever, 0), (day, 0)], None),  # no expiry added to a key without one
        "day-then-none": ([(day, 0), (forever, 0)], None),  # a table without max_age removes it
    }
    expected = {}
    for i, (user, (writes, expiry)) in enumerate(cases.items()):
        rows = []
        for table, offset in writes:
            row = _row(user, i, ev + offset)
            assert _write(versioned_redis_server.url, [row], table).written == 1
            rows.append((table, row))
        at = -1 if expiry is None else _expire_at(expiry[0], _row(user, i, ev + expiry[1]))
        expected[_key(user)] = (_fields(rows), at)
    assert dump_redis(versioned_redis) == expected
    # the cases are what they say: expiries one second later, one second earlier, and in the same second
    first = _expire_at(hour, _row("", 0, ev))
    assert [_expire_at(hour2, _row("", 0, ev + d)) - first for d in (second, -second, 500_000_000)] == [
        1,
        -1,
        0,
    ]


def test_a_replica_holds_exactly_what_the_primary_holds(
    versioned_redis, versioned_redis_server, redis_binary, tmp_path
) -> None:
    """The script is replicated by its writes (it reads the server's clock before writing): asked for by the
    script itself, so that it works on a Redis 6 configured to replicate scripts verbatim too."""
    primary = versioned_redis_server
    is_redis6 = primary.client().info("server")["redis_version"].startswith("6.")
    replica = EmbeddedRedis(
        tmp_path / "replica", binary=redis_binary, extra_args=["--replicaof", "127.0.0.1", str(primary.port)]
    ).start()
    try:
        replica_client = replica.client()
        deadline = time.monotonic() + 20
        while replica_client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync with the primary"
            time.sleep(0.05)
        if is_redis6:  # replicate scripts verbatim: a script that reads the clock before a write would fail
            versioned_redis.config_set("lua-replicate-commands", "no")
        day = dataclasses.replace(TABLE, name="daily", max_age_seconds=86_400)
        users = _users(60)
        first = [_row(u, i, BASE_NS + i) for i, u in enumerate(users)]
        # newer rows of a longer-lived table: the keys' expiry moves later (EXPIREAT after reading the clock)
        later = [_row(u, i + 1, BASE_NS + i + 60_000_000_000) for i, u in enumerate(users)]
        assert _write(primary.url, first).written == 60
        assert _write(primary.url, later, day).written == 60
        assert versioned_redis.wait(1, 10_000) == 1
        state = dump_redis(versioned_redis)
        assert state == {
            _key(u): (_fields([(TABLE, f), (day, d)]), _expire_at(day, d))
            for u, f, d in zip(users, first, later, strict=True)
        }
        # WAIT counts the replica's acknowledgement; on a loaded machine its keyspace may show the writes a moment
        # later (seen once in CI: an empty replica right after WAIT returned 1)
        deadline = time.monotonic() + 10
        while dump_redis(replica_client) != state and time.monotonic() < deadline:
            time.sleep(0.1)
        assert dump_redis(replica_client) == state
        replicated = replica_client.info("commandstats")
        assert "cmdstat_evalsha" not in replicated and int(replicated["cmdstat_hset"]["calls"]) >= 120
    finally:
        if is_redis6:
            versioned_redis.config_set("lua-replicate-commands", "yes")
        replica.stop()
