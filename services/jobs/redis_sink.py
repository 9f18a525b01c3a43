"""Writing encoded table rows to the online store, atomically per key, never over a newer row.

A Lua script applies the write rule of PROTOCOL.md to each key atomically: it reads the stored `_ts:<table>`,
skips the row when the stored event time is newer, else sets `_ts`, `_ex` and the non-null features, deletes the table's fields that
are null in the row (the hash shows exactly the latest row), and sets EXPIREAT to the latest of the key's
expiries (no expiry when the table's max_age is 0, and none added to a key that already has none).

On a single Redis one script call handles KEYS_PER_CALL keys, and the calls of a whole batch are built as one RESP
buffer with pyarrow (no per-row Python) and sent on one connection; on a Redis Cluster each key gets its own call
(the keys of a call must share a slot), routed by a redis-py cluster pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
from redis.cluster import ClusterNode, RedisCluster

from provender.errors import Unavailable
from provender.jobs.columnar_encoding import concat, join_groups
from provender.redis_url import RedisTarget, parse_redis_url

# One call writes the rows of several keys (KEYS). ARGV: 1 ts field, 2 ex field, 3 number of features F, 4..3+F the
# feature fields, then per key (stride 5+F): event seconds, event nanos, ts bytes, ex bytes ("" = none), EXPIREAT
# seconds ("0" = no expiry), F values ("" = null: the field is deleted). Returns how many keys were written.
WRITE_ROWS_LUA = r"""
local function varint(b, i)
  local groups = {}
  while true do
    local c = string.byte(b, i)
    if c == nil then return nil, i end
    i = i + 1
    groups[#groups + 1] = c % 128
    if c < 128 then break end
  end
  local v, m = 0, 1
  if #groups == 10 then
    for k = 1, 9 do v = v + (127 - groups[k]) * m; m = m * 128 end
    return -(v + 1), i
  end
  for k = 1, #groups do v = v + groups[k] * m; m = m * 128 end
  return v, i
end

local function timestamp(b)
  local s, n, i = 0, 0, 1
  while i <= #b do
    local tag = string.byte(b, i)
    local v
    v, i = varint(b, i + 1)
    if v == nil then break end
    if tag == 8 then s = v elseif tag == 16 then n = v else break end
  end
  return s, n
end

local ts_field, ex_field, nf = ARGV[1], ARGV[2], tonumber(ARGV[3])
local fields = {}
for j = 1, nf do fields[j] = ARGV[3 + j] end
local stride = 5 + nf
local written = 0
for k = 1, #KEYS do
  local key = KEYS[k]
  local o = 3 + nf + (k - 1) * stride
  local stored = redis.call('HGET', key, ts_field)
  local newer = false
  if stored then
    local s, n = timestamp(stored)
    local new_s, new_n = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2])
    newer = s > new_s or (s == new_s and n > new_n)
  end
  if not newer then
    local current = redis.call('EXPIRETIME', key)
    local set = {ts_field, ARGV[o + 3]}
    local del = {}
    if ARGV[o + 4] ~= '' then set[#set + 1] = ex_field; set[#set + 1] = ARGV[o + 4] else del[#del + 1] = ex_field end
    for j = 1, nf do
      local v = ARGV[o + 5 + j]
      if v == '' then del[#del + 1] = fields[j] else set[#set + 1] = fields[j]; set[#set + 1] = v end
    end
    redis.call('HSET', key, unpack(set))
    if #del > 0 then redis.call('HDEL', key, unpack(del)) end
    local at = tonumber(ARGV[o + 5])
    if at == 0 then
      if current >= 0 then redis.call('PERSIST', key) end
    elseif current ~= -1 then
      if current > at then at = current end
      redis.call('EXPIREAT', key, at)
    end
    written = written + 1
  end
end
return written
"""
KEYS_PER_CALL = 64  # keys per script call on a single Redis: amortises the call; ~1 ms of Redis time per call

_EMPTY = pa.scalar(b"", pa.binary())


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


@dataclass
class WriteResult:
    written: int = 0
    stale: int = 0


def _decimal(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.string()).cast(pa.binary())


def _bulk(values: pa.Array) -> list[pa.Array | bytes]:
    """RESP bulk strings of a binary column (null written as the empty string)."""
    values = values.fill_null(_EMPTY) if values.null_count else values
    lengths = _decimal(pc.binary_length(values).to_numpy(zero_copy_only=False))
    return [b"$", lengths, b"\r\n", values, b"\r\n"]


def _bulk_const(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class RedisSink:
    """Writes EncodedRows of one table with the write-row script; one instance per task (it owns connections)."""

    def __init__(self, redis_url: str, ts_field: bytes, ex_field: bytes, timeout: float = 60.0) -> None:
        self.target: RedisTarget = parse_redis_url(redis_url)
        self.ts_field = ts_field
        self.ex_field = ex_field
        self.timeout = timeout
        self._client: redis.Redis | RedisCluster | None = None
        self._sha: str | None = None

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
        return self._client

    def _load_script(self) -> str:
        # on a cluster, redis-py sends SCRIPT LOAD to every primary
        sha = self._connect().script_load(WRITE_ROWS_LUA)
        if isinstance(sha, dict):
            sha = next(iter(sha.values()))
        self._sha = sha.decode() if isinstance(sha, bytes) else str(sha)
        return self._sha

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- writing ---

    def write(self, rows: EncodedRows) -> WriteResult:
        """Write one batch; retried once when Redis lost the script (a restart): the write rule is idempotent."""
        if len(rows) == 0:
            return WriteResult()
        try:
            for attempt in (1, 2):
                sha = self._sha or self._load_script()
                try:
                    if isinstance(self._connect(), RedisCluster):
                        return self._write_cluster(sha, rows)
                    return self._write_single(sha, rows)
                except redis.exceptions.NoScriptError:
                    self._sha = None
                    if attempt == 2:
                        raise
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, OSError) as e:
            raise Unavailable(f"Redis at {self.target.describe()} failed during the write: {e}") from e
        raise AssertionError("unreachable")

    def _constant_argv(self, rows: EncodedRows) -> list[bytes]:
        return [self.ts_field, self.ex_field, str(len(rows.features)).encode(), *rows.features]

    def _row_argv(self, rows: EncodedRows) -> list[pa.Array | bytes]:
        """The RESP bulk strings of each row's own arguments, as parts of a row-wise concatenation."""
        seconds = np.floor_divide(rows.event_ns, 1_000_000_000)
        parts: list[pa.Array | bytes] = []
        parts += _bulk(_decimal(seconds))
        parts += _bulk(_decimal(rows.event_ns - seconds * 1_000_000_000))
        parts += _bulk(rows.ts_values)
        parts += _bulk(rows.ex_values) if rows.ex_values is not None else [_bulk_const(b"")]
        parts += _bulk(_decimal(rows.expire_at))
        for values in rows.features.values():
            parts += _bulk(values)
        return parts

    def _write_single(self, sha: str, rows: EncodedRows) -> WriteResult:
        n = len(rows)
        constant = self._constant_argv(rows)
        stride = 5 + len(rows.features)
        row_keys = concat(*_bulk(rows.keys))
        row_argv = concat(*self._row_argv(rows))
        bounds = np.append(np.arange(0, n, KEYS_PER_CALL), n)
        sizes = np.diff(bounds)
        nargs = 3 + sizes + len(constant) + sizes * stride
        head = concat(
            b"*",
            _decimal(nargs),
            b"\r\n" + _bulk_const(b"EVALSHA") + _bulk_const(sha.encode()),
            *_bulk(_decimal(sizes)),
        )
        commands = concat(
            head,
            join_groups(row_keys, bounds),
            b"".join(_bulk_const(c) for c in constant),
            join_groups(row_argv, bounds),
        )
        offsets = np.frombuffer(
            commands.buffers()[1], dtype=np.int32, count=len(commands) + 1, offset=commands.offset * 4
        )
        payload = memoryview(commands.buffers()[2])[offsets[0] : offsets[-1]]
        client = self._connect()
        assert isinstance(client, redis.Redis)
        conn = client.connection_pool.get_connection()
        replies = []
        error: redis.exceptions.ResponseError | None = None
        try:
            conn.send_packed_command([payload], check_health=False)
            for _ in range(len(sizes)):
                try:
                    replies.append(conn.read_response(disable_decoding=True))
                except redis.exceptions.ResponseError as e:  # keep reading: the other replies are on the wire
                    error = error or e
        except BaseException:
            conn.disconnect()
            raise
        finally:
            client.connection_pool.release(conn)
        if error is not None:
            raise error
        written = int(sum(int(r) for r in replies))
        return WriteResult(written=written, stale=n - written)

    def _write_cluster(self, sha: str, rows: EncodedRows) -> WriteResult:
        """One script call per key (keys of one call must share a slot), routed by a redis-py cluster pipeline."""
        client = self._connect()
        keys = rows.keys.to_pylist()
        constant = self._constant_argv(rows)
        seconds = np.floor_divide(rows.event_ns, 1_000_000_000)
        columns = [
            seconds.tolist(),
            (rows.event_ns - seconds * 1_000_000_000).tolist(),
            rows.ts_values.to_pylist(),
            rows.ex_values.to_pylist() if rows.ex_values is not None else [b""] * len(keys),
            rows.expire_at.tolist(),
        ]
        columns += [[v or b"" for v in values.to_pylist()] for values in rows.features.values()]
        pipe = client.pipeline()
        for i, key in enumerate(keys):
            # (redis-py blocks pipe.evalsha on a cluster; the command itself routes by its one key)
            pipe.execute_command("EVALSHA", sha, 1, key, *constant, *(c[i] for c in columns))
        written = sum(int(r) for r in pipe.execute())
        return WriteResult(written=written, stale=len(keys) - written)
