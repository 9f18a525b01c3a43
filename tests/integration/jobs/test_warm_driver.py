"""The local launcher's warm driver: jobs run one after another in one long-lived Spark driver (no start-up per
job), each with its own log and outcome; a new launcher adopts it; cancel stops a job, not the driver; a driver
killed from outside fails its jobs with a reason and the next job starts a new one; an idle driver exits."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from provender.core.launchers.base import JobStatus, create_launcher
from provender.core.launchers.local import LocalLauncher
from provender.core.launchers.spark_submit import CANCELLED_MESSAGE, ProcessHandle
from provender.kernel.jobs.folder import WARM_DRIVER_FOLDER as WARM_FOLDER

from .conftest import dump_redis
from .test_launchers import BASE, _expected_redis, _ingestion_args, _wait


def _launcher(work: Path, idle: float = 120) -> LocalLauncher:
    launcher = create_launcher("local", work_dir=work, master="local[2]", warm=True, warm_idle_seconds=idle)
    assert isinstance(launcher, LocalLauncher)
    return launcher


def _driver_pid(handle: str) -> int:
    return ProcessHandle.decode(handle, "local").pid


@pytest.fixture
def work(tmp_path) -> Iterator[Path]:
    yield tmp_path / "work"
    _launcher(tmp_path / "work").stop_warm_driver()


def _log(handle: str) -> str:
    return ProcessHandle.decode(handle, "local").log.read_text()


def test_jobs_share_one_driver_and_keep_their_own_logs_and_outcomes(
    redis, redis_server, tmp_path, work
) -> None:
    launcher = _launcher(work)
    good = launcher.submit("warm-ok", _ingestion_args(tmp_path, redis_server.url))
    assert _wait(launcher, good.handle) == (JobStatus.DONE, "")
    assert dump_redis(redis) == _expected_redis()

    bad = launcher.submit(
        "warm-bad", _ingestion_args(tmp_path, redis_server.url, tmp_path / "missing.parquet")
    )
    state, message = _wait(launcher, bad.handle, timeout=60)
    assert state is JobStatus.ERROR and "exited with code 2" in message and "missing.parquet" in message
    assert _driver_pid(bad.handle) == _driver_pid(good.handle)  # the same driver ran both

    good_log, bad_log = _log(good.handle), _log(bad.handle)
    assert "running in the warm driver" in good_log and good_log.count("PROVENDER_JOB_SUMMARY") == 1
    assert "PROVENDER_JOB_SUMMARY" not in bad_log and "missing.parquet" in bad_log

    # Core restarted: a new launcher answers from the handles, adopts the driver, runs the next job in it
    again = _launcher(work)
    assert again.status(good.handle) == (JobStatus.DONE, "")
    assert again.submit("warm-ok", _ingestion_args(tmp_path, redis_server.url)) == good
    third = again.submit("warm-third", _ingestion_args(tmp_path, redis_server.url))
    assert _wait(again, third.handle, timeout=60) == (JobStatus.DONE, "")
    assert _driver_pid(third.handle) == _driver_pid(good.handle)
    assert int((work / WARM_FOLDER / "owner").read_text()) == os.getpid()


ROWS = 1_000_000  # a job long enough to be stopped half-way


@pytest.fixture(scope="module")
def big_source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("warm") / "big.parquet"
    pd.DataFrame(
        {
            "driver_id": np.arange(ROWS, dtype=np.int64),
            "ts": pd.Series([BASE] * ROWS).astype("datetime64[us, UTC]"),
            "rate": np.linspace(0, 1, ROWS),
        }
    ).to_parquet(path)
    return path


def _wait_started(handle: str) -> None:
    deadline = time.monotonic() + 90
    while "running in the warm driver" not in _log(handle):
        assert time.monotonic() < deadline, "the driver did not start the job"
        time.sleep(0.1)
    time.sleep(1.0)


def test_cancel_stops_the_job_and_leaves_the_driver(redis, redis_server, tmp_path, work, big_source) -> None:
    launcher = _launcher(work)
    long = launcher.submit("warm-long", _ingestion_args(tmp_path, redis_server.url, big_source))
    _wait_started(long.handle)
    launcher.cancel(long.handle)
    assert launcher.status(long.handle) == (JobStatus.ERROR, CANCELLED_MESSAGE)
    assert (ProcessHandle.decode(long.handle, "local").folder / "exit_code").exists()  # the job has ended
    assert redis.dbsize() < ROWS

    redis.flushall()
    after = launcher.submit("warm-after", _ingestion_args(tmp_path, redis_server.url))
    assert _wait(launcher, after.handle, timeout=60) == (JobStatus.DONE, "")
    assert _driver_pid(after.handle) == _driver_pid(long.handle)  # the driver stayed
    assert dump_redis(redis) == _expected_redis()


def test_a_killed_driver_fails_its_job_and_the_next_job_starts_a_new_one(
    redis, redis_server, tmp_path, work, big_source
) -> None:
    launcher = _launcher(work)
    long = launcher.submit("warm-killed", _ingestion_args(tmp_path, redis_server.url, big_source))
    _wait_started(long.handle)
    os.killpg(_driver_pid(long.handle), signal.SIGKILL)
    state, message = _wait(launcher, long.handle, timeout=20)
    assert state is JobStatus.ERROR and "ended without an exit status" in message

    redis.flushall()
    second = launcher.submit("warm-second", _ingestion_args(tmp_path, redis_server.url))
    assert _driver_pid(second.handle) != _driver_pid(long.handle)
    assert _wait(launcher, second.handle) == (JobStatus.DONE, "")
    assert dump_redis(redis) == _expected_redis()


def test_an_idle_driver_exits(redis_server, tmp_path, work) -> None:
    launcher = _launcher(work, idle=1)
    job = launcher.submit("warm-idle", _ingestion_args(tmp_path, redis_server.url))
    assert _wait(launcher, job.handle) == (JobStatus.DONE, "")
    deadline = time.monotonic() + 30
    while (work / WARM_FOLDER / "exit_code").exists() is False:
        assert time.monotonic() < deadline, "the idle driver did not exit"
        time.sleep(0.2)
    assert launcher.status(job.handle) == (JobStatus.DONE, "")  # its jobs still answer
