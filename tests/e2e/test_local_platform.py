"""`provender local` and the quickstart, run as a user runs them (subprocesses, a folder of their own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.local_cli import ROOT, provender, remove_relocated_cluster


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
            "PROVENDER_STAGING_LOCATION": urls["staging"],
            "PROVENDER_DEMO_DATA": str(tmp_path / "data"),
            "PROVENDER_CONFIG": str(tmp_path / "no-config"),
        }
        quick = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert quick.returncode == 0, quick.stderr + quick.stdout
        out = quick.stdout
        assert "applied 4 objects" in out
        assert "feature table driver_hourly (revision 1" in out
        assert "driver_hourly:conv_rate" in out and "driver_trips:trips_today" in out
        assert "ingested 3600 rows" in out and any(
            (tmp_path / "data" / "driver_stats").glob("date=*/*.parquet")
        )
        training = out.split("training set")[1].split("ingestion")[0]
        assert "driver_hourly__conv_rate" in training and "NaN" in training  # the row older than the data
        assert "online store loaded" in out
        statuses = out.split("statuses:")[1].split()
        # Columns as asked: driver_id, conv_rate, avg_daily_trips, trips_today (never ingested); 9999 is unknown.
        assert statuses[:4] == [
            "driver_id", "driver_hourly:conv_rate", "driver_hourly:avg_daily_trips", "driver_trips:trips_today"
        ]  # fmt: skip
        assert statuses[4:] == ["PRESENT", "PRESENT", "PRESENT", "NOT_FOUND"] * 2 + [
            "PRESENT", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"
        ]  # fmt: skip

        # The CLI against the same platform, as a user types it.
        cli_env = {"--core-url": urls["core"], "--serving-url": urls["serving"]}
        flags = [x for pair in cli_env.items() for x in pair]
        applied = provender(
            "apply",
            "-f",
            str(ROOT / "examples" / "feature_store.yaml"),
            "-f",
            str(ROOT / "examples" / "feast09_feature_table.yaml"),
            *flags,
        )
        assert applied.returncode == 0, applied.stderr
        assert "applied FeatureTable rider_stats (revision 1)" in applied.stdout
        assert "applied FeatureTable city_demand (revision 1)" in applied.stdout
        described = provender("tables", "describe", "city_demand", *flags)
        assert "open_requests" in described.stdout and "max_age: 3600s" in described.stdout
        listed = provender("tables", "list", "--label", "team=growth", *flags)
        assert "rider_stats" in listed.stdout and "driver_hourly" not in listed.stdout
        online = provender(
            "online",
            "get",
            "--features",
            "driver_hourly:conv_rate",
            "--entity",
            "driver_id=1001",
            "--entity",
            "driver_id=4242",
            *flags,
        )
        assert online.returncode == 0, online.stderr
        assert "None (NOT_FOUND)" in online.stdout and "4242" in online.stdout
        jobs = provender("jobs", "list", *flags)
        assert jobs.stdout.count("DONE") >= 2  # the quickstart's retrieval and ingestion
        missing = provender("tables", "describe", "ghost", *flags)
        assert missing.returncode == 1 and "feature table 'ghost' does not exist" in missing.stderr

        # The notebook, executed top to bottom against the same platform.
        import nbformat
        from nbclient import NotebookClient

        notebook = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
        os.environ.update({k: v for k, v in env.items() if k.startswith("PROVENDER_")})
        try:
            NotebookClient(
                notebook,
                timeout=600,
                kernel_name="python3",
                resources={"metadata": {"path": str(ROOT / "examples")}},
            ).execute()
        finally:
            for key in [k for k in env if k.startswith("PROVENDER_")]:
                os.environ.pop(key, None)
        outputs = {
            i: cell.get("outputs", []) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
        }
        assert not any(o.get("output_type") == "error" for out in outputs.values() for o in out)
        html = "".join(o.get("data", {}).get("text/html", "") for out in outputs.values() for o in out)
        assert "FeatureTable driver_hourly" in html  # the table renders in the notebook
        last = outputs[max(outputs)][-1]["data"]["text/plain"]
        assert "PRESENT" in last and "NOT_FOUND" in last
    finally:
        down = provender("local", "down", "--dir", str(home))
    assert down.returncode == 0 and "stopped=yes" in down.stdout
    # the quickstart's jobs ran in the warm Spark driver, which `down` stopped too
    logs = [p.read_text() for p in (home / "jobs").glob("*/driver.log") if p.parent.name != ".warm-driver"]
    assert logs and all("running in the warm driver" in log for log in logs)
    driver = json.loads((home / "jobs" / ".warm-driver" / "handle").read_text())
    assert not Path(f"/proc/{driver['pid']}").exists()
    after = provender("local", "status", "--dir", str(home))
    assert after.returncode == 3 and "not running" in after.stdout
    remove_relocated_cluster(home)
