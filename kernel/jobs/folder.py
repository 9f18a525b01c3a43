"""The job folder: the files through which a launcher on Core's machine and a Spark application (or the local
warm driver) hand over a job and tell each other how it went. One folder per job, `<work_dir>/<job id>/`:

| file | written by | meaning |
|---|---|---|
| claimed | the launcher | the job id is taken (created exclusively: a second submit of the same id waits for `handle`) |
| args.json | the launcher | the job's arguments (a file, so secrets never show in the process list) |
| command.json | the launcher | the command it ran, for people reading the folder |
| handle | the launcher | how to find the job again (pid, start time), written atomically |
| driver.log | the application | its stdout and stderr, ending with the report line (provender.kernel.jobs.report) |
| exit_code | a wrapper, the warm driver, or the launcher | the exit status, written atomically when the job ends (0 done, 1 failed, 2 bad input); the launcher writes 1 for a warm job it withdrew from a dead driver's inbox, which then never runs |
| cancelled | the launcher | cancel was asked (the time); the job is stopped and counts as failed |

The local launcher's warm driver has a folder of its own, `<work_dir>/.warm-driver/` (WarmDriverFolder): jobs
are handed over as files in `inbox/`, each addressed to one driver (its `driver` id) and taken only by that one,
`ready` holds the driver's pid once it takes jobs, `owner` the pid of the Core that uses it, `handle` how to find
it (the driver deletes its own when it leaves), `lock` serialises starting it and handing jobs over, and
`driver.log`/`exit_code` are its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WARM_DRIVER_FOLDER = ".warm-driver"


@dataclass(frozen=True)
class JobFolder:
    path: Path

    @property
    def claimed(self) -> Path:
        return self.path / "claimed"

    @property
    def args(self) -> Path:
        return self.path / "args.json"

    @property
    def command(self) -> Path:
        return self.path / "command.json"

    @property
    def handle(self) -> Path:
        return self.path / "handle"

    @property
    def log(self) -> Path:
        return self.path / "driver.log"

    @property
    def exit_code(self) -> Path:
        return self.path / "exit_code"

    @property
    def cancelled(self) -> Path:
        return self.path / "cancelled"


@dataclass(frozen=True)
class WarmDriverFolder(JobFolder):
    @property
    def inbox(self) -> Path:
        return self.path / "inbox"

    @property
    def ready(self) -> Path:
        return self.path / "ready"

    @property
    def owner(self) -> Path:
        return self.path / "owner"

    @property
    def lock(self) -> Path:
        return self.path / "lock"


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file at once: readers see the old file or the new one, never a part."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (the warm driver checks its `owner` with it); a child of ours that has
    exited is reaped, since a zombie still answers kill(pid, 0)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
