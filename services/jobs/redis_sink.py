"""Writing encoded table rows to the online store, atomically per key, never over a newer row.

A Lua script (provender.kernel.online.write_rule) applies the write rule to each key atomically: it skips the row when the stored
`_ts:<table>` is newer, else sets `_ts`, `_ex` and the non-null features, deletes the table's fields that are null
in the row (the hash shows exactly the latest row), and sets EXPIREAT to the latest of the key's expiries (no expiry
when the table's max_age is 0, and none added to a key that already has none). A key that does not exist yet takes
the short way: one HSET and one EXPIREAT. Redis 6.0 and later: the key's current expiry is its PTTL plus the
server's clock (TIME, read after PTTL, so never early: exact for the whole-second expiries EXPIREAT sets), not
Redis 7's EXPIRETIME; the script is replicated by its effects (the default since Redis 5, asked for explicitly), so
reading the clock before writing is allowed.

One script call carries up to KEYS_PER_CALL keys. The calls of a batch are built as one RESP buffer per Redis node
with pyarrow (no per-row Python) and written on one connection per node. On a Redis Cluster the keys of one call
share a hash slot (a call's keys must), each primary gets the calls of its slots, and the primaries work at once;
a call redirected by a resharding (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) is written again key by key through redis-py,
which follows redirections. `send` returns once a batch is on the wire and the batch before it is answered, so that
the caller encodes the next batch while Redis writes this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import AbstractConnection
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from provender.kernel.errors import Unavailable
from provender.kernel.online.columns import concat, join_groups
from provender.kernel.online.write_rule import KEYS_PER_CALL, WRITE_ROWS_LUA
from provender.kernel.redis_url import RedisTarget, parse_redis_url
from provender.kernel.wire import resp, resp_columns

_EMPTY = pa.scalar(b"", pa.binary())
_REDIRECTED = (
    redis.exceptions.MovedError,  # (a subclass of AskError)
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, OSError)
# Slots in bit-reversed order: consecutive ranks are spread over the whole slot range, so a run of rows ordered by
# it reaches every primary (each serves a contiguous range of slots) instead of one at a time.
_SLOT_RANK = np.array([int(f"{s:014b}"[::-1], 2) for s in range(REDIS_CLUSTER_HASH_SLOTS)], dtype=np.int64)


@dataclass(frozen=True)
class EncodedRows:
    """One batch of rows of one table, encoded: keys, event times, `_ts`/`_ex` bytes, EXPIREAT, feature values."""

    keys: pa.BinaryArray
    event_ns: np.ndarray
    ts_values: pa.BinaryArray
    ex_values: pa.BinaryArray | None  # None when max_age is 0
    expire_at: np.ndarray  # seconds, 0 = no expiry
    features: dict[bytes, pa.BinaryArray]  # feature field -> serialized Values (null = not written)

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, indices: np.ndarray) -> EncodedRows:
        idx = pa.array(indices)
        return EncodedRows(
            keys=self.keys.take(idx),
            event_ns=self.event_ns[indices],
            ts_values=self.ts_values.take(idx),
            ex_values=self.ex_values.take(idx) if self.ex_values is not None else None,
            expire_at=self.expire_at[indices],
            features={f: v.take(idx) for f, v in self.features.items()},
        )


@dataclass
class WriteResult:
    written: int = 0
    stale: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.written + other.written, self.stale + other.stale)


def constant_arguments(rows: EncodedRows, ts_field: bytes, ex_field: bytes) -> list[bytes]:
    """The script arguments every call of a batch starts with (see WRITE_ROWS_LUA)."""
    has_ex = b"1" if rows.ex_values is not None else b"0"
    return [ts_field, ex_field, has_ex, b"%d" % len(rows.features), *rows.features]


def row_arguments(rows: EncodedRows) -> pa.BinaryArray:
    """Each row's own script arguments (see WRITE_ROWS_LUA) as RESP bulk strings: 3 + F of them."""
    parts = [
        *resp_columns.bulk_column(resp_columns.decimal(rows.expire_at)),
        *resp_columns.bulk_column(rows.ts_values),
    ]
    parts += resp_columns.bulk_column(rows.ex_values) if rows.ex_values is not None else [resp.bulk(b"")]
    for values in rows.features.values():
        parts += resp_columns.bulk_column(values.fill_null(_EMPTY) if values.null_count else values)
    return concat(*parts)


