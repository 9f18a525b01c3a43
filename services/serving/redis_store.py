"""Reading the online store: many HMGETs in one pipelined round trip, on a Redis server or a Redis Cluster.

Every Redis failure becomes provender.kernel.errors.Unavailable with a message naming Redis and its address, fast:
connections time out after `connect_timeout` and replies after `timeout`, and a failed call is retried at most
once, at once (a pooled connection may have died while Redis restarted).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from provender.kernel.errors import Unavailable
from provender.kernel.redis_url import RedisTarget
from provender.kernel.wire import resp
from provender.kernel.wire.resp import pack
from provender.serving.resp import RespConnectionError, RespPool, RespReplyError, RespTimeout

log = logging.getLogger(__name__)


Reply = list[bytes | None]


class FieldSet:
    """The fields of an HMGET, packed once (RESP) and reused for every key they are read from."""

    __slots__ = ("_head", "_tail", "fields")

    def __init__(self, fields: Sequence[bytes]) -> None:
        self.fields = list(fields)
        self._head = resp.array_header(len(self.fields) + 2) + resp.bulk(b"HMGET")
        self._tail = b"".join(map(resp.bulk, self.fields))

    def pack(self, key: bytes) -> bytes:
        """The RESP bytes of `HMGET key fields...`."""
        return b"%s$%d\r\n%s\r\n%s" % (self._head, len(key), key, self._tail)


Command = tuple[bytes, FieldSet]  # (key, fields) of one HMGET


class RedisRefused(Exception):
    """Redis answered a read with an error (LOADING, BUSY, MASTERDOWN, NOAUTH, ...): it cannot serve it now."""


_REDIS_ERRORS = (
    redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, RespConnectionError, RespTimeout, OSError,
    RedisRefused,
)  # fmt: skip
_ERROR_KINDS = {
    RespConnectionError: "ConnectionError",
    RespTimeout: "TimeoutError",
    RedisRefused: "ReplyError",
}


def _absent_or_raise(reply: object, n_fields: int) -> list[None]:
    """An HMGET's error reply: WRONGTYPE (the key holds something else than a hash) reads as absent; any other
    (the server loading its data, busy with a script, without a primary, ...) means the values cannot be read, and
    answering them absent would be a wrong answer."""
    text = str(reply)
    if text.startswith("WRONGTYPE"):
        log.warning("Redis refused an HMGET: %s", text)
        return [None] * n_fields
    raise RedisRefused(f"it answered {text[:200]!r}")


_PING = pack("PING")


class RedisStore:
    """HMGET many keys in one round trip; `on_error` is told the kind of every failure (for metrics, health)."""

    def __init__(
        self,
        target: RedisTarget,
        connect_timeout: float = 0.05,
        timeout: float = 0.5,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.target = target
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._on_error = on_error
        self._lock = threading.Lock()
        self._cluster: RedisCluster | None = None
        self._pool: RespPool | None = None
        if not target.cluster:
            host, port = target.nodes[0]
            self._pool = RespPool(
                host, port, connect_timeout, timeout, tls=target.tls,
                username=target.username, password=target.password, db=target.db,
            )  # fmt: skip

    def describe(self) -> str:
        return self.target.describe()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.clear()
        if self._cluster is not None:
            self._cluster.close()

    # reads -----------------------------------------------------------------------------------------------

    def hmget_many(self, commands: Sequence[Command]) -> list[Reply]:
        """One reply per command, in order, with one entry per field; a key holding something else than a hash
        reads as absent (every entry None)."""
        if not commands:
            return []
        try:
            if self._pool is not None:
                return self._hmget_standalone(commands)
            return self._hmget_cluster(commands)
        except _REDIS_ERRORS as e:
            raise self._unavailable(e) from None

    def ping(self) -> None:
        """Raise Unavailable unless every Redis node answers."""
        try:
            if self._pool is not None:
                (reply,) = self._pool.call(_PING, 1)
                if isinstance(reply, RespReplyError):
                    raise RespConnectionError(f"PING failed: {reply}")
            else:
                self._cluster_client().ping(target_nodes=RedisCluster.ALL_NODES)
        except (*_REDIS_ERRORS, redis.ResponseError) as e:
            raise self._unavailable(e) from None

    def _hmget_standalone(self, commands: Sequence[Command]) -> list[Reply]:
        assert self._pool is not None
        replies = self._pool.call(b"".join([fields.pack(key) for key, fields in commands]), len(commands))
        if list(map(type, replies)).count(list) != len(replies):
            for i, reply in enumerate(replies):
                if not isinstance(reply, list):
                    replies[i] = _absent_or_raise(reply, len(commands[i][1].fields))
        return replies

    def _hmget_cluster(self, commands: Sequence[Command]) -> list[Reply]:
        pipe = self._cluster_client().pipeline()
        for key, fields in commands:
            pipe.hmget(key, fields.fields)
        replies = pipe.execute(raise_on_error=False)
        out: list[Reply] = []
        for (_, fields), reply in zip(commands, replies, strict=True):
            if isinstance(reply, redis.ResponseError) and not isinstance(reply, _REDIS_ERRORS):
                out.append(_absent_or_raise(reply, len(fields.fields)))
            elif isinstance(reply, BaseException):
                raise reply
            else:
                out.append(reply)
        return out

    def _cluster_client(self) -> RedisCluster:
        client = self._cluster
        if client is not None:
            return client
        with self._lock:
            if self._cluster is None:
                t = self.target
                self._cluster = RedisCluster(
                    startup_nodes=[ClusterNode(h, p) for h, p in t.nodes],
                    username=t.username,
                    password=t.password,
                    ssl=t.tls,
                    socket_connect_timeout=self._connect_timeout,
                    socket_timeout=self._timeout,
                    retry=Retry(NoBackoff(), 1),
                )
            return self._cluster

    def _unavailable(self, e: BaseException) -> Unavailable:
        kind = _ERROR_KINDS.get(type(e), type(e).__name__)
        if self._on_error is not None:
            self._on_error(kind)
        detail = str(e).strip() or kind
        return Unavailable(f"Redis at {self.describe()} is unavailable: {detail}")
