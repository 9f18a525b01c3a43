"""The local launcher: Spark in local mode on Core's machine, each job's log file as its log_uri.

Two ways to run a job, the same application code:
- cold: one `spark-submit --master local[*]` per job (a JVM and a Spark start-up each time);
- warm (`warm=True`): a long-lived driver (provender.jobs.warm_driver) started with spark-submit on the first job
  and reused by the next ones, so a job starts in milliseconds instead of seconds. It lives in
  `<work_dir>/.warm-driver/`; jobs are handed over as files there, and each job keeps its own folder, log and
  exit_code exactly as a cold job does, so status, log_uri and a new launcher after a Core restart work alike.
  Cancel cancels the job's Spark jobs in the driver rather than killing a process. The driver exits when idle for
  `warm_idle_seconds` or when no job runs and the Core that owns it is gone; the next job starts a new one.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from pathlib import Path

from provender.core.launchers.base import register_launcher
from provender.core.launchers.settings import LocalSettings
from provender.core.launchers.spark_submit import ProcessHandle, SparkSubmitLauncher, _start_ticks
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import JobArgs, StreamIngestionJobArgs, warm_driver_path
from provender.kernel.jobs.folder import WARM_DRIVER_FOLDER, JobFolder, WarmDriverFolder, write_atomic


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
        with JobFolder(folder).log.open("a") as log:
            log.write(f"queued for the warm Spark driver in {self.warm_folder}\n")
        pid, ticks = self._warm_driver()
        request = {"job_id": job_id, "job_dir": str(folder), "args_file": str(args_file)}
        inbox = self.driver_files.inbox
        tmp = inbox / f".{job_id}.tmp"  # not a request until renamed (the driver takes *.json only)
        tmp.write_text(json.dumps(request))
        tmp.replace(inbox / f"{job_id}.json")
        return ProcessHandle(self.name, job_id, str(folder), pid, ticks, warm=True)

    def stop_warm_driver(self, grace_seconds: float = 10.0) -> None:
        """Stop the warm driver now (its running jobs fail; the next job starts a new driver)."""
        running = self._running_driver()
        if running is None:
            return
        pid = running[0]
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

    def _warm_driver(self) -> tuple[int, int]:
        """The running warm driver's pid and start ticks, starting one when there is none (under a file lock, so
        that concurrent submits start one driver)."""
        self.driver_files.inbox.mkdir(parents=True, exist_ok=True)
        with self.driver_files.lock.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            running = self._running_driver()
            if running is None:
                running = self._start_driver()
            self._own()
            return running

    def _running_driver(self) -> tuple[int, int] | None:
        try:
            data = json.loads(self.driver_files.handle.read_text())
            pid, ticks = int(data["pid"]), int(data["start_ticks"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if _start_ticks(pid) != ticks or self.driver_files.exit_code.exists():
            return None
        return pid, ticks

    def _start_driver(self) -> tuple[int, int]:
        for stale in (self.driver_files.exit_code, self.driver_files.ready):
            stale.unlink(missing_ok=True)
        command = self.submit_command(
            "provender-warm-driver",
            {},
            [
                str(warm_driver_path()),
                str(self.warm_folder),
                "--idle-seconds",
                str(self.warm_idle_seconds),
            ],
        )
        self.driver_files.command.write_text(json.dumps(command))
        proc = self.start_process(command, self.warm_folder, self.driver_files.log)
        ticks = _start_ticks(proc.pid) or 0
        write_atomic(self.driver_files.handle, json.dumps({"pid": proc.pid, "start_ticks": ticks}))
        return proc.pid, ticks

    def _own(self) -> None:
        """Record this process as the driver's owner: the driver outlives it only while jobs run."""
        write_atomic(self.driver_files.owner, str(os.getpid()))

    def _adopt(self) -> None:
        """A driver left running by an earlier Core: this process owns it now."""
        if self.warm_folder.is_dir() and self._running_driver() is not None:
            self._own()
