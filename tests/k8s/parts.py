"""The Kubernetes programs `make test-k8s` runs, as `tools/k8s/build.sh` built them from their Go modules into
.deps/k8s/<folder>-<version>/, and a small process wrapper to start and stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "tools" / "k8s" / "build.sh"
BUILT = REPO / ".deps" / "k8s"


class PartMissing(Exception):
    """A program that could not be built here; the message says why (the tests skip with it)."""


def program(folder: str, name: str) -> Path:
    """The built program `name` of tools/k8s/<folder>, or PartMissing with the build's reason."""
    error = BUILT / f"{folder}.error"
    try:
        found = subprocess.run(
            ["bash", str(BUILD), "--print-dir", folder],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        reason = error.read_text().strip() if error.is_file() else str(e)
        raise PartMissing(f"{folder} ({name}) is not available: {reason}") from None
    path = Path(found) / name
    if not os.access(path, os.X_OK):
        reason = error.read_text().strip() if error.is_file() else "not built yet: run tools/k8s/build.sh"
        raise PartMissing(f"{folder} ({name}) is not built: {reason}")
    return path


class Process:
    """A program started in its own process group, its output in `log`; stop() ends it (TERM, then KILL)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen(
            argv,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._out.close()


def wait_for(what: str, check: Callable[[], object], timeout: float, *, watch: list[Process] = ()) -> object:
    """Poll `check` until it returns something true (and return that); fail naming `what`, with the log of any
    watched process that died, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        for p in watch:
            if not p.alive():
                raise RuntimeError(
                    f"{p.name} exited ({p.popen.returncode}) while waiting for {what}:\n{p.tail()}"
                )
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # retried until the deadline, reported after
            last = e
        time.sleep(0.25)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s (last error: {last})")
