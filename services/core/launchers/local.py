"""The local launcher: Spark in local mode on Core's machine, each job's log file as its log_uri.

Two ways to run a job, the same application code:
- cold: one `spark-submit --master local[*]` per job (a JVM and a Spark start-up each time);
- warm (`warm=True`): a long-lived driver (provender.jobs.warm_driver) started with spark-submit on the first job
  and reused by the next ones, so a job starts in milliseconds instead of seconds. It lives in
  `<work_dir>/.warm-driver/`; jobs are handed over as files there, and each job keeps its own folder, log and
  exit_code exactly as a cold job does, so status, log_uri and a new launcher after a Core restart work alike.
  Cancel cancels the job's Spark jobs in the driver rather than killing a process. The driver exits when idle for
  `warm_idle_seconds` or when no job runs and the Core that owns it is gone; the next job starts a new one.

A job's record never disagrees with what it did when a warm driver dies (docs/operations.md):
- a request in the inbox is addressed to one driver (its `driver` id, also in the driver's handle); only that
  driver takes it, by renaming it, and status's `pid` is that driver's;
- while that driver lives the job is PENDING (still in the inbox) or RUNNING (taken); once it is gone without the
  job's exit status, the launcher withdraws the request by removing it: when the removal succeeds the job never
  started and never will (its folder gets the reason and exit status 1, so every later answer is the same ERROR);
  when it fails, the driver had taken the job and died with it: ERROR, and no exit status can appear later;
- requests are handed over, and a driver decides to exit, under the folder's lock: a driver exits only with no
  request of its own waiting and removes its handle first, so the next job starts a new driver instead of waiting
  in the inbox of one that is leaving; a driver whose Python process died (its `ready` pid gone) while its JVM
  shuts down is not given jobs either.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provender.core.launchers.base import JobStatus, register_launcher
from provender.core.launchers.settings import LocalSettings
from provender.core.launchers.spark_submit import ProcessHandle, SparkSubmitLauncher, _start_ticks
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import JobArgs, StreamIngestionJobArgs, warm_driver_path
from provender.kernel.jobs.folder import WARM_DRIVER_FOLDER, JobFolder, WarmDriverFolder, write_atomic

log = logging.getLogger(__name__)

# How the reason of a job withdrawn from a dead driver's inbox begins (the job never ran).
NEVER_STARTED = "never started: "


@dataclass(frozen=True)
class WarmDriverProcess:
    """A warm driver as its handle records it: the wrapper's pid and start ticks, and the id its requests carry."""

    pid: int
    start_ticks: int
    driver_id: str  # "" for a driver started before requests were addressed (it takes any request)


