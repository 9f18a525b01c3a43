"""A long-lived local Spark driver that runs jobs as they come, so that a job does not pay for Spark start-up.

    spark-submit --master local[*] warm_driver.py <folder> [--idle-seconds S] [--driver-id ID]

The local launcher starts it (once; later launchers adopt it) and hands it jobs through files in `<folder>`:
- `inbox/<job_id>.json`: a request {"job_id", "job_dir", "args_file", "driver"} addressed to one driver (its
  `--driver-id`; a driver without one takes any request); the driver claims a request addressed to it by renaming
  it (atomic: the launcher withdraws a request of a dead driver by removing it, and exactly one of the two wins)
  and runs the job in a thread of its own, in a Spark session of its own (settings of one job never leak into
  another) and a Spark job group named after the job id;
- the job writes what a spark-submit job would: its output in `<job_dir>/driver.log` (the summary or error line
  of job_report), then `<job_dir>/exit_code` (0 done, 2 bad input, 1 other failure), atomically;
- `<job_dir>/cancelled` (written by the launcher's cancel) cancels the job's Spark jobs until its thread ends;
- `ready` holds the driver's pid once Spark is up; `owner` holds the pid of the Core process that uses it.
It exits, releasing its memory, when no job is running and its owner is gone or it has been idle for S seconds
(default 900), or at once when its JVM is gone; the launcher starts a new one on the next job. It decides to exit
under the folder's `lock` (the one the launcher hands requests over under): with a request of its own waiting it
stays, else it removes its `handle` (and `ready`) first, so that no job is handed to a driver that is leaving.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import io
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pyspark.sql import SparkSession

from provender.jobs import sources
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import application_path, parse_job_args, read_argument, with_secrets
from provender.kernel.jobs.conf import JOB_ID_CONF
from provender.kernel.jobs.folder import JobFolder, WarmDriverFolder, process_alive, write_atomic

POLL_SECONDS = 0.05


class ThreadOutput(io.TextIOBase):
    """sys.stdout / sys.stderr for a process running several jobs: what a job's thread writes goes to that job's
    log, everything else to the driver's own stream."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback
        self._local = threading.local()

    def attach(self, stream: TextIO | None) -> None:
        self._local.stream = stream

    def _target(self) -> TextIO:
        return getattr(self._local, "stream", None) or self.fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def writable(self) -> bool:
        return True


@dataclass
class RunningJob:
    job_id: str
    job_dir: Path
    thread: threading.Thread
    cancelling: bool = False


