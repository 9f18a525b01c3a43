"""What the benchmarks that run jobs share: every process's /proc stat, the peak memory of a process tree, and
waiting for a job."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from provender.core.launchers.base import JobStatus, Launcher


def proc_stats() -> Iterator[tuple[Path, str, list[str]]]:
    """Every process's /proc folder, command name and the fields of its stat after the name (state first, then
    ppid, ...: proc(5) numbering minus 3); processes that end meanwhile are left out."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        yield proc, stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()


class PeakMemory:
    """Samples the RSS sum of a process and its descendants every 0.2 s."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        page = os.sysconf("SC_PAGE_SIZE")
        for proc, _, fields in proc_stats():
            try:
                rss[int(proc.name)] = int((proc / "statm").read_text().split()[1]) * page
            except (OSError, ValueError, IndexError):
                continue
            parents[int(proc.name)] = int(fields[1])
        total, todo = 0, [self.root]
        while todo:
            pid = todo.pop()
            total += rss.get(pid, 0)
            todo += [c for c, p in parents.items() if p == pid]
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree())
            time.sleep(0.2)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def wait_for(launcher: Launcher, handle: str, poll_seconds: float = 0.05) -> tuple[JobStatus, str]:
    """The job's final state and message (polled as Core's reconcile loop would, only more often)."""
    while True:
        state, message = launcher.status(handle)
        if state.terminal:
            return state, message
        time.sleep(poll_seconds)
