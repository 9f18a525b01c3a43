"""`provender local` and the quickstart, run as a user runs them (subprocesses, a folder of their own): the
platform with its Kafka broker, the quickstart's batch part and its stream (a stream job that keeps running, seen
through `provender jobs`), the notebook, and `down` stopping every process, the stream job's too."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from provender.local.identity import platform_of
from tests.conftest import in_ci, missing
from tests.e2e.local_cli import ROOT, provender, remove_relocated_cluster


def processes_of(home: Path) -> list[int]:
    """Every process we may look at that was started for the platform in `home` (by it, or by its Core)."""
    mine = home.resolve()
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (owner := platform_of(int(p.name))) is not None and owner.resolve() == mine
    ]


def table_rows(text: str, header: str) -> list[list[str]]:
    """The rows of the DataFrame printed after the line starting with `header` (until a blank line)."""
    after = text.split(header, 1)[1].split("\n")[2:]  # the rest of the header line, the columns' line
    return [line.split() for line in after[: after.index("")]]


def killed_while_streaming(home: Path, urls: dict[str, str]) -> None:
    """Core and the stream job are killed (SIGKILL) while messages keep coming; `provender local up` starts Core
    again, whose control loop restarts the job, which resumes from its checkpoint: every message arrives."""
    from provender import Client

    client = Client(core_url=urls["core"], serving_url=urls["serving"])
    table = client.get_feature_table("driver_trips")  # produced to without asking Core, which will be down
    sent: list[int] = []
    stop = threading.Event()

    def keep_producing() -> None:
        while not stop.is_set():
            n = len(sent)
            trip = {"driver_id": [70_000 + n], "trips_today": [n], "event_timestamp": [datetime.now(UTC)]}
            client.produce_to_stream(table, pd.DataFrame(trip))
            sent.append(n)
            time.sleep(0.1)

    producer = threading.Thread(target=keep_producing)
    producer.start()
    try:
        time.sleep(2)
        state = json.loads((home / "local.json").read_text())
        job = [
            pid
            for pid in processes_of(home)
            if b"stream_ingestion" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert job, "no stream job process to kill"
        for pid in [state["pids"]["core"], *job]:
            os.kill(pid, signal.SIGKILL)
        time.sleep(3)  # messages arrive while neither runs
        again = provender("local", "up", "--dir", str(home), "--json")
        assert again.returncode == 0 and json.loads(again.stdout) == urls, again.stderr
        time.sleep(2)
    finally:
        stop.set()
        producer.join()
    drivers = [{"driver_id": 70_000 + n} for n in sent]
    deadline = time.monotonic() + 300  # Core's restart backoff, then a new Spark driver
    while (got := client.get_online_features(["driver_trips:trips_today"], drivers).to_dict())[
        "driver_trips:trips_today"
    ] != sent:
        assert time.monotonic() < deadline, (
            f"{got['driver_trips:trips_today'].count(None)} of {len(sent)} missing"
        )
        time.sleep(1)
    streams = client.list_jobs(job_type="stream")
    assert [j.status for j in streams].count("RUNNING") == 1, streams
    assert any(j.status == "ERROR" for j in streams)  # the killed one, kept in its record


def test_local_up_quickstart_status_down(tmp_path):
    home = tmp_path / "platform"
    up = provender("local", "up", "--dir", str(home), "--core-port", "0", "--serving-port", "0", "--json")
    try:
        assert up.returncode == 0, up.stderr
        urls = json.loads(up.stdout)
        assert set(urls) >= {"core", "serving", "jobs", "staging"}
        assert urls["staging"].startswith("file://")
        streaming = "kafka" in urls  # `make jvm-deps` fetched the Kafka jars (CI: always)
        if not streaming:
            assert "streaming is off" in up.stderr and "make jvm-deps" in up.stderr
            if in_ci():
                pytest.fail(f"CI is set, but `provender local up` started no Kafka: {up.stderr}")

        again = provender("local", "up", "--dir", str(home), "--json")
        assert again.returncode == 0 and json.loads(again.stdout) == urls  # up twice is harmless

        status = provender("local", "status", "--dir", str(home))
        assert status.returncode == 0
        parts = status.stdout.splitlines()
        assert parts == ["postgres=up", "redis=up", parts[2], "core=up", "serving=up"]
        assert parts[2] == "kafka=up" if streaming else parts[2].startswith("kafka=not installed (")

        env = {
            **os.environ,
            "PROVENDER_CORE_URL": urls["core"],
            "PROVENDER_SERVING_URL": urls["serving"],
            "PROVENDER_STAGING_LOCATION": urls["staging"],
            # the platform's own data folder, which its Core lets jobs read (--allowed-storage)
            "PROVENDER_DEMO_DATA": str(home / "demo-data"),
            "PROVENDER_CONFIG": str(tmp_path / "no-config"),
        }
        if streaming:
            env["PROVENDER_KAFKA_BOOTSTRAP_SERVERS"] = urls["kafka"]
        else:
            env.pop("PROVENDER_KAFKA_BOOTSTRAP_SERVERS", None)
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
            (home / "demo-data" / "driver_stats").glob("date=*/*.parquet")
        )
        training = out.split("training set")[1].split("ingestion")[0]
        assert "driver_hourly__conv_rate" in training and "NaN" in training  # the row older than the data
        assert "online store loaded" in out
        statuses = table_rows(out, "statuses:")
        # Columns as asked: driver_id, conv_rate, avg_daily_trips; 9999 is unknown.
        assert out.split("statuses:\n")[1].split()[:3] == [
            "driver_id", "driver_hourly:conv_rate", "driver_hourly:avg_daily_trips"
        ]  # fmt: skip
        assert statuses == [["PRESENT"] * 3] * 2 + [["PRESENT", "NOT_FOUND", "NOT_FOUND"]]

        # The stream: Avro messages on the local Kafka, read into Redis by the table's stream job, which runs on.
        if not streaming:
            assert "streaming skipped: no Kafka broker" in out
        else:
            assert f"produced 3 Avro messages to topic driver_trips on {urls['kafka']}" in out
            assert table_rows(out, "streamed features")[:3] == [["1001", "5"], ["1002", "11"], ["1003", "2"]]
            assert "latest micro-batch: 3 rows read, 3 written, 0 dead-lettered" in out
            assert "the stream job keeps running" in out

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
        if streaming:
            streams = provender("jobs", "list", "--type", "stream", "--active", *flags)
            assert streams.returncode == 0, streams.stderr
            running = [
                line.split("│")[1].strip() for line in streams.stdout.splitlines() if "RUNNING" in line
            ]
            assert len(running) == 1 and "driver_trips" in streams.stdout and "DONE" not in streams.stdout
            described = provender("jobs", "describe", running[0], *flags)
            assert described.returncode == 0, described.stderr
            shown = [" ".join(line.replace("│", " ").split()) for line in described.stdout.splitlines()]
            assert "type: STREAM_INGESTION_JOB" in shown and "status: RUNNING" in shown
            assert any(re.fullmatch(r"hash: [0-9a-f]{16}", line) for line in shown)  # one job per spec hash
            assert "rows read 3" in shown and "rows dead-lettered 0" in shown and "0 2" in shown  # offset 2
            killed_while_streaming(home, urls)
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

        # Redis killed right after the notebook's ingestion wrote: the append-only file (fsync every second)
        # brings the rows back when `up` restarts it.
        lookup = (
            "online",
            "get",
            "--features",
            "driver_hourly:conv_rate",
            "--entity",
            "driver_id=1001",
            *flags,
        )
        stored = provender(*lookup)
        assert stored.returncode == 0 and "1001" in stored.stdout, stored.stdout + stored.stderr
        assert "None" not in stored.stdout  # a value, not NOT_FOUND
        os.kill(json.loads((home / "local.json").read_text())["pids"]["redis"], signal.SIGKILL)
        assert provender("local", "up", "--dir", str(home), "--json").returncode == 0
        assert provender(*lookup).stdout == stored.stdout
        # the warm driver that ran the jobs (it deletes its handle when it leaves)
        driver = json.loads((home / "jobs" / ".warm-driver" / "handle").read_text())
    finally:
        down = provender("local", "down", "--dir", str(home))
    assert down.returncode == 0 and "stopped=yes" in down.stdout
    # the quickstart's jobs ran in the warm Spark driver, which `down` stopped too
    batch = [
        p.read_text()
        for p in (home / "jobs").glob("*/driver.log")
        if p.parent.name.startswith(("ingest-", "retrieve-"))
    ]
    assert batch and all("running in the warm driver" in log for log in batch)
    assert not Path(f"/proc/{driver['pid']}").exists()
    # the stream job ran in a Spark driver of its own, which `down` stopped too; so nothing of it is left
    assert any((home / "jobs").glob("stream-*/driver.log")) == streaming
    assert processes_of(home) == []
    after = provender("local", "status", "--dir", str(home))
    assert after.returncode == 3 and "not running" in after.stdout
    remove_relocated_cluster(home)


def test_without_the_kafka_jars_the_rest_comes_up_and_streaming_follows_the_jars(tmp_path):
    """No `make jvm-deps` yet: `up` starts the rest and says in one line that streaming is off; `status` says Kafka
    is not installed, which is no failure. With the jars, `up` again starts Kafka and restarts Core with them."""
    home = tmp_path / "platform"

    def local(*args: str, jars: bool) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "PROVENDER_KAFKA_LIBS"}
        if not jars:
            env["PROVENDER_KAFKA_LIBS"] = str(tmp_path / "no-kafka")
        return subprocess.run([sys.executable, "-m", "provender.cli", "local", *args, "--dir", str(home)],
                              capture_output=True, text=True, timeout=120, env=env)  # fmt: skip

    try:
        up = local("up", "--env", "--core-port", "0", "--serving-port", "0", jars=False)
        assert up.returncode == 0, up.stderr
        said = [line for line in up.stderr.splitlines() if "streaming is off" in line]
        assert len(said) == 1 and "make jvm-deps" in said[0], up.stderr
        assert "KAFKA" not in up.stdout and "PROVENDER_CORE_URL" in up.stdout
        status = local("status", jars=False)
        assert status.returncode == 0, status.stdout
        parts = dict(line.split("=", 1) for line in status.stdout.splitlines())
        assert parts["kafka"].startswith("not installed (") and "make jvm-deps" in parts["kafka"]
        assert {k: v for k, v in parts.items() if k != "kafka"} == dict.fromkeys(
            ["postgres", "redis", "core", "serving"], "up"
        )

        again = local("up", "--json", jars=True)  # e.g. after `make jvm-deps`
        if "streaming is off" in again.stderr:
            missing("no Kafka jars here: `make jvm-deps`")
        assert again.returncode == 0, again.stderr
        assert "Core restarted with the Kafka jars" in again.stderr
        assert "kafka" in json.loads(again.stdout)
        assert local("status", jars=True).stdout.splitlines() == [
            "postgres=up", "redis=up", "kafka=up", "core=up", "serving=up"
        ]  # fmt: skip
        core = json.loads((home / "local.json").read_text())["pids"]["core"]
        assert "--spark-jars" in Path(f"/proc/{core}/cmdline").read_bytes().decode(errors="replace")
    finally:
        down = provender("local", "down", "--dir", str(home))
        remove_relocated_cluster(home)
    assert down.returncode == 0 and processes_of(home) == []
