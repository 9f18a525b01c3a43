"""`pip install provender` as a production service installs it: the SDK alone (no Spark, no database drivers, no
Kubernetes client), which still looks features up and starts jobs against a running platform, and says which
extra to install when a server part is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import running_platform

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_A_BARE_INSTALL = (
    "pyspark",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "kubernetes",
    "redis",
    "prometheus-client",
)


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    """A fresh venv with `pip install <this repository>`, no extras; its python."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-v", str(ROOT)], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stdout + install.stderr
    # The build says nothing a user should act on (it once warned that the license table is deprecated).
    build = install.stdout + install.stderr
    assert "BuildBackendWarning" not in build and "DeprecationWarning" not in build, build[-3000:]
    return venv / "bin" / "python"


def test_a_bare_install_is_the_sdk_alone(bare):
    listed = subprocess.run(
        [str(bare), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "provender" in installed
    assert not installed & set(NOT_IN_A_BARE_INSTALL), installed & set(NOT_IN_A_BARE_INSTALL)
    lua = subprocess.run(
        [str(bare), "-c", "from provender.kernel.online.write_rule import WRITE_ROWS_LUA; print(len(WRITE_ROWS_LUA))"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert lua.returncode == 0 and int(lua.stdout) > 1000, lua.stderr  # package data is in the wheel


@pytest.mark.parametrize(
    ("module", "extra"),
    [("provender.core", "server"), ("provender.serving", "server"), ("provender.jobs", "spark"), ("provender.local", "local")],
)  # fmt: skip
def test_a_server_part_names_the_extra_it_needs(bare, module, extra):
    run = subprocess.run([str(bare), "-c", f"import {module}"], capture_output=True, text=True)
    assert run.returncode == 1
    assert f"pip install 'provender[{extra}]'" in run.stderr and "MissingExtra" in run.stderr


def test_the_cli_says_which_extra_a_server_command_needs(bare):
    cli = bare.parent / "provender"
    run = subprocess.run([str(cli), "core", "--help"], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.startswith("provender core: provender.core needs the [server] extra")
    assert "Traceback" not in run.stderr


@pytest.fixture
def platform(postgres, redis_server, tmp_path):
    with running_platform(postgres, redis_server, tmp_path, "bare") as p:
        yield p


def test_a_bare_install_looks_features_up_and_starts_jobs(bare, platform, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    script = textwrap.dedent(
        f"""
        import json
        from datetime import datetime, timedelta
        import pandas as pd
        from provender import Client, Entity, Feature, FeatureTable, FileSource, ValueType

        client = Client(core_url={platform.core_url!r}, serving_url={platform.serving_url!r})
        table = FeatureTable(
            name="riders",
            entities=["rider_id"],
            features=[Feature("trips", ValueType.INT64)],
            batch_source=FileSource(event_timestamp_column="ts", file_url={(tmp_path / "riders").as_uri()!r}),
        )
        client.apply([Entity("rider_id", ValueType.INT64), table])
        now = datetime.fromisoformat({now.isoformat()!r})
        client.ingest("riders", pd.DataFrame({{"rider_id": [1, 2], "ts": [now, now], "trips": [7, 9]}}))
        done = client.start_offline_to_online_ingestion("riders", now - timedelta(days=1), now + timedelta(hours=1))
        report = done.wait(progress=False).report
        online = client.get_online_features(["riders:trips"], [{{"rider_id": 1}}, {{"rider_id": 2}}]).to_dict()
        print(json.dumps({{"written": report["rows_written"], "online": online}}))
        """
    )
    run = subprocess.run(
        [str(bare), "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PROVENDER_CONFIG": str(tmp_path / "no-config")},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {"written": 2, "online": {"rider_id": [1, 2], "riders:trips": [7, 9]}}
