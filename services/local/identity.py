"""Whose process is this: every process `provender local up` starts carries its platform's folder in its
environment ($PROVENDER_LOCAL_DIR), read back from Linux's /proc/<pid>/environ. Redis overwrites its
environment with its process title, so for it the folder is where it works (its `--dir`, <folder>/redis),
counted only when that folder's local.json records the pid.

So a recorded pid that the system has since given to another program is not taken for ours, and the process
holding a port can be named: "the Core of the provender local platform in /x", or "pid 123 (redis-server)".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from provender.local.listeners import PROC, listener

ENV = "PROVENDER_LOCAL_DIR"
STATE_FILE = "local.json"


def tagged_env(directory: Path) -> dict[str, str]:
    """This process's environment plus the tag naming the platform in `directory`."""
    return {**os.environ, ENV: str(directory)}


def can_tell() -> bool:
    """Whether processes' environments can be read here (Linux's /proc)."""
    return (PROC / "self" / "environ").exists()


def platform_of(pid: int) -> Path | None:
    """The platform folder process `pid` was started for; None when it has none or cannot be read."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's
        return None
    prefix = ENV.encode() + b"="
    for entry in raw.split(b"\0"):
        if entry.startswith(prefix):
            return Path(os.fsdecode(entry[len(prefix) :]))
    try:
        cwd = Path(os.readlink(PROC / str(pid) / "cwd"))
    except OSError:
        return None
    return cwd.parent if part_of(pid, cwd.parent) == "redis" else None


def tagged_processes(directory: Path, cwd_under: Path) -> list[int]:
    """The processes we may look at that were started for the platform in `directory` (by it, or by its Core:
    the tag is inherited) and work in `cwd_under` or a folder below it, e.g. the Spark jobs in <dir>/jobs."""
    mine, under = directory.resolve(), cwd_under.resolve()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        owner = platform_of(int(entry.name))
        if owner is None or owner.resolve() != mine:
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd")).resolve()
        except OSError:  # gone, or another user's
            continue
        if cwd == under or under in cwd.parents:
            found.append(int(entry.name))
    return found


def command_of(pid: int, limit: int = 60) -> str:
    """The command line of `pid`, shortened to `limit` characters; "" when it cannot be read."""
    try:
        words = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    text = " ".join(os.fsdecode(w) for w in words if w)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def part_of(pid: int, directory: Path) -> str | None:
    """Which part ("core", "serving", "redis", "kafka") of the platform in `directory` `pid` is, by its local.json."""
    try:
        pids = json.loads((directory / STATE_FILE).read_text()).get("pids", {})
    except (OSError, ValueError):
        return None
    return next((name for name, p in pids.items() if p == pid), None)


def holder(port: int) -> tuple[int | None, Path | None, str]:
    """Who listens on `port`: (pid or None, its platform folder or None, a phrase naming it for people)."""
    pid = listener(port)
    if pid is None:
        return None, None, "another process"
    directory = platform_of(pid)
    if directory is None:
        command = command_of(pid)
        return pid, None, f"another process, pid {pid}" + (f": {command}" if command else "")
    part = part_of(pid, directory)
    names = {"core": "the Core", "serving": "the Serving", "redis": "the Redis", "kafka": "the Kafka"}
    what = names.get(part or "", "a process")
    return pid, directory, f"{what} of the provender local platform in {directory}, pid {pid}"
