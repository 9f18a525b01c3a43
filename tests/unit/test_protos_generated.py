"""The committed generated code is exactly what tools/gen_protos.py produces from protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_regeneration_changes_nothing():
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_generated_modules_live_under_provender_and_never_import_feast():
    for path in (ROOT / "sdk" / "provender" / "proto").rglob("*.py"):
        text = path.read_text()
        assert "from feast" not in text and "import feast" not in text, path
        assert "from provender.proto" in text or "_pb2" not in text or "import" in text
