"""The local and standalone launchers run real spark-submit jobs: to DONE (Redis holds the PROTOCOL bytes), to
ERROR with the job's reason, cancelled, killed; the standalone one against a master and worker started here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from provender.core.launchers.base import JobStatus, Launcher, create_launcher
from provender.core.launchers.spark_submit import CANCELLED_MESSAGE, ProcessHandle, find_spark_home
from provender.kernel.jobs.args import Column, IngestionJobArgs, JobSource, JobTable, to_file_url
from provender.kernel.online import layout as rl
from provender.kernel.value_types import ValueType
from provender.local.ports import free_port

from .conftest import dump_redis

MAX_AGE = 86_400  # the rows are an hour old: their keys expire tomorrow
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def _ingestion_args(tmp: Path, redis_url: str, source: Path | None = None) -> IngestionJobArgs:
    if source is None:
        source = tmp / "src.parquet"
        pd.DataFrame(
            {
                "driver_id": [1, 2, 3],
                "ts": pd.to_datetime([BASE, BASE, BASE]).astype("datetime64[us, UTC]"),
                "rate": [0.5, 1.5, 2.5],
            }
        ).to_parquet(source)
    return IngestionJobArgs(
        project="default",
        table=JobTable(
            "driver_hourly",
            (Column("driver_id", ValueType.INT64),),
            (Column("rate", ValueType.DOUBLE),),
            JobSource(to_file_url(source), "ts"),
            MAX_AGE,
        ),
        redis_url=redis_url,
        start=BASE - timedelta(days=1),
        end=BASE + timedelta(days=1),
        dead_letter_location=to_file_url(tmp / "dead"),
    )


def _expected_redis() -> dict:
    out = {}
    for driver, rate in ((1, 0.5), (2, 1.5), (3, 2.5)):
        key = rl.entity_key("default", {"driver_id": rl.encode_value(driver, ValueType.INT64)})
        ev = rl.datetime_to_ns(BASE)
        fields = rl.table_row_fields("driver_hourly", {"rate": (rate, ValueType.DOUBLE)}, ev, MAX_AGE)
        out[key] = (fields, -(-rl.expiry_ns(ev, MAX_AGE) // 1_000_000_000))
    return out


def _wait(launcher: Launcher, handle: str, timeout: float = 180) -> tuple[JobStatus, str]:
    deadline = time.monotonic() + timeout
    while True:
        state, message = launcher.status(handle)
        if state.terminal:
            return state, message
        assert time.monotonic() < deadline, (
            f"job still {state} after {timeout} s; log: {launcher.log_uri(handle)}"
        )
        time.sleep(0.5)


def _wait_running_spark(handle: str) -> None:
    """Until the job's JVM is up (its log has Spark's first lines), so that cancel meets a real Spark driver."""
    log = ProcessHandle.decode(handle, "local").log
    deadline = time.monotonic() + 60
    while "Spark" not in (log.read_text(errors="replace") if log.exists() else ""):
        assert time.monotonic() < deadline, "spark-submit wrote nothing in 60 s"
        time.sleep(0.2)


def _live_processes_in_group(pgid: int) -> list[str]:
    """Processes of the group that are not zombies (a killed JVM may wait a moment for init to reap it)."""
    out = subprocess.run(["ps", "-o", "stat=,comm=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip() and not line.strip().startswith("Z")]


def test_local_job_runs_to_done_and_survives_a_new_launcher(redis, redis_server, tmp_path) -> None:
    launcher = create_launcher("local", work_dir=tmp_path / "work", master="local[1]")
    args = _ingestion_args(tmp_path, redis_server.url)
    launched = launcher.submit("job-ok", args)
    assert launched.log_uri == launcher.log_uri(launched.handle) and launched.log_uri.startswith("file://")
    assert launcher.status(launched.handle)[0] in (JobStatus.PENDING, JobStatus.RUNNING)
    assert _wait(launcher, launched.handle) == (JobStatus.DONE, "")
    assert dump_redis(redis) == _expected_redis()

    log = Path(launched.log_uri.removeprefix("file://")).read_text()
    summary = json.loads(next(ln for ln in log.splitlines() if ln.startswith("PROVENDER_JOB_SUMMARY "))[22:])
    assert summary["rows_written"] == 3
    # A new launcher object (Core restarted) answers from the handle; the same job id is not started twice.
    again = create_launcher("local", work_dir=tmp_path / "work", master="local[1]")
    assert again.status(launched.handle) == (JobStatus.DONE, "")
    assert again.submit("job-ok", args) == launched
    assert log.count("PROVENDER_JOB_SUMMARY") == 1


def test_local_job_that_fails_says_why(redis_server, tmp_path) -> None:
    launcher = create_launcher("local", work_dir=tmp_path / "work", master="local[1]")
    args = _ingestion_args(tmp_path, redis_server.url, source=tmp_path / "missing.parquet")
    launched = launcher.submit("job-bad", args)
    state, message = _wait(launcher, launched.handle)
    assert state is JobStatus.ERROR
    assert "exited with code 2" in message
    assert "table driver_hourly.batch_source.file_url" in message and "missing.parquet" in message


def test_local_cancel_stops_the_whole_process_group(redis_server, tmp_path) -> None:
    launcher = create_launcher("local", work_dir=tmp_path / "work", master="local[1]")
    launched = launcher.submit("job-cancel", _ingestion_args(tmp_path, redis_server.url))
    _wait_running_spark(launched.handle)
    pid = ProcessHandle.decode(launched.handle, "local").pid
    launcher.cancel(launched.handle)
    assert launcher.status(launched.handle) == (JobStatus.ERROR, CANCELLED_MESSAGE)
    assert _live_processes_in_group(pid) == []  # spark-submit, the JVM and the Python driver are gone
    launcher.cancel(launched.handle)  # again: nothing left to stop, no error


def test_local_job_killed_from_outside_reports_it(redis_server, tmp_path) -> None:
    launcher = create_launcher("local", work_dir=tmp_path / "work", master="local[1]")
    launched = launcher.submit("job-killed", _ingestion_args(tmp_path, redis_server.url))
    _wait_running_spark(launched.handle)
    os.killpg(ProcessHandle.decode(launched.handle, "local").pid, signal.SIGKILL)
    state, message = _wait(launcher, launched.handle, timeout=20)
    assert state is JobStatus.ERROR
    assert "ended without an exit status" in message


# --- standalone ---------------------------------------------------------------------------------------------


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture(scope="module")
def standalone_master(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """A Spark standalone master and one worker (1 core) on 127.0.0.1, stopped at the end."""
    tmp = tmp_path_factory.mktemp("standalone")
    spark_class = str(find_spark_home() / "bin" / "spark-class")
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_HOME=str(find_spark_home()))
    port, ui = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)],
            stdout=(tmp / "master.log").open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
        ))  # fmt: skip
        procs.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
             "--cores", "1", "--memory", "2g", "--webui-port", str(free_port()), "--work-dir", str(tmp / "worker")],
            stdout=(tmp / "worker.log").open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
        ))  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                    state = json.load(r)
                if any(w.get("state") == "ALIVE" for w in state.get("workers", [])):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no worker registered in 90 s; see {tmp}"
            time.sleep(0.5)
        yield f"spark://127.0.0.1:{port}", ui
    finally:
        for proc in reversed(procs):
            _stop(proc)


def test_standalone_job_runs_to_done_on_the_cluster(standalone_master, redis, redis_server, tmp_path) -> None:
    master_url, ui = standalone_master
    launcher = create_launcher(
        "standalone",
        work_dir=tmp_path / "work",
        master_url=master_url,
        driver_host="127.0.0.1",
        executor_memory="1g",
    )
    launched = launcher.submit("job-standalone", _ingestion_args(tmp_path, redis_server.url))
    assert _wait(launcher, launched.handle) == (JobStatus.DONE, "")
    assert dump_redis(redis) == _expected_redis()
    with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as r:
        master_state = json.load(r)
    apps = [a for a in master_state["completedapps"] if a["name"] == "provender-job-standalone"]
    assert len(apps) == 1 and apps[0]["cores"] >= 1  # it ran on the cluster's worker
