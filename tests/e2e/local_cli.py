"""`provender` run as a user types it, and platform folders that are always brought down after a test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def provender(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provender.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def recorded(home: Path) -> dict:
    """The platform's local.json: its ports and pids."""
    return json.loads((home / "local.json").read_text())


def remove_relocated_cluster(home: Path) -> None:
    """When root, the platform's Postgres cluster may live outside its folder (see local/postgres.py)."""
    relocated = home / "postgres" / "pgdata.location"
    if relocated.exists():
        shutil.rmtree(relocated.read_text().strip(), ignore_errors=True)


@contextmanager
def brought_down(*homes: Path) -> Iterator[None]:
    """`provender local down` for each folder when the block ends, however it ends."""
    try:
        yield
    finally:
        for home in homes:
            provender("local", "down", "--dir", str(home))
            remove_relocated_cluster(home)
