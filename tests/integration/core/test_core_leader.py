"""Core replicas and their leader, on a real Postgres: two `provender core` processes share one database; the
leader is killed (SIGKILL) in the middle of a scheduled run; the other takes over within seconds, finds the run's
job instead of starting a second one, and goes on running the schedule. Also the election itself (jobs/leader.py)
against Postgres: a hung leader loses its lock after its timeout."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

import grpc
import pytest
from sqlalchemy import create_engine, text

from provender.core.jobs.leader import Leadership
from provender.core.registry.database import normalise_url
from provender.local.ports import free_port
from provender.proto.feast.core import CoreService_pb2 as core_pb
from provender.proto.feast.core import CoreService_pb2_grpc
from provender.proto.feast_spark.api import JobService_pb2 as pb
from provender.proto.feast_spark.api import JobService_pb2_grpc
from tests import factories as f
from tests.e2e.test_core_process import wait_serving

EVERY_2S = "* * * * * */2"  # croniter's sixth field: seconds
SUBMIT_SECONDS = 1.5  # how long the recording launcher's submit takes: the window the leader is killed in

# `provender core` with one more launcher, "recording": it starts nothing, it writes one file per job id it is
# asked to start (O_EXCL: a second submit of the same id is no second run, as the real launchers promise), takes
# SUBMIT_SECONDS to submit, and reports every job DONE at once.
BOOT = """
import json, os, sys, time
from pathlib import Path
from provender.core.launchers.base import Launched, Launcher, register_launcher
from provender.core.launchers.settings import LauncherSettings
from provender.kernel.jobs.status import JobStatus

DIR = Path(os.environ["TEST_LAUNCH_DIR"])

