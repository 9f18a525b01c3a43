"""The pure parts of Core's leader election (jobs/leader.py), of the background loop's gating and of the
schedules' run windows; tests/integration/core/test_core_leader.py runs two real Cores."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from provender.core.jobs.background import BackgroundLoop
from provender.core.jobs.leader import LEADER_LOCK, Leadership, lock_parts, session_settings
from provender.core.jobs.schedules import run_window
from provender.kernel.errors import InvalidArgument


class FakeCursor:
    def __init__(self, value: Any) -> None:
        self.value = value

    def fetchone(self) -> tuple[Any]:
        return (self.value,)


class FakeServer:
    """One advisory lock shared by fake sessions, as Postgres keeps it: freed when its session closes."""

    def __init__(self) -> None:
        self.holder: FakeConnection | None = None
        self.down = False

    def connect(self) -> FakeConnection:
        if self.down:
            raise psycopg.OperationalError("connection refused")
        return FakeConnection(self)


class FakeConnection:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.closed = False
        self.queries: list[str] = []

    def execute(self, query: str, params: Any = None) -> FakeCursor:
        if self.closed or self.server.down:
            self.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        self.queries.append(query)
        if "pg_try_advisory_lock" in query:
            assert params == (LEADER_LOCK,)
            if self.server.holder is None:
                self.server.holder = self
            return FakeCursor(self.server.holder is self)
        assert "pg_locks" in query and params == lock_parts(LEADER_LOCK)
        return FakeCursor(self.server.holder is self)

    def close(self) -> None:
        self.closed = True
        if self.server.holder is self:
            self.server.holder = None


def election(server: FakeServer, heard: list[bool] | None = None) -> Leadership:
    leadership = Leadership(server.connect, poll_seconds=0.05, timeout_seconds=1.0)
    if heard is not None:
        leadership.add_listener(heard.append)
    return leadership


def test_lock_parts_are_how_pg_locks_shows_a_bigint_key():
    assert lock_parts(LEADER_LOCK) == (0, LEADER_LOCK)
    assert lock_parts((7 << 32) + 5) == (7, 5)
    assert lock_parts(-1) == (0xFFFFFFFF, 0xFFFFFFFF)


def test_one_of_two_leads_and_the_other_takes_over_when_it_goes():
    server, heard_a, heard_b = FakeServer(), [], []
    a, b = election(server, heard_a), election(server, heard_b)
    assert a.leading() and not b.leading()
    assert heard_a == [True] and heard_b == []
    a.stop()
    assert heard_a == [True, False] and not a.leading()
    assert b.leading() and heard_b == [True]


def test_a_leader_that_loses_its_connection_stops_leading_at_its_next_check():
    server, heard = FakeServer(), []
    a = election(server, heard)
    assert a.leading()
    server.down = True
    assert not a.leading() and heard == [True, False]
    assert not a.is_leader
    server.down = False
    a._retry_at = 0  # past the pause before reconnecting
    assert a.leading() and heard == [True, False, True]


def test_a_leader_whose_lock_is_gone_stops_leading_even_if_its_connection_answers():
    server = FakeServer()
    a = election(server)
    assert a.leading()
    server.holder = None  # pg_terminate_backend of another session, an operator's pg_advisory_unlock_all
    assert not a.leading()


def test_a_leader_only_checks_its_lock_it_does_not_take_it_again():
    server = FakeServer()
    a = election(server)
    a.leading(), a.leading(), a.leading()
    conn = server.holder
    assert conn is not None
    assert [("pg_try" in q) for q in conn.queries] == [True, False, False]


def test_the_background_thread_campaigns_on_its_own():
    server = FakeServer()
    a, b = election(server).start(), election(server).start()
    try:
        assert a.is_leader and not b.is_leader
        gained = threading.Event()
        b.add_listener(lambda leading: leading and gained.set())
        a.stop()
        assert gained.wait(2)
        assert b.is_leader
    finally:
        a.stop()
        b.stop()
    assert server.holder is None


def test_a_failing_listener_does_not_stop_the_election():
    server = FakeServer()
    a = election(server)

    def broken(leading: bool) -> None:
        raise RuntimeError("boom")

    a.add_listener(broken)
    assert a.leading()


def test_timeouts_are_checked():
    with pytest.raises(InvalidArgument, match="leader_timeout_seconds"):
        Leadership(FakeServer().connect, poll_seconds=1.0, timeout_seconds=2.0)
    with pytest.raises(InvalidArgument):
        Leadership(FakeServer().connect, poll_seconds=0)


def test_the_session_is_ended_by_postgres_after_the_timeout_of_silence():
    settings = session_settings(10.0)
    assert settings["idle_session_timeout"] == "10000ms"
    assert settings["statement_timeout"] == "5000ms"  # a check never outlasts half the timeout
    idle, interval, count = (
        int(settings[k]) for k in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
    )
    assert idle + interval * count <= 10


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def reconcile_all(self) -> None:
        self.calls.append("reconcile")

    def run_due(self, leading: Any = None) -> list[str]:
        self.calls.append("schedules")
        assert leading is not None and leading()
        return []

    def tick(self) -> None:
        self.calls.append("streams")


def test_the_background_loop_ticks_only_while_leading():
    work = Recorder()
    answers = iter([True, True, True])
    loop = BackgroundLoop(work, work, streams=work, leading=lambda: next(answers, True))  # type: ignore[arg-type]
    assert loop.tick() and work.calls == ["reconcile", "schedules", "streams"]

    work.calls.clear()
    loop.leading = lambda: False
    assert not loop.tick() and work.calls == []

    # Lost between reconcile and the schedules: nothing more this tick.
    work.calls.clear()
    answers = iter([True, False])
    loop.leading = lambda: next(answers, False)
    assert not loop.tick() and work.calls == ["reconcile"]


def test_the_background_loop_wakes_when_told():
    work = Recorder()
    leads = threading.Event()
    loop = BackgroundLoop(work, work, interval=60, leading=leads.is_set)  # type: ignore[arg-type]
    loop.start()
    try:
        leads.set()
        loop.wake()
        for _ in range(100):
            if work.calls:
                break
            threading.Event().wait(0.02)
        assert work.calls[:2] == ["reconcile", "schedules"]
    finally:
        loop.stop()


def test_a_run_ingests_the_days_before_it_was_due():
    due = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert run_window(due, 2) == (due - timedelta(days=2), due)