class WarmDriver:
    def __init__(self, spark: SparkSession, folder: Path, idle_seconds: float, driver_id: str = "") -> None:
        self.spark = spark
        self.folder = folder
        self.files = WarmDriverFolder(folder)
        self.inbox = self.files.inbox
        self.idle_seconds = idle_seconds
        self.driver_id = driver_id
        self.jvm_pid = os.getppid()  # spark-submit's JVM started this process; without it no job can run
        self.running: dict[str, RunningJob] = {}
        self.last_active = time.monotonic()
        self.stdout = ThreadOutput(sys.__stdout__)
        self.stderr = ThreadOutput(sys.__stderr__)

    def serve(self) -> None:
        sys.stdout, sys.stderr = self.stdout, self.stderr
        self.inbox.mkdir(parents=True, exist_ok=True)
        write_atomic(self.files.ready, str(os.getpid()))
        print(f"warm driver {os.getpid()} ready in {self.folder}", flush=True)
        while True:
            self._take_requests()
            self._watch_running()
            if self.running:
                self.last_active = time.monotonic()
            elif self._should_exit() and self._leave():
                break
            time.sleep(POLL_SECONDS)
        print(f"warm driver {os.getpid()} exiting (idle, its owner or its JVM is gone)", flush=True)

    def _leave(self) -> bool:
        """Under the launcher's lock: stay when a request for this driver waits (handed over while it decided to
        exit), else stop being the driver the launcher hands jobs to."""
        with self.files.lock.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._requests():
                return False
            with contextlib.suppress(OSError, ValueError, AttributeError):
                if json.loads(self.files.handle.read_text()).get("driver_id", "") == self.driver_id:
                    self.files.handle.unlink()
            with contextlib.suppress(OSError, ValueError):
                if int(self.files.ready.read_text().strip()) == os.getpid():
                    self.files.ready.unlink()
        return True

    def _should_exit(self) -> bool:
        if os.getppid() != self.jvm_pid:
            return True
        if time.monotonic() - self.last_active > self.idle_seconds:
            return True
        try:
            owner = int(self.files.owner.read_text().strip())
        except (OSError, ValueError):
            return False
        return not process_alive(owner)

    def _requests(self) -> list[tuple[Path, dict[str, Any]]]:
        """The requests in the inbox addressed to this driver (the unreadable ones too, to be reported)."""
        found = []
        for request_file in sorted(self.inbox.glob("*.json")):
            try:
                request = json.loads(request_file.read_text())
            except FileNotFoundError:  # taken, or withdrawn
                continue
            except (OSError, ValueError) as e:
                request = {"unreadable": str(e)}
            if not isinstance(request, dict):
                request = {"unreadable": "not a JSON object"}
            if "unreadable" in request or not self.driver_id or request.get("driver") == self.driver_id:
                found.append((request_file, request))
        return found

    def _take_requests(self) -> None:
        for request_file, request in self._requests():
            taken = request_file.with_suffix(".taken")
            try:
                request_file.rename(taken)
            except FileNotFoundError:  # withdrawn by the launcher (this driver was thought dead)
                continue
            try:
                job_id, job_dir = str(request["job_id"]), Path(request["job_dir"])
                args_file = str(request["args_file"])
            except (KeyError, TypeError) as e:
                print(f"ignoring the unreadable request {taken}: {request.get('unreadable', e)}", flush=True)
                continue
            job = JobFolder(job_dir)
            if job.cancelled.exists():  # cancelled while it waited: never started
                with job.log.open("a") as log:
                    print(job_report.ERROR_PREFIX + "cancelled before it started", file=log)
                write_atomic(job.exit_code, "1\n")
                taken.unlink(missing_ok=True)
                continue
            thread = threading.Thread(
                target=self._run_job, args=(job_id, job_dir, args_file), name=f"job-{job_id}", daemon=True
            )
            self.running[job_id] = RunningJob(job_id, job_dir, thread)
            thread.start()
            taken.unlink(missing_ok=True)

    def _watch_running(self) -> None:
        for job_id, job in list(self.running.items()):
            if not job.thread.is_alive():
                del self.running[job_id]
                continue
            if JobFolder(job.job_dir).cancelled.exists():
                if not job.cancelling:
                    print(f"cancelling job {job_id}", flush=True)
                    job.cancelling = True
                # again on every poll: an action the job starts after the first cancel is cancelled too
                self.spark.sparkContext.cancelJobGroup(job_id)

    def _run_job(self, job_id: str, job_dir: Path, args_file: str) -> None:
        with JobFolder(job_dir).log.open("a", buffering=1) as log:
            self.stdout.attach(log)
            self.stderr.attach(log)
            code = 1
            try:
                print(f"running in the warm driver {os.getpid()} (no Spark start-up)", flush=True)
                self.spark.sparkContext.setJobGroup(job_id, f"provender job {job_id}", interruptOnCancel=True)
                code = job_report.run_main(lambda _argv: self._run(job_id, args_file), [])
            except BaseException as e:  # SystemExit and the like: the job still ends with an exit code
                print(job_report.ERROR_PREFIX + f"{type(e).__name__}: {e}", flush=True)
            finally:
                self.stdout.attach(None)
                self.stderr.attach(None)
                write_atomic(JobFolder(job_dir).exit_code, f"{code}\n")

    def _run(self, job_id: str, args_file: str) -> dict[str, Any]:
        args = with_secrets(parse_job_args(read_argument(f"@{args_file}")), os.environ)
        application = importlib.import_module(f"provender.jobs.{application_path(args).stem}")
        session = self.spark.newSession()
        sources.configure_session(session)
        session.conf.set(JOB_ID_CONF, job_id)
        return application.run(session, args)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="A long-lived local Spark driver for Provender jobs.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--idle-seconds", type=float, default=900.0)
    parser.add_argument("--driver-id", default="", help="take only the requests addressed to this id")
    opts = parser.parse_args(argv)
    spark = SparkSession.builder.config(map=sources.SESSION_CONF).getOrCreate()
    try:
        WarmDriver(spark, opts.folder.absolute(), opts.idle_seconds, opts.driver_id).serve()
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    # By module name, so that the executors unpickle the job's functions by reference.
    from provender.jobs.warm_driver import main as _main

    sys.exit(_main(sys.argv[1:]))
