"""Launching a Spark application as a `spark-submit` process on this machine (local mode, or the driver of a
client-mode submission to a cluster), in a way that survives Core restarts.

Each job gets a folder `<work_dir>/<job_id>/` with `driver.log` (stdout and stderr of spark-submit), `handle`
(the handle string), `exit_code` (written by a small shell wrapper when spark-submit ends) and `cancelled`
(written by cancel). The handle holds the folder, the wrapper's pid and its start time (so a reused pid is not
mistaken for the job), which is all `status` needs: a new launcher object, in a new Core process, answers the same.
The wrapper leads its own process group, so cancel stops spark-submit, the JVM and the Python driver together.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from abc import abstractmethod
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

from provender.core.launchers.base import JobStatus, Launched, Launcher
from provender.core.launchers.settings import SparkSubmitSettings
from provender.kernel.errors import FailedPrecondition, InvalidArgument
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import REDIS_URL_ENV, JobArgs, application_path
from provender.kernel.jobs.conf import JOB_ID_CONF
from provender.kernel.jobs.folder import JobFolder, write_atomic
from provender.kernel.jobs.status import CANCELLED

# Runs the command, then records its exit status atomically; $0 is the exit-code file.
_WRAPPER = '"$@"; code=$?; printf "%s\\n" "$code" > "$0.tmp" && mv "$0.tmp" "$0"; exit "$code"'
CANCELLED_MESSAGE = CANCELLED


def find_spark_home() -> Path:
    """The Spark distribution of the installed pyspark package (it carries bin/spark-submit, bin/spark-class)."""
    spec = find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidArgument(
            "spark_home", None, "an installed pyspark package, or spark_home set to a Spark folder"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class ProcessHandle:
    launcher: str
    job_id: str
    job_dir: str
    pid: int
    start_ticks: int
    warm: bool = False  # run by a warm driver (pid is the driver's, shared with other jobs)

    def encode(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def decode(cls, handle: str, launcher: str) -> ProcessHandle:
        try:
            data = json.loads(handle)
            parsed = cls(**data)
        except (json.JSONDecodeError, TypeError):
            raise InvalidArgument(
                "launcher handle", handle, f"a handle made by the {launcher} launcher"
            ) from None
        if parsed.launcher != launcher:
            raise InvalidArgument("launcher handle", handle, f"a handle made by the {launcher} launcher")
        return parsed

    @property
    def folder(self) -> Path:
        return Path(self.job_dir)

    @property
    def log(self) -> Path:
        return JobFolder(self.folder).log


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


class SparkSubmitLauncher(Launcher):
    """spark-submit as a subprocess; subclasses say which master and settings it gets."""

    Settings: ClassVar[type[SparkSubmitSettings]] = SparkSubmitSettings

    def __init__(self, settings: SparkSubmitSettings) -> None:
        self.settings = settings
        self.work_dir = settings.work_dir
        self.spark_home = settings.spark_home or find_spark_home()
        self.spark_submit = self.spark_home / "bin" / "spark-submit"
        if not self.spark_submit.is_file():
            raise InvalidArgument("spark_home", str(self.spark_home), "a Spark folder with bin/spark-submit")
        self.python = settings.python
        self.conf = dict(settings.conf)
        self.cancel_grace_seconds = settings.cancel_grace_seconds
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @abstractmethod
    def master_args(self) -> list[str]:
        """--master and --deploy-mode (and anything else specific to where the application runs)."""

    def default_conf(self) -> dict[str, str]:
        return {
            "spark.pyspark.python": self.python,
            "spark.pyspark.driver.python": self.python,
            "spark.ui.enabled": "false",
            "spark.sql.session.timeZone": "UTC",
        }

    def command(self, job_id: str, args_file: Path, args: JobArgs) -> list[str]:
        """The spark-submit command line; the job reads its arguments from `args_file` (@path)."""
        # the job id, for what the job reports (its pushed metrics carry it)
        return self.submit_command(
            f"provender-{job_id}",
            {JOB_ID_CONF: job_id},
            [str(application_path(args)), f"@{args_file}"],
        )

    def submit_command(self, name: str, conf: dict[str, str], application: list[str]) -> list[str]:
        """spark-submit with this launcher's master, packages and settings (then `conf`), for `application`
        (the program and its arguments)."""
        command = [str(self.spark_submit), *self.master_args(), "--name", name]
        if self.settings.packages:
            command += ["--packages", ",".join(self.settings.packages)]
        if self.settings.jars:
            command += ["--jars", ",".join(self.settings.jars)]
        for key, value in (self.default_conf() | self.conf | conf).items():
            command += ["--conf", f"{key}={value}"]
        return [*command, *application]

    def start_process(self, command: list[str], folder: Path, log: Path) -> subprocess.Popen[bytes]:
        """`command` in its own process group, its output appended to `log`, `<folder>/exit_code` written when
        it ends."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, str(JobFolder(folder).exit_code), *command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=folder,
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        return proc

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        env["PYSPARK_PYTHON"] = self.python
        env["PYSPARK_DRIVER_PYTHON"] = self.python
        env["SPARK_HOME"] = str(self.spark_home)
        if self.settings.redis_url:  # the job's Redis credentials: here, not in its arguments or command line
            env[REDIS_URL_ENV] = self.settings.redis_url
        return env

    # --- Launcher ---

    def submit(self, job_id: str, args: JobArgs) -> Launched:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise InvalidArgument("job_id", job_id, "a non-empty id without '/' that does not start with '.'")
        folder = self.work_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        try:
            claim = os.open(JobFolder(folder).claimed, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self._existing(folder)
        os.close(claim)
        args_file = JobFolder(folder).args
        fd = os.open(args_file, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)  # it may hold a Redis password
        with os.fdopen(fd, "w") as f:
            f.write(args.to_json())
        handle = self.start_job(job_id, folder, args_file, args)
        write_atomic(JobFolder(folder).handle, handle.encode())
        return Launched(handle.encode(), handle.log.as_uri())

    def start_job(self, job_id: str, folder: Path, args_file: Path, args: JobArgs) -> ProcessHandle:
        """Start the job whose folder and arguments file are ready: a spark-submit of its own."""
        command = self.command(job_id, args_file, args)
        JobFolder(folder).command.write_text(json.dumps(command))
        proc = self.start_process(command, folder, JobFolder(folder).log)
        return ProcessHandle(self.name, job_id, str(folder), proc.pid, _start_ticks(proc.pid) or 0)

    def _existing(self, folder: Path) -> Launched:
        """The launch of a job id submitted before (its handle appears right after the claim)."""
        deadline = time.monotonic() + 10
        while not JobFolder(folder).handle.exists():
            if time.monotonic() > deadline:
                raise FailedPrecondition(
                    f"job {folder.name} was claimed in {folder} but never started (a launcher stopped while "
                    "submitting it); remove that folder to submit it again"
                )
            time.sleep(0.05)
        handle = ProcessHandle.decode(JobFolder(folder).handle.read_text(), self.name)
        return Launched(handle.encode(), handle.log.as_uri())

    def status(self, handle: str) -> tuple[JobStatus, str]:
        h = ProcessHandle.decode(handle, self.name)
        self._reap(h.pid)
        if JobFolder(h.folder).cancelled.exists():
            return JobStatus.ERROR, CANCELLED_MESSAGE
        exit_file = JobFolder(h.folder).exit_code
        if exit_file.exists():
            code = exit_file.read_text().strip()
            if code == "0":
                return JobStatus.DONE, ""
            reason = job_report.failure_reason(h.log) or "no message in the log"
            who = "the job (in the warm Spark driver)" if h.warm else "spark-submit"
            return JobStatus.ERROR, f"{who} exited with code {code}: {reason}"
        if self._alive(h):
            return JobStatus.RUNNING, ""
        if exit_file.exists():  # it finished between the two checks
            return self.status(handle)
        reason = job_report.failure_reason(h.log) or self.driver_failure(h)
        return JobStatus.ERROR, (
            f"the job's driver process {h.pid} ended without an exit status (killed, or its machine restarted)"
            + (f": {reason}" if reason else "")
        )

    def cancel(self, handle: str) -> None:
        h = ProcessHandle.decode(handle, self.name)
        if JobFolder(h.folder).exit_code.exists():
            return
        JobFolder(h.folder).cancelled.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if not self._alive(h):
            return
        deadline = time.monotonic() + self.cancel_grace_seconds
        if h.warm:  # the driver cancels the job's Spark jobs and ends it; the driver itself stays
            while (
                time.monotonic() < deadline and not JobFolder(h.folder).exit_code.exists() and self._alive(h)
            ):
                time.sleep(0.1)
            return
        self._signal(h.pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            self._reap(h.pid)
            if not self._group_alive(h.pid):
                return
            time.sleep(0.1)
        self._signal(h.pid, signal.SIGKILL)
        self._reap(h.pid)

    def log_uri(self, handle: str) -> str:
        return ProcessHandle.decode(handle, self.name).log.as_uri()

    def report(self, handle: str) -> dict[str, Any] | None:
        return job_report.find_summary(ProcessHandle.decode(handle, self.name).log)

    def driver_failure(self, h: ProcessHandle) -> str:
        """Why the process running the job ended, when the job's own log does not say ("" when unknown)."""
        return ""

    # --- processes ---

    def _alive(self, h: ProcessHandle) -> bool:
        ticks = _start_ticks(h.pid)
        return ticks is not None and (h.start_ticks == 0 or ticks == h.start_ticks)

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # only zombies left (not reaped by a parent that is gone) count as ended
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
        return False

    @staticmethod
    def _signal(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)

    def _reap(self, pid: int) -> None:
        proc = self._children.get(pid)
        if proc is not None and proc.poll() is not None:
            del self._children[pid]