def script_calls(sha: str, constant: list[bytes], rows: EncodedRows, bounds: np.ndarray) -> pa.BinaryArray:
    """One EVALSHA command (RESP) per call; call c writes rows bounds[c] .. bounds[c + 1] - 1."""
    sizes = np.diff(bounds)
    per_row = 3 + len(rows.features)
    nargs = 3 + sizes + len(constant) + sizes * per_row  # EVALSHA sha numkeys keys.. constant.. rows' args..
    head = concat(
        b"*",
        resp_columns.decimal(nargs),
        resp.CRLF + resp.bulk(b"EVALSHA") + resp.bulk(sha.encode()),
        *resp_columns.bulk_column(resp_columns.decimal(sizes)),
    )
    return concat(
        head,
        join_groups(concat(*resp_columns.bulk_column(rows.keys)), bounds),
        b"".join(resp.bulk(c) for c in constant),
        join_groups(row_arguments(rows), bounds),
    )


def _payload(commands: pa.BinaryArray, first: int, last: int) -> memoryview:
    """The bytes of commands first .. last - 1, without a copy."""
    offsets = np.frombuffer(
        commands.buffers()[1], dtype=np.int32, count=len(commands) + 1, offset=commands.offset * 4
    )
    return memoryview(commands.buffers()[2])[offsets[first] : offsets[last]]


@dataclass
class _Sent:
    """A batch on the wire: its rows (in call order), the calls' bounds, and per node the calls it was sent."""

    rows: EncodedRows
    bounds: np.ndarray
    attempt: int
    to_nodes: list[tuple[int, int, int]] = field(default_factory=list)  # (node, first call, end call)


