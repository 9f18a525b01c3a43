"""`provender local` and the quickstart, run as a user runs them (subprocesses, a folder of their own)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def provender(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provender.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_local_up_quickstart_status_down(tmp_path):
    home = tmp_path / "platform"
    up = provender("local", "up", "--dir", str(home), "--core-port", "0", "--serving-port", "0", "--json")
    try:
        assert up.returncode == 0, up.stderr
        urls = json.loads(up.stdout)
        assert set(urls) >= {"core", "serving", "jobs", "staging"}
        assert urls["staging"].startswith("file://")

        again = provender("local", "up", "--dir", str(home), "--json")
        assert again.returncode == 0 and json.loads(again.stdout) == urls  # up twice is harmless

        status = provender("local", "status", "--dir", str(home))
        assert status.returncode == 0
        assert status.stdout.split() == ["postgres=up", "redis=up", "core=up", "serving=up"]

        env = {
            **os.environ,
            "PROVENDER_CORE_URL": urls["core"],
            "PROVENDER_SERVING_URL": urls["serving"],
            "PROVENDER_DEMO_DATA": str(tmp_path / "data"),
            "PROVENDER_CONFIG": str(tmp_path / "no-config"),
        }
        quick = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert quick.returncode == 0, quick.stderr
        assert "applied 4 objects" in quick.stdout
        assert "feature table driver_hourly (revision 1" in quick.stdout
        assert "driver_hourly:conv_rate" in quick.stdout and "driver_trips:trips_today" in quick.stdout
        assert any((tmp_path / "data" / "driver_stats").glob("date=*/*.parquet"))
    finally:
        down = provender("local", "down", "--dir", str(home))
    assert down.returncode == 0 and "stopped=yes" in down.stdout
    after = provender("local", "status", "--dir", str(home))
    assert after.returncode == 3 and "not running" in after.stdout
    relocated = home / "postgres" / "pgdata.location"  # when root, the cluster may live elsewhere
    if relocated.exists():
        shutil.rmtree(relocated.read_text().strip(), ignore_errors=True)
