"""The warm driver's hand-over protocol, decided on files and process ids alone (no Spark): what the local launcher
says about a job handed to a warm driver that lives or died, before or after taking it, and which requests a driver
takes and when it may leave. The same protocol with real Spark drivers killed: tests/reliability/
test_warm_driver_death.py."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provender.core.launchers.base import JobStatus
from provender.core.launchers.local import NEVER_STARTED, LocalLauncher
from provender.core.launchers.settings import LocalSettings
from provender.core.launchers.spark_submit import ProcessHandle, _start_ticks
from provender.jobs.warm_driver import WarmDriver
from provender.kernel.jobs.folder import WARM_DRIVER_FOLDER, JobFolder, WarmDriverFolder


@pytest.fixture
def launcher(tmp_path: Path) -> LocalLauncher:
    return LocalLauncher(LocalSettings(work_dir=tmp_path, warm=True))


@pytest.fixture
def driver() -> Iterator[subprocess.Popen[bytes]]:
    """A process standing in for a warm driver (a group of its own, as spark-submit's wrapper leads one)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _queue(launcher: LocalLauncher, proc: subprocess.Popen[bytes], job_id: str = "job-1") -> str:
    """A job handed to `proc` as start_job hands it over: its folder, its request in the inbox, its handle."""
    folder = launcher.work_dir / job_id
    folder.mkdir(parents=True)
    JobFolder(folder).log.write_text("queued for the warm Spark driver\n")
    inbox = WarmDriverFolder(launcher.work_dir / WARM_DRIVER_FOLDER).inbox
    inbox.mkdir(parents=True, exist_ok=True)
    request = {"job_id": job_id, "job_dir": str(folder), "args_file": "args.json", "driver": "d1"}
    (inbox / f"{job_id}.json").write_text(json.dumps(request))
    return ProcessHandle(
        "local", job_id, str(folder), proc.pid, _start_ticks(proc.pid) or 0, warm=True
    ).encode()


def _take(launcher: LocalLauncher, job_id: str = "job-1") -> None:
    """What the driver does to take a request: rename it."""
    inbox = WarmDriverFolder(launcher.work_dir / WARM_DRIVER_FOLDER).inbox
    (inbox / f"{job_id}.json").rename(inbox / f"{job_id}.taken")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def test_a_job_in_a_live_drivers_inbox_is_pending_and_running_once_taken(launcher, driver) -> None:
    handle = _queue(launcher, driver)
    assert launcher.status(handle) == (JobStatus.PENDING, "")
    _take(launcher)
    assert launcher.status(handle) == (JobStatus.RUNNING, "")


def test_a_job_left_in_a_dead_drivers_inbox_is_withdrawn_then_failed(launcher, driver, tmp_path) -> None:
    handle = _queue(launcher, driver)
    _kill(driver)
    state, message = launcher.status(handle)
    assert state is JobStatus.ERROR and message.startswith(NEVER_STARTED), message
    assert not (tmp_path / WARM_DRIVER_FOLDER / "inbox" / "job-1.json").exists()  # no driver can take it now
    assert JobFolder(tmp_path / "job-1").exit_code.read_text() == "1\n"
    # every later answer, from a new launcher too (Core restarted), is the same
    assert LocalLauncher(LocalSettings(work_dir=tmp_path, warm=True)).status(handle) == (state, message)


def test_a_job_a_dead_driver_had_taken_failed_with_it(launcher, driver, tmp_path) -> None:
    handle = _queue(launcher, driver)
    _take(launcher)
    _kill(driver)
    state, message = launcher.status(handle)
    assert state is JobStatus.ERROR and "ended without an exit status" in message
    assert not JobFolder(tmp_path / "job-1").exit_code.exists()  # nothing pretends the job ended otherwise


def test_an_exit_status_written_before_the_driver_died_is_what_counts(launcher, driver, tmp_path) -> None:
    handle = _queue(launcher, driver)
    _take(launcher)
    (tmp_path / "job-1" / "exit_code").write_text("0\n")
    _kill(driver)
    assert launcher.status(handle) == (JobStatus.DONE, "")


def test_cancel_withdraws_a_job_from_a_dead_drivers_inbox(launcher, driver, tmp_path) -> None:
    handle = _queue(launcher, driver)
    _kill(driver)
    launcher.cancel(handle)
    assert not (tmp_path / WARM_DRIVER_FOLDER / "inbox" / "job-1.json").exists()
    assert launcher.status(handle)[0] is JobStatus.ERROR


def _record_driver(launcher: LocalLauncher, proc: subprocess.Popen[bytes], python_pid: int | None) -> None:
    files = WarmDriverFolder(launcher.work_dir / WARM_DRIVER_FOLDER)
    files.path.mkdir(parents=True, exist_ok=True)
    ticks = _start_ticks(proc.pid)
    files.handle.write_text(json.dumps({"pid": proc.pid, "start_ticks": ticks, "driver_id": "d1"}))
    if python_pid is not None:
        files.ready.write_text(str(python_pid))


def test_a_driver_whose_python_process_died_is_given_no_jobs(launcher, driver) -> None:
    _record_driver(launcher, driver, None)  # starting: no Python pid yet
    assert launcher._running_driver() is not None
    _record_driver(launcher, driver, driver.pid)
    assert launcher._running_driver() is not None
    python = subprocess.Popen(["true"])
    python.wait()
    _record_driver(launcher, driver, python.pid)  # its Python process is gone, its JVM not yet
    assert launcher._running_driver() is None
    assert launcher._recorded_driver() is not None  # (stop_warm_driver still finds it)


def _warm_driver(tmp_path: Path, driver_id: str) -> WarmDriver:
    folder = tmp_path / WARM_DRIVER_FOLDER
    WarmDriverFolder(folder).inbox.mkdir(parents=True, exist_ok=True)
    return WarmDriver(None, folder, idle_seconds=60, driver_id=driver_id)  # type: ignore[arg-type]


def _request(tmp_path: Path, job_id: str, driver_id: str) -> None:
    request = {"job_id": job_id, "job_dir": str(tmp_path / job_id), "args_file": "a", "driver": driver_id}
    (tmp_path / WARM_DRIVER_FOLDER / "inbox" / f"{job_id}.json").write_text(json.dumps(request))


def test_a_driver_takes_only_the_requests_addressed_to_it(tmp_path) -> None:
    mine = _warm_driver(tmp_path, "d2")
    _request(tmp_path, "for-a-dead-driver", "d1")
    _request(tmp_path, "for-me", "d2")
    assert [r["job_id"] for _, r in mine._requests()] == ["for-me"]
    anonymous = _warm_driver(tmp_path, "")  # started without an id: takes any
    assert len(anonymous._requests()) == 2


def test_a_driver_leaves_only_with_no_request_of_its_own_waiting(tmp_path) -> None:
    driver = _warm_driver(tmp_path, "d2")
    files = WarmDriverFolder(tmp_path / WARM_DRIVER_FOLDER)
    files.handle.write_text(json.dumps({"pid": 1, "start_ticks": 1, "driver_id": "d2"}))
    _request(tmp_path, "for-me", "d2")
    assert (
        driver._leave() is False and files.handle.exists()
    )  # handed over while it decided to exit: it stays
    (files.inbox / "for-me.json").unlink()
    _request(tmp_path, "for-another", "d1")
    assert driver._leave() is True and not files.handle.exists()  # the launcher starts a new driver next


def test_a_leaving_driver_keeps_the_handle_of_its_successor(tmp_path) -> None:
    driver = _warm_driver(tmp_path, "d2")
    files = WarmDriverFolder(tmp_path / WARM_DRIVER_FOLDER)
    files.handle.write_text(json.dumps({"pid": 1, "start_ticks": 1, "driver_id": "d3"}))
    assert driver._leave() is True and files.handle.exists()
