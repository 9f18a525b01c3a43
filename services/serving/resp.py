"""A lean connection pool to one Redis server for the hot path: pre-packed RESP over a socket, replies parsed by
hiredis. redis-py's pool does bookkeeping on every checkout (observability hooks, a poll for unread data);
this one pops an idle socket, sends one buffer and reads exactly the replies it expects.

Failures raise `RespConnectionError` (refused, reset, closed) or `RespTimeout`; a connection that failed is
closed and dropped, never returned to the pool.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections import deque
from collections.abc import Sequence

import hiredis

from provender.kernel.wire.resp import pack

RECV_BYTES = 256 * 1024


class RespConnectionError(ConnectionError):
    pass


class RespTimeout(TimeoutError):
    pass


class RespReplyError(Exception):
    """An error reply (-ERR ...) from Redis."""


class RespConnection:
    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout: float,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        handshake: Sequence[bytes] = (),
    ) -> None:
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except TimeoutError as e:
            raise RespTimeout(f"timed out connecting to {host}:{port}") from e
        except OSError as e:
            raise RespConnectionError(f"cannot connect to {host}:{port}: {e.strerror or e}") from e
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
                sock.settimeout(timeout)
            else:
                # Kernel-side timeouts on a blocking socket: no poll() before every send and receive.
                sock.settimeout(None)
                tv = struct.pack("ll", int(timeout), int((timeout % 1) * 1_000_000))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        except OSError as e:
            sock.close()
            raise RespConnectionError(f"cannot set up the connection to {host}:{port}: {e}") from e
        self._sock = sock
        self._reader = hiredis.Reader(replyError=RespReplyError)
        self._buffer = bytearray(RECV_BYTES)
        self._view = memoryview(self._buffer)
        self.address = f"{host}:{port}"
        if handshake:
            for reply in self.call(b"".join(handshake), len(handshake)):
                if isinstance(reply, RespReplyError):
                    self.close()
                    raise RespConnectionError(f"Redis at {self.address} refused the handshake: {reply}")

    def call(self, payload: bytes, replies: int) -> list:
        """Send pre-packed commands and read `replies` replies (error replies are returned, not raised)."""
        sock = self._sock
        reader = self._reader
        try:
            sock.sendall(payload)
            out: list = []
            while len(out) < replies:
                reply = reader.gets()
                if reply is False:
                    n = sock.recv_into(self._buffer)
                    if n == 0:
                        raise RespConnectionError(f"Redis at {self.address} closed the connection")
                    reader.feed(self._view[:n])
                    continue
                out.append(reply)
            return out
        except (TimeoutError, BlockingIOError) as e:  # BlockingIOError: SO_RCVTIMEO / SO_SNDTIMEO expired
            self.close()
            raise RespTimeout(f"no reply from Redis at {self.address} in time") from e
        except OSError as e:
            self.close()
            raise RespConnectionError(
                f"connection to Redis at {self.address} failed: {e.strerror or e}"
            ) from e
        except RespConnectionError:
            self.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class RespPool:
    """Idle connections to one server; a connection is used by one thread at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout: float,
        timeout: float,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
    ) -> None:
        self._args = (host, port, connect_timeout, timeout)
        self._tls = ssl.create_default_context() if tls else None
        handshake = []
        if password is not None:
            handshake.append(pack("AUTH", username, password) if username else pack("AUTH", password))
        if db:
            handshake.append(pack("SELECT", db))
        self._handshake = tuple(handshake)
        self._idle: deque[RespConnection] = deque()

    def call(self, payload: bytes, replies: int) -> list:
        """Run pre-packed commands on an idle connection; a pooled connection that turns out dead (Redis
        restarted) is replaced once by a new one."""
        try:
            conn = self._idle.pop()
            reused = True
        except IndexError:
            conn = self._connect()
            reused = False
        try:
            out = conn.call(payload, replies)
        except RespConnectionError:
            if not reused:
                raise
            self.clear()  # its siblings are most likely dead too
            conn = self._connect()
            out = conn.call(payload, replies)
        self._idle.append(conn)
        return out

    def clear(self) -> None:
        while True:
            try:
                self._idle.pop().close()
            except IndexError:
                return

    def _connect(self) -> RespConnection:
        return RespConnection(*self._args, tls=self._tls, handshake=self._handshake)
