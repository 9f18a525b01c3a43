"""Which Core replica leads: every replica serves RPCs, and the one holding a Postgres session-level advisory lock
(LEADER_LOCK) on a connection of its own runs the background loops (reconcile, schedules, stream control).

- Every `poll_seconds` each replica takes one step: a follower tries the lock (`pg_try_advisory_lock`), the leader
  checks that its session still holds it. `leading()` takes the same step at once, so the background loop never
  starts a tick, nor a schedule, on a lock it lost: a leader whose connection fails stops leading at that step.
- A leader that exits or is killed: its socket closes, Postgres ends the session and frees the lock, and a
  follower takes it at its next step (within `poll_seconds`).
- A leader that hangs while its connection stays open (a frozen process, a host or network gone silent): its
  session is set `idle_session_timeout = timeout_seconds` (PostgreSQL 14+; the steps keep a live leader's
  session busy every `poll_seconds`), and server-side TCP keepalives; Postgres ends the session after
  `timeout_seconds` of silence, and a follower takes over within `timeout_seconds + poll_seconds`. On the
  leader's side, `tcp_user_timeout` and `statement_timeout` bound a step against a Postgres that went away, so
  a cut-off leader stops leading within about `timeout_seconds / 2 + poll_seconds`, before a follower can
  start.

Domain code: no gRPC. Postgres is reached with psycopg directly: a dedicated connection, never one of the pool's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import URL

from provender.kernel.errors import InvalidArgument

log = logging.getLogger(__name__)

# Advisory lock keys Core uses: 724291 migrations (registry/database.py), 724292 the scheduler's transaction lock
# (jobs/schedules.py), 724293 the leader's session lock.
LEADER_LOCK = 724293

_TRY = "SELECT pg_try_advisory_lock(%s)"
# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low 32 bits) and objsubid 1.
_HELD = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
    "AND classid = %s AND objid = %s AND objsubid = 1 AND granted)"
)


class Connection(Protocol):
    """What the election needs of a connection (psycopg's, or a test's stand-in)."""

    closed: bool

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...

    def close(self) -> None: ...


def lock_parts(key: int) -> tuple[int, int]:
    """The (classid, objid) under which pg_locks shows the advisory lock on bigint `key`."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def session_settings(timeout_seconds: float) -> dict[str, str]:
    """The settings of the leader's session: Postgres ends it when it stays silent for `timeout_seconds`."""
    timeout_ms = max(1000, int(timeout_seconds * 1000))
    keepalive = max(1, int(timeout_seconds / 4))
    return {
        "idle_session_timeout": f"{timeout_ms}ms",  # a hung client (PostgreSQL 14+)
        "tcp_keepalives_idle": str(keepalive),  # a vanished host: about idle + 3 intervals
        "tcp_keepalives_interval": str(keepalive),
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": str(timeout_ms),
        "statement_timeout": f"{timeout_ms // 2}ms",
    }


def connect_options(timeout_seconds: float) -> dict[str, Any]:
    """libpq options of the leader's connection: its side of the same bounds."""
    half = max(1, int(timeout_seconds / 2))
    return {
        "connect_timeout": half,
        "keepalives": 1,
        "keepalives_idle": max(1, int(timeout_seconds / 4)),
        "keepalives_interval": max(1, int(timeout_seconds / 4)),
        "keepalives_count": 2,
        "tcp_user_timeout": half * 1000,  # a step that Postgres does not acknowledge fails, the lead is lost
        "application_name": "provender-core-leader",
    }


class Leadership:
    """The election of one replica: `start()` it, ask `leading()` before background work, `stop()` it (which
    frees the lock at once). Listeners hear `True` when this replica gains the lead and `False` when it loses it."""

    def __init__(
        self,
        connect: Callable[[], Connection],
        *,
        key: int = LEADER_LOCK,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        if not poll_seconds > 0:
            raise InvalidArgument("leader poll_seconds", poll_seconds, "more than 0 seconds")
        if timeout_seconds < 3 * poll_seconds:
            raise InvalidArgument(
                "leader_timeout_seconds",
                timeout_seconds,
                f"at least 3 polls of the lock ({3 * poll_seconds:g} s): a live leader speaks every poll",
            )
        self._connect = connect
        self.key = key
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self._classid, self._objid = lock_parts(key)
        self._conn: Connection | None = None
        self._leader = False
        self._retry_at = 0.0
        self._mutex = threading.Lock()  # one step at a time on the one connection
        self._stop = threading.Event()
        self._listeners: list[Callable[[bool], None]] = []
        self._thread = threading.Thread(target=self._run, name="core-leader", daemon=True)

    @classmethod
    def for_database(cls, url: URL, **kwargs: Any) -> Leadership:
        """An election on the database at `url` (the registry's engine URL: its TLS parameters are kept)."""
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        timeout = float(kwargs.get("timeout_seconds", 10.0))

        def connect() -> Connection:
            conn = psycopg.connect(conninfo, autocommit=True, **connect_options(timeout))
            for name, value in session_settings(timeout).items():
                try:
                    conn.execute("SELECT set_config(%s, %s, false)", (name, value))
                except psycopg.errors.UndefinedObject:  # idle_session_timeout before PostgreSQL 14
                    log.warning(
                        "Postgres lacks a setting the leader election uses: a hung leader is noticed by TCP "
                        "keepalives only",
                        extra={"setting": name},
                    )
            return conn

        return cls(connect, **kwargs)

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        self._listeners.append(listener)

    @property
    def is_leader(self) -> bool:
        """The state at the latest step (no round trip; `leading()` checks)."""
        return self._leader

    def start(self) -> Leadership:
        self.leading()  # a lone replica leads from its first moment
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.poll_seconds + self.timeout_seconds)
        with self._mutex:
            self._drop("stopped")

    def leading(self) -> bool:
        """One step now (campaign, or check the lock is still held): whether this replica leads."""
        with self._mutex:
            if not self._stop.is_set():
                self._step()
            return self._leader

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            with self._mutex:
                if not self._stop.is_set():
                    self._step()

    def _step(self) -> None:
        if self._conn is None or self._conn.closed:
            if time.monotonic() < self._retry_at:
                return
            try:
                self._conn = self._connect()
            except (psycopg.Error, OSError) as e:
                self._drop("cannot connect", e)
                return
        try:
            if self._leader:
                held = self._conn.execute(_HELD, (self._classid, self._objid)).fetchone()[0]
            else:
                held = self._conn.execute(_TRY, (self.key,)).fetchone()[0]
        except (psycopg.Error, OSError) as e:
            self._drop("connection lost", e)
            return
        self._set(bool(held), "lock taken" if held else "lock no longer held")

    def _drop(self, reason: str, error: BaseException | None = None) -> None:
        """Close the connection (Postgres frees the lock with the session) and stop leading."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                self._conn.close()
            self._conn = None
        self._retry_at = time.monotonic() + self.poll_seconds
        if error is not None and not self._leader:
            log.debug("leader election: %s", reason, extra={"error": str(error).strip()[:200]})
        self._set(False, reason if error is None else f"{reason}: {str(error).strip()[:200]}")

    def _set(self, leading: bool, reason: str) -> None:
        if leading == self._leader:
            return
        self._leader = leading
        log.log(
            logging.WARNING if not leading and reason != "stopped" else logging.INFO,
            "leadership gained" if leading else "leadership lost",
            extra={"lock": self.key, "reason": reason},
        )
        for listener in self._listeners:
            try:
                listener(leading)
            except Exception:
                log.exception("a leadership listener failed")
