"""Compat: the real Feast 0.9 SDK's `Client.get_online_features` against our Serving reads the values written
through our encoding module (the SDK runs in its own venv, .venv-feast09, under its own interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from provender.kernel.value_types import ValueType
from tests.factories import entity, feature, table
from tests.integration.serving.online_store import apply, write_row

REPO_ROOT = Path(__file__).resolve().parents[3]
DRIVER = Path(__file__).resolve().parent / "feast09_online_driver.py"

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def feast09_python(tmp_path_factory) -> Path:
    venv = Path(os.environ.get("PROVENDER_FEAST09_VENV") or REPO_ROOT / ".venv-feast09")
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.skip(f"the Feast 0.9 SDK venv {venv} is missing; `make feast09` installs it")
    return python


def run_driver(python: Path, home: Path, args: dict) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FEAST_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(
        FEAST_TELEMETRY="False", HOME=str(home), FEAST_CONFIG=str(home / ".feast"), PYTHONWARNINGS="ignore"
    )
    proc = subprocess.run(
        [str(python), str(DRIVER), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=home,
    )
    assert proc.returncode == 0, f"driver failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_feast09_client_reads_what_our_encoding_wrote(
    feast09_python, tmp_path, serving, core_server, core_stub, redis
) -> None:
    apply(
        core_stub,
        "fraud",
        [entity("driver_id"), entity("customer_id", ValueType.STRING)],
        [
            table(
                "driver_hourly",
                features=(
                    feature("conv_rate"),
                    feature("trips", ValueType.INT64),
                    feature("tags", ValueType.STRING_LIST),
                ),
                max_age_seconds=3600,
            ),
            table(
                "customer",
                entities=("customer_id",),
                features=(feature("blob", ValueType.BYTES),),
                max_age_seconds=0,
            ),
        ],
    )
    write_row(
        redis, "fraud", {"driver_id": (1001, ValueType.INT64)}, "driver_hourly",
        {"conv_rate": (0.25, ValueType.FLOAT), "trips": (42, ValueType.INT64), "tags": (["a", "b"], ValueType.STRING_LIST)},
        max_age_seconds=3600,
    )  # fmt: skip
    write_row(
        redis,
        "fraud",
        {"customer_id": ("c1", ValueType.STRING)},
        "customer",
        {"blob": (b"\x01\x02", ValueType.BYTES)},
    )
    got = run_driver(
        feast09_python,
        tmp_path,
        {
            "serving_url": f"127.0.0.1:{serving.port}",
            "core_url": core_server.url,
            "project": "fraud",
            "refs": ["driver_hourly:conv_rate", "driver_hourly:trips", "driver_hourly:tags", "customer:blob"],
            "rows": [{"driver_id": 1001, "customer_id": "c1"}, {"driver_id": 7, "customer_id": "c9"}],
        },
    )
    assert got["version"]["serving"]["version"]
    assert got["values"] == {
        "driver_id": [1001, 7],
        "customer_id": ["c1", "c9"],
        "driver_hourly:conv_rate": [0.25, None],
        "driver_hourly:trips": [42, None],
        "driver_hourly:tags": [["a", "b"], None],
        "customer:blob": ["0102", None],
    }
    assert got["statuses"][0] == {
        "driver_id": "PRESENT", "customer_id": "PRESENT", "driver_hourly:conv_rate": "PRESENT",
        "driver_hourly:trips": "PRESENT", "driver_hourly:tags": "PRESENT", "customer:blob": "PRESENT",
    }  # fmt: skip
    assert set(got["statuses"][1].values()) == {"PRESENT", "NOT_FOUND"}
    assert got["statuses"][1]["customer:blob"] == "NOT_FOUND"