class RedisSink:
    """Writes EncodedRows of one table with the write-row script; one instance per task (it owns connections).

    `send` each batch, then `flush` for the totals; `write` does both for one batch.
    """

    def __init__(self, redis_url: str, ts_field: bytes, ex_field: bytes, timeout: float = 60.0) -> None:
        self.target: RedisTarget = parse_redis_url(redis_url)
        self.ts_field = ts_field
        self.ex_field = ex_field
        self.timeout = timeout
        self._client: redis.Redis | RedisCluster | None = None
        self._sha: str | None = None
        self._nodes: list[redis.Redis] = []  # the Redis of each node index; a single Redis is node 0
        self._node_of_slot: np.ndarray | None = None  # cluster: node index serving each slot (-1: none)
        self._connections: dict[int, AbstractConnection] = {}  # node index -> the connection this sink holds
        self._pending: list[_Sent] = []  # sent, not yet answered (oldest first)
        self._retry: list[_Sent] = []  # answered NOSCRIPT: to send again
        self._map_stale = False
        self._result = WriteResult()

    # --- connections ---

    def _connect(self) -> redis.Redis | RedisCluster:
        if self._client is None:
            t = self.target
            common = {
                "username": t.username,
                "password": t.password,
                "ssl": t.tls,
                "socket_timeout": self.timeout,
                "socket_connect_timeout": 10,
            }
            if t.cluster:
                nodes = [ClusterNode(h, p) for h, p in t.nodes]
                self._client = RedisCluster(startup_nodes=nodes, **common)
            else:
                (host, port) = t.nodes[0]
                self._client = redis.Redis(host=host, port=port, db=t.db, **common)
                self._nodes = [self._client]
        return self._client

    @property
    def is_cluster(self) -> bool:
        return self.target.cluster

    def _slot_map(self) -> np.ndarray:
        """Cluster: the primary of each slot, as an index into self._nodes (from redis-py's slot cache)."""
        if self._node_of_slot is None:
            client = self._connect()
            assert isinstance(client, RedisCluster)
            self._release_connections()
            self._nodes = []
            index: dict[str, int] = {}
            node_of_slot = np.full(REDIS_CLUSTER_HASH_SLOTS, -1, dtype=np.int64)
            for slot, nodes in client.nodes_manager.slots_cache.items():
                if not nodes:
                    continue
                primary = nodes[0]
                if primary.name not in index:
                    index[primary.name] = len(self._nodes)
                    self._nodes.append(client.get_redis_connection(primary))
                node_of_slot[slot] = index[primary.name]
            self._node_of_slot = node_of_slot
        return self._node_of_slot

    def _connection(self, node: int) -> AbstractConnection:
        conn = self._connections.get(node)
        if conn is None:
            conn = self._nodes[node].connection_pool.get_connection()
            self._connections[node] = conn
        return conn

    def _release_connections(self, disconnect: bool = False) -> None:
        for node, conn in self._connections.items():
            if disconnect:
                conn.disconnect()
            self._nodes[node].connection_pool.release(conn)
        self._connections = {}

    def _load_script(self) -> str:
        # on a cluster, redis-py sends SCRIPT LOAD to every primary
        sha = self._connect().script_load(WRITE_ROWS_LUA)
        if isinstance(sha, dict):
            sha = next(iter(sha.values()))
        self._sha = sha.decode() if isinstance(sha, bytes) else str(sha)
        return self._sha

    def close(self) -> None:
        self._pending = []
        self._retry = []
        if self._client is not None:
            self._release_connections(disconnect=True)
            self._client.close()
            self._client = None

    # --- writing ---

    def write_order(self, keys: pa.BinaryArray) -> np.ndarray | None:
        """The order to send a partition's rows in (None: as they are). On a cluster: by slot, the slots spread
        over the primaries, so that batches cut from it hold several keys per slot and reach every primary."""
        if not self.is_cluster or len(keys) == 0:
            return None
        slots = np.fromiter((key_slot(k) for k in keys.to_pylist()), dtype=np.int64, count=len(keys))
        return np.argsort(_SLOT_RANK[slots], kind="stable")

    def write(self, rows: EncodedRows) -> WriteResult:
        """Write one batch and wait for it (and any batch sent before): the totals since the last flush."""
        self.send(rows)
        return self.flush()

    def send(self, rows: EncodedRows) -> None:
        """Put a batch on the wire; returns once the batches before it are answered."""
        if len(rows) == 0:
            return
        try:
            if self._map_stale:  # learn the cluster's new slot map once nothing is in flight on the old one
                self._drain(keep=0)
                self._map_stale = False
                self._node_of_slot = None
            self._pending.append(self._send(rows, attempt=1))
            self._drain(keep=1)
        except _UNAVAILABLE as e:
            self._fail(e)

    def flush(self) -> WriteResult:
        """Wait for every batch sent; the totals since the last flush."""
        try:
            self._drain(keep=0)
        except _UNAVAILABLE as e:
            self._fail(e)
        result, self._result = self._result, WriteResult()
        return result

    def _drain(self, keep: int) -> None:
        while len(self._pending) > keep:
            self._finish(self._pending.pop(0))
        while self._retry and not self._pending:
            # Redis lost the script (a restart, SCRIPT FLUSH): load it and write those batches again (the write
            # rule is idempotent; their keys are counted from this write only)
            self._sha = None
            retry, self._retry = self._retry, []
            for sent in retry:
                self._finish(self._send(sent.rows, attempt=sent.attempt + 1))

    def _fail(self, e: Exception) -> None:
        self._pending = []
        self._retry = []
        self._release_connections(disconnect=True)
        raise Unavailable(f"Redis at {self.target.describe()} failed during the write: {e}") from e

    def _plan(self, rows: EncodedRows) -> tuple[EncodedRows, np.ndarray, np.ndarray]:
        """The rows in call order, the calls' bounds and each call's node."""
        n = len(rows)
        if not self.is_cluster:
            bounds = np.append(np.arange(0, n, KEYS_PER_CALL), n)
            return rows, bounds, np.zeros(len(bounds) - 1, dtype=np.int64)
        slots = np.fromiter((key_slot(k) for k in rows.keys.to_pylist()), dtype=np.int64, count=n)
        nodes = self._slot_map()[slots]
        order = np.lexsort((slots, nodes))  # by node, then slot
        rows, slots, nodes = rows.take(order), slots[order], nodes[order]
        position = np.arange(n)
        new_slot = np.ones(n, dtype=bool)
        new_slot[1:] = slots[1:] != slots[:-1]
        slot_start = np.maximum.accumulate(np.where(new_slot, position, 0))
        starts = np.flatnonzero(new_slot | ((position - slot_start) % KEYS_PER_CALL == 0))
        return rows, np.append(starts, n), nodes[starts]

    def _send(self, rows: EncodedRows, attempt: int) -> _Sent:
        self._connect()
        sha = self._sha or self._load_script()
        rows, bounds, call_nodes = self._plan(rows)
        constant = constant_arguments(rows, self.ts_field, self.ex_field)
        commands = script_calls(sha, constant, rows, bounds)
        sent = _Sent(rows, bounds, attempt)
        edges = np.flatnonzero(np.diff(call_nodes)) + 1
        for first, end in zip([0, *edges], [*edges, len(call_nodes)], strict=True):
            node = int(call_nodes[first])
            sent.to_nodes.append((node, first, end))
            if node >= 0:  # (-1: a slot no primary serves in the map: written key by key in _finish)
                conn = self._connection(node)
                conn.send_packed_command([_payload(commands, first, end)], check_health=False)
        return sent

    def _finish(self, sent: _Sent) -> None:
        """Read a batch's replies (all of them, whatever fails) and count them."""
        written = 0
        redirected: list[np.ndarray] = []
        no_script = False
        error: redis.exceptions.ResponseError | None = None
        for node, first, end in sent.to_nodes:
            if node < 0:
                redirected.append(np.arange(sent.bounds[first], sent.bounds[end]))
                continue
            conn = self._connection(node)
            for c in range(first, end):
                try:
                    written += int(conn.read_response(disable_decoding=True))
                except _REDIRECTED:
                    redirected.append(np.arange(sent.bounds[c], sent.bounds[c + 1]))
                except redis.exceptions.NoScriptError:
                    no_script = True
                except redis.exceptions.ResponseError as e:
                    error = error or e
        if error is not None:
            raise error
        if no_script:
            if sent.attempt >= 2:
                raise redis.exceptions.NoScriptError("the write script is missing right after loading it")
            self._retry.append(sent)
            return
        moved = sum(len(r) for r in redirected)
        self._result += WriteResult(written, len(sent.rows) - moved - written)
        if redirected:  # the cluster moved slots: these keys one by one (redis-py follows the redirections)
            self._map_stale = True
            self._result += self._write_per_key(sent.rows.take(np.concatenate(redirected)))

    def _write_per_key(self, rows: EncodedRows) -> WriteResult:
        """One script call per key, routed (and redirected) by a redis-py cluster pipeline."""
        client = self._connect()
        assert isinstance(client, RedisCluster)
        for attempt in (1, 2):
            sha = self._sha or self._load_script()
            pipe = client.pipeline()
            constant = constant_arguments(rows, self.ts_field, self.ex_field)
            for key, args in zip(rows.keys.to_pylist(), self._python_arguments(rows), strict=True):
                # (redis-py blocks pipe.evalsha on a cluster; the command itself routes by its one key)
                pipe.execute_command("EVALSHA", sha, 1, key, *constant, *args)
            try:
                written = sum(int(r) for r in pipe.execute())
            except redis.exceptions.NoScriptError:
                self._sha = None
                if attempt == 2:
                    raise
                continue
            return WriteResult(written=written, stale=len(rows) - written)
        raise AssertionError("unreachable")

    def _python_arguments(self, rows: EncodedRows) -> list[list[bytes | int]]:
        columns = [
            rows.expire_at.tolist(),
            rows.ts_values.to_pylist(),
            rows.ex_values.to_pylist() if rows.ex_values is not None else [b""] * len(rows),
        ]
        columns += [[v or b"" for v in values.to_pylist()] for values in rows.features.values()]
        return [list(row) for row in zip(*columns, strict=True)]