@register_launcher
class LocalLauncher(SparkSubmitLauncher):
    name = "local"

    Settings = LocalSettings
    settings: LocalSettings

    def __init__(self, settings: LocalSettings) -> None:
        super().__init__(settings)
        self.master = settings.master
        self.warm = settings.warm
        self.warm_idle_seconds = settings.warm_idle_seconds
        self.warm_folder = self.work_dir / WARM_DRIVER_FOLDER
        self.driver_files = WarmDriverFolder(self.warm_folder)
        if self.warm:
            self._adopt()

    def master_args(self) -> list[str]:
        return ["--master", self.master]

    def default_conf(self) -> dict[str, str]:
        return super().default_conf() | {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            # Spark's 200 shuffle partitions are made for clusters: on one machine, a few per core
            "spark.sql.shuffle.partitions": str(4 * (os.cpu_count() or 2)),
        }

    # --- the warm driver ---

    def start_job(self, job_id: str, folder: Path, args_file: Path, args: JobArgs) -> ProcessHandle:
        if not self.warm or isinstance(
            args, StreamIngestionJobArgs
        ):  # a stream runs for days: its own driver
            return super().start_job(job_id, folder, args_file, args)
        with JobFolder(folder).log.open("a") as out:
            out.write(f"queued for the warm Spark driver in {self.warm_folder}\n")
        request = {"job_id": job_id, "job_dir": str(folder), "args_file": str(args_file)}
        driver = self._hand_over(job_id, request)
        return ProcessHandle(self.name, job_id, str(folder), driver.pid, driver.start_ticks, warm=True)

    def status(self, handle: str) -> tuple[JobStatus, str]:
        h = ProcessHandle.decode(handle, self.name)
        if not h.warm:
            return super().status(handle)
        job = JobFolder(h.folder)
        if not job.exit_code.exists():
            if not self._driver_alive(h):
                self._withdraw_unless_taken(h)
            elif not job.cancelled.exists():
                return (JobStatus.PENDING if self._request(h).exists() else JobStatus.RUNNING), ""
        withdrawn = "" if job.cancelled.exists() else self._withdrawn_reason(h)
        if withdrawn:
            return JobStatus.ERROR, withdrawn
        return super().status(handle)

    def cancel(self, handle: str) -> None:
        h = ProcessHandle.decode(handle, self.name)
        if h.warm and not JobFolder(h.folder).exit_code.exists() and not self._driver_alive(h):
            self._withdraw_unless_taken(h)  # in a dead driver's inbox: it must never start later
        super().cancel(handle)

    def stop_warm_driver(self, grace_seconds: float = 10.0) -> None:
        """Stop the warm driver now (its running jobs fail; the next job starts a new driver)."""
        running = self._recorded_driver()
        if running is None:
            return
        pid = running.pid
        self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            self._reap(pid)
            if not self._group_alive(pid):
                return
            time.sleep(0.1)
        self._signal(pid, signal.SIGKILL)
        self._reap(pid)

    def driver_failure(self, h: ProcessHandle) -> str:
        if not h.warm:
            return ""
        return job_report.failure_reason(self.driver_files.log)

    # --- handing jobs over, and withdrawing them ---

    def _hand_over(self, job_id: str, request: dict[str, str]) -> WarmDriverProcess:
        """Put the request in the running warm driver's inbox, addressed to it, starting a driver when there is
        none; under the folder's lock, so that concurrent submits start one driver and a driver never decides to
        exit between being chosen and being given the job."""
        inbox = self.driver_files.inbox
        inbox.mkdir(parents=True, exist_ok=True)
        with self._locked():
            driver = self._running_driver() or self._start_driver()
            self._own()
            tmp = inbox / f".{job_id}.tmp"  # not a request until renamed (the driver takes *.json only)
            tmp.write_text(json.dumps(request | {"driver": driver.driver_id}))
            tmp.replace(inbox / f"{job_id}.json")
        log.info(
            "job handed to the warm driver",
            extra={"job_id": job_id, "pid": driver.pid, "driver": driver.driver_id},
        )
        return driver

    def _driver_alive(self, h: ProcessHandle) -> bool:
        """Whether the warm driver the job was handed to may still take or finish it: any process of its group
        (spark-submit's wrapper, the JVM, the Python driver) lives."""
        self._reap(h.pid)
        return self._alive(h) or self._group_alive(h.pid)

    def _request(self, h: ProcessHandle) -> Path:
        return self.driver_files.inbox / f"{h.job_id}.json"

    def _withdraw_unless_taken(self, h: ProcessHandle) -> None:
        """The job's driver is gone without the job's exit status: remove its request from the inbox. Removed: the
        job never started, and no driver can take it any more; its folder says so (reason, exit status 1).
        Already gone: the driver took it (renaming is how it takes a request) and died running it."""
        job = JobFolder(h.folder)
        with self._locked():  # one withdrawal at a time: a concurrent status sees the exit status written
            if job.exit_code.exists():
                return
            try:
                self._request(h).unlink()
            except FileNotFoundError:
                return
            reason = (
                f"{NEVER_STARTED}the warm Spark driver {h.pid} ended before it took the job, which was withdrawn "
                "from its inbox; submit it again"
            )
            with job.log.open("a") as out:
                print(job_report.ERROR_PREFIX + reason, file=out)
            write_atomic(job.exit_code, "1\n")
        log.warning("job withdrawn from a dead warm driver's inbox", extra={"job_id": h.job_id, "pid": h.pid})

    def _withdrawn_reason(self, h: ProcessHandle) -> str:
        """The reason of a job withdrawn before it started ("" for any other job)."""
        try:
            if JobFolder(h.folder).exit_code.read_text().strip() != "1":
                return ""
        except OSError:
            return ""
        reason = job_report.failure_reason(h.log)
        return reason if reason.startswith(NEVER_STARTED) else ""

    # --- the driver process ---

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.warm_folder.mkdir(parents=True, exist_ok=True)
        with self.driver_files.lock.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _recorded_driver(self) -> WarmDriverProcess | None:
        """The driver the handle names, while its process lives."""
        try:
            data = json.loads(self.driver_files.handle.read_text())
            driver = WarmDriverProcess(
                int(data["pid"]), int(data["start_ticks"]), str(data.get("driver_id", ""))
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return driver if _start_ticks(driver.pid) == driver.start_ticks else None

    def _running_driver(self) -> WarmDriverProcess | None:
        """The driver that takes jobs: the recorded one, unless its Python process has died (its JVM may take
        seconds to follow; a job handed to it then would only be withdrawn)."""
        driver = self._recorded_driver()
        if driver is None:
            return None
        try:
            python = int(self.driver_files.ready.read_text().strip())
        except (OSError, ValueError):
            return driver  # still starting
        return driver if _start_ticks(python) is not None else None

    def _start_driver(self) -> WarmDriverProcess:
        for stale in (self.driver_files.exit_code, self.driver_files.ready):
            stale.unlink(missing_ok=True)
        driver_id = secrets.token_hex(8)
        command = self.submit_command(
            "provender-warm-driver",
            {},
            [
                str(warm_driver_path()),
                str(self.warm_folder),
                "--idle-seconds",
                str(self.warm_idle_seconds),
                "--driver-id",
                driver_id,
            ],
        )
        self.driver_files.command.write_text(json.dumps(command))
        proc = self.start_process(command, self.warm_folder, self.driver_files.log)
        driver = WarmDriverProcess(proc.pid, _start_ticks(proc.pid) or 0, driver_id)
        write_atomic(
            self.driver_files.handle,
            json.dumps({"pid": driver.pid, "start_ticks": driver.start_ticks, "driver_id": driver_id}),
        )
        log.info("warm driver started", extra={"pid": driver.pid, "driver": driver_id})
        return driver

    def _own(self) -> None:
        """Record this process as the driver's owner: the driver outlives it only while jobs run."""
        write_atomic(self.driver_files.owner, str(os.getpid()))

    def _adopt(self) -> None:
        """A driver left running by an earlier Core: this process owns it now."""
        if self.warm_folder.is_dir() and self._running_driver() is not None:
            self._own()