@register_launcher
class Recording(Launcher):
    name = "recording"
    Settings = LauncherSettings

    def __init__(self, settings):
        self.settings = settings

    def submit(self, job_id, args):
        with open(DIR / "submits.log", "a") as log:
            log.write(json.dumps({"job": job_id, "pid": os.getpid()}) + "\\n")
        try:
            fd = os.open(DIR / f"{job_id}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return Launched(job_id, "")
        run = {"job": job_id, "pid": os.getpid(), "end": args.end.isoformat(), "at": time.time()}
        os.write(fd, json.dumps(run).encode())
        os.close(fd)
        time.sleep(float(os.environ["TEST_SUBMIT_SECONDS"]))
        return Launched(job_id, "")

    def status(self, handle):
        return JobStatus.DONE, ""

    def cancel(self, handle):
        pass

    def log_uri(self, handle):
        return ""

from provender.core.main import main
sys.exit(main(sys.argv[1:]))
"""


class CoreProcess:
    def __init__(self, database_url: str, launches: Path) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        # stderr to a file: a pipe nobody reads would fill and block the process
        self.log_path = launches.parent / f"core-{self.port}.log"
        self.log_file = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-c", BOOT, "--port", str(self.port), "--host", "127.0.0.1"),
                *("--metrics-port", str(self.metrics_port), "--spark-launcher", "recording"),
                *("--redis-url", "redis://127.0.0.1:1", "--no-stream-control"),
                *("--schedule-min-interval-seconds", "1", "--reconcile-seconds", "0.3"),
                *("--leader-timeout-seconds", "5", "--staging-location", launches.parent.as_uri()),
            ],
            env={
                **os.environ,
                "PROVENDER_POSTGRES_URL": database_url,
                "TEST_LAUNCH_DIR": str(launches),
                "TEST_SUBMIT_SECONDS": str(SUBMIT_SECONDS),
            },
            stdout=subprocess.DEVNULL,
            stderr=self.log_file,
            text=True,
        )
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def leader_gauge(self) -> float | None:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read()
        except OSError:
            return None
        found = re.search(r"^provender_core_leader ([0-9.]+)$", body.decode(), re.M)
        return float(found.group(1)) if found else None

    def logs(self) -> list[dict]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log_file.close()


def wait_until(what: str, check, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(every)


def runs(launches: Path) -> list[dict]:
    out = []
    for path in launches.glob("*.json"):
        try:
            out.append(json.loads(path.read_text()))
        except ValueError:  # being written
            continue
    return sorted(out, key=lambda r: r["at"])


@pytest.fixture
def two_cores(database_url, tmp_path):
    launches = tmp_path / "launches"
    launches.mkdir()
    first = CoreProcess(database_url, launches)
    cores = [first]
    try:
        wait_serving(first.channel, timeout=60)
        cores.append(CoreProcess(database_url, launches))  # started second: the first leads
        wait_serving(cores[1].channel, timeout=60)
        yield cores[0], cores[1], launches
    finally:
        for core in cores:
            core.close()


def test_killing_the_leader_mid_schedule_neither_repeats_nor_loses_a_run(two_cores, database_url):
    leader, follower, launches = two_cores
    assert wait_until("gauges", lambda: (leader.leader_gauge(), follower.leader_gauge()) == (1.0, 0.0), 10)

    # Every replica serves RPCs: the follower applies the table, the leader takes the schedule.
    core = CoreService_pb2_grpc.CoreServiceStub(follower.channel)
    core.ApplyEntity(core_pb.ApplyEntityRequest(spec=f.entity()))
    core.ApplyFeatureTable(core_pb.ApplyFeatureTableRequest(table_spec=f.table()))
    JobService_pb2_grpc.JobServiceStub(leader.channel).ScheduleOfflineToOnlineIngestionJob(
        pb.ScheduleOfflineToOnlineIngestionJobRequest(
            table_name="driver_hourly", ingestion_timespan=1, cron_schedule=EVERY_2S
        )
    )

    # Two runs by the leader, then kill it during the third's submission (its job record is made, the
    # schedule not yet moved on).
    def third_run_in_flight():
        done = [r for r in runs(launches) if r["pid"] == leader.proc.pid]
        return done[2] if len(done) >= 3 else None

    killed_run = wait_until("three runs by the leader", third_run_in_flight, 30, every=0.02)
    leader.proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    leader.proc.wait(10)

    wait_until("the follower leads", lambda: follower.leader_gauge() == 1.0, 10, every=0.05)
    takeover = time.monotonic() - killed_at

    def three_runs_by_the_new_leader():
        return len([r for r in runs(launches) if r["pid"] == follower.proc.pid]) >= 3

    wait_until("runs by the new leader", three_runs_by_the_new_leader, 20)
    JobService_pb2_grpc.JobServiceStub(follower.channel).UnscheduleOfflineToOnlineIngestionJob(
        pb.UnscheduleOfflineToOnlineIngestionJobRequest(table_name="driver_hourly")
    )
    time.sleep(1)  # a run already past its row lock finishes
    follower.proc.send_signal(signal.SIGTERM)
    assert follower.proc.wait(20) == 0

    engine = create_engine(normalise_url(database_url))
    with engine.connect() as conn:
        jobs = conn.execute(
            text("SELECT id, args->>'end', created_at FROM jobs WHERE table_name = 'driver_hourly'")
        ).all()
    engine.dispose()
    ends = Counter(end for _, end, _ in jobs)
    assert all(n == 1 for n in ends.values()), f"a run started twice: {ends}"

    # Every job ran once (one launch file per job id, a launch per job) and every launch has its job record.
    launched = runs(launches)
    assert sorted(r["job"] for r in launched) == sorted(job_id for job_id, _, _ in jobs)
    killed = [job_id for job_id, end, _ in jobs if job_id == killed_run["job"]]
    assert killed == [killed_run["job"]], "the run in flight when the leader died was lost"

    # Runs follow the schedule: 2 s apart except around the takeover (missed runs are not made up for).
    times = sorted(datetime.fromisoformat(r["end"]) for r in launched)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(gap > 0 and gap % 2 == 0 for gap in gaps), gaps
    assert sum(1 for gap in gaps if gap > 2) <= 1, gaps

    messages = [(e["msg"], e.get("job_id")) for e in follower.logs()]
    assert ("leadership gained", None) in messages
    assert ("scheduled run found started", killed_run["job"]) in messages
    print(f"takeover after SIGKILL: {takeover:.2f} s; runs: {len(launched)}")
    assert takeover < 5


def test_a_hung_leader_loses_the_lock_after_its_timeout(database_url):
    """A leader whose process stops (here: its election cannot take a step) while its connection stays open:
    Postgres ends its silent session after the timeout, and the other replica takes over."""
    url = create_engine(normalise_url(database_url)).url
    a = Leadership.for_database(url, poll_seconds=0.2, timeout_seconds=1.0).start()
    b = Leadership.for_database(url, poll_seconds=0.2, timeout_seconds=1.0).start()
    try:
        assert a.is_leader and not b.is_leader
        with a._mutex:  # a hangs
            hung_at = time.monotonic()
            wait_until("b leads", lambda: b.is_leader, 5)
            takeover = time.monotonic() - hung_at
        assert 0.9 < takeover < 2.5, takeover
        assert not a.leading()  # back from its hang, it finds its session gone
        assert b.leading()
    finally:
        a.stop()
        b.stop()
    print(f"takeover from a hung leader: {takeover:.2f} s")
