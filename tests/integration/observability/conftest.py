"""The observability stack, once per module: a real Pushgateway, Core and Serving as the processes operators run
(`provender core|serving --metrics-port`), and a real Prometheus scraping all three every second with the
chart's alert rules loaded. Then the state the dashboards show is produced:

- project `obs` with tables `driver_hourly` (max_age 3 h) and `rider_daily` (max_age 1 h) applied through gRPC;
- ingestion jobs started through the JobService: Core's launcher cannot create their folder (its work dir is
  under a regular file), so each submission fails at once, as a refused submission does: Core counts a
  submission and a failure (reason=submit) and keeps an ERROR record;
- a successful ingestion of `driver_hourly` recorded in Postgres the way Core records a finished job, and the
  ingestion job's own metrics pushed with metrics_push from a report shaped like the job's summary (no Spark
  runs: that is tests/integration/core/test_job_service.py's business and costs a minute);
- `rider_daily`: pushed as succeeded two hours ago, then failed now: stale beyond its max_age, and failing;
- Serving traffic: found, NOT_FOUND and OUTSIDE_MAX_AGE values.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import yaml

from provender.core.jobs import ids
from provender.core.jobs.model import JobStatus, JobType
from provender.core.jobs.store import JobStore
from provender.core.registry.database import Database, make_engine
from provender.jobs import metrics_push
from provender.kernel.value_types import ValueType
from provender.proto.feast.core import CoreService_pb2 as core_pb
from provender.proto.feast.core import CoreService_pb2_grpc
from provender.proto.feast.serving import ServingService_pb2_grpc
from provender.proto.feast_spark.api import JobService_pb2 as job_pb
from provender.proto.feast_spark.api import JobService_pb2_grpc
from tests import factories as f
from tests.integration.observability.servers import (
    PROMETHEUS,
    PUSHGATEWAY,
    Prometheus,
    Pushgateway,
    free_port,
    http_get,
)
from tests.integration.serving import online_store

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "deploy" / "helm" / "provender"
RULES = CHART / "rules" / "provender.yaml"
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
PROJECT = "obs"
FRESH_TABLE = "driver_hourly"
STALE_TABLE = "rider_daily"

# What ingestion.IngestionSummary holds for a run of driver_hourly (asdict), as the job reports it.
now = datetime.now(UTC)
REPORT = {
    "job": "offline_to_online_ingestion",
    "project": PROJECT,
    "table": FRESH_TABLE,
    "start": (now - timedelta(days=2)).isoformat(),
    "end": now.isoformat(),
    "rows_read": 144,
    "rows_in_window": 140,
    "rows_dead_lettered": 4,
    "keys": 3,
    "rows_written": 3,
    "rows_skipped_stale": 0,
    "max_event_time": (now - timedelta(minutes=30)).isoformat(),
    "event_time_lag_seconds": 1800.0,
    "dead_letter_location": "file:///tmp/dead-letter",
    "duration_seconds": 8.5,
}

needs_binaries = pytest.mark.skipif(
    not (os.access(PROMETHEUS, os.X_OK) and os.access(PUSHGATEWAY, os.X_OK)),
    reason="Debian's prometheus and prometheus-pushgateway are not installed",
)


def provender_command() -> list[str]:
    script = Path(sys.executable).with_name("provender")
    return [str(script)] if script.exists() else [sys.executable, "-m", "provender.cli"]


class Service:
    """`provender core|serving` as a subprocess; ready when its gRPC port answers `probe` and /metrics answers."""

    def __init__(self, args: list[str], log: Path, grpc_port: int, metrics_port: int) -> None:
        self.grpc_url = f"127.0.0.1:{grpc_port}"
        self.metrics_address = f"127.0.0.1:{metrics_port}"
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [*provender_command(), *args], stdout=self._out, stderr=subprocess.STDOUT
        )
        self.channel = grpc.insecure_channel(self.grpc_url)

    def wait_ready(self, probe, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
            try:
                probe(self.channel)
                http_get(f"http://{self.metrics_address}/metrics", timeout=1)
                return
            except (grpc.RpcError, grpc.FutureTimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"not ready after {timeout}s: {self.log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._out.close()


@dataclass
class Stack:
    prometheus: Prometheus
    pushgateway: Pushgateway
    core: Service
    serving: Service
    database_url: str
    work_dir: Path


def wrapped_rules(work_dir: Path) -> Path:
    """The chart's rule file (a YAML list of groups) as a Prometheus rule file (`groups:` at the top)."""
    groups = yaml.safe_load(RULES.read_text())
    path = work_dir / "provender-rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def wait_for(prometheus: Prometheus, expr: str, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        answer = prometheus.query(expr)
        assert answer["status"] == "success", (expr, answer)
        if answer["data"]["result"]:
            return answer["data"]["result"]
        assert time.monotonic() < deadline, f"no data for {expr} after {timeout}s"
        time.sleep(0.25)


def _start_ingestion(channel: grpc.Channel, table: str) -> job_pb.Job:
    jobs = JobService_pb2_grpc.JobServiceStub(channel)
    started = jobs.StartOfflineToOnlineIngestionJob(
        job_pb.StartOfflineToOnlineIngestionJobRequest(project=PROJECT, table_name=table)
    )
    return jobs.GetJob(job_pb.GetJobRequest(job_id=started.id)).job


def _record_finished_ingestion(database_url: str, table: str) -> None:
    """A successful ingestion of `table` as Core records one (created, launched, DONE)."""
    engine = make_engine(database_url)
    try:
        store = JobStore(Database(engine))
        base = ids.base_id(
            JobType.BATCH_INGESTION, {"project": PROJECT, "table": table, "test": "observability"}
        )
        job, _ = store.create_unless_active(base, JobType.BATCH_INGESTION, PROJECT, table, "local", {})
        store.launched(job.id, handle="{}", log_uri="file:///tmp/driver.log")
        store.set_status(job.id, JobStatus.DONE)
    finally:
        engine.dispose()


def _serving_traffic(channel: grpc.Channel, seconds: float) -> int:
    stub = ServingService_pb2_grpc.ServingServiceStub(channel)
    refs = [f"{FRESH_TABLE}:conv_rate", f"{FRESH_TABLE}:trips", f"{STALE_TABLE}:conv_rate"]
    rows = [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 1003}]
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stub.GetOnlineFeaturesV2(online_store.request(PROJECT, refs, rows))
        sent += 1
        time.sleep(0.01)
    return sent


@pytest.fixture(scope="module")
def stack(postgres, redis_server, tmp_path_factory) -> Iterator[Stack]:
    work = Path(tmp_path_factory.mktemp("observability"))
    database_url = postgres.create_database(f"obs_{os.getpid()}_{int(time.time() * 1000)}")
    blocker = work / "not-a-folder"
    blocker.write_text("the launcher's work dir lives under this file, so every submission fails at once")
    started: list = []
    try:
        pushgateway = Pushgateway(work)
        started.append(pushgateway)
        core_port, core_metrics = free_port(), free_port()
        core = Service(
            ["core", "--postgres-url", database_url, "--host", "127.0.0.1", "--port", str(core_port),
             "--metrics-port", str(core_metrics), "--redis-url", redis_server.url,
             "--pushgateway-url", pushgateway.url, "--staging-location", (work / "staging").as_uri(),
             "--launcher-work-dir", str(blocker / "jobs"), "--reconcile-seconds", "1", "--log-level", "WARNING"],
            work / "core.log", core_port, core_metrics,
        )  # fmt: skip
        started.append(core)
        core_stub = CoreService_pb2_grpc.CoreServiceStub(core.channel)
        core.wait_ready(lambda ch: core_stub.ListProjects(core_pb.ListProjectsRequest(), timeout=2))
        online_store.apply(
            core_stub,
            PROJECT,
            [f.entity("driver_id", ValueType.INT64)],
            [f.table(FRESH_TABLE, max_age_seconds=3 * 3600), f.table(STALE_TABLE, max_age_seconds=3600)],
        )
        serving_port, serving_metrics = free_port(), free_port()
        serving = Service(
            ["serving", "--core-url", core.grpc_url, "--redis-url", redis_server.url, "--host", "127.0.0.1",
             "--port", str(serving_port), "--metrics-port", str(serving_metrics), "--spec-refresh-seconds", "0.5",
             "--log-level", "WARNING"],
            work / "serving.log", serving_port, serving_metrics,
        )  # fmt: skip
        started.append(serving)
        serving.wait_ready(lambda ch: grpc.channel_ready_future(ch).result(timeout=2))
        prometheus = Prometheus(
            work,
            {
                "provender-core": [core.metrics_address],
                "provender-serving": [serving.metrics_address],
                "pushgateway": [pushgateway.url.removeprefix("http://")],
            },
            interval="1s",
            rule_files=(wrapped_rules(work),),
        )
        started.append(prometheus)

        # Jobs: refused submissions (counted by Core), then a success of driver_hourly as Core records it.
        for table in (FRESH_TABLE, STALE_TABLE):
            job = _start_ingestion(core.channel, table)
            assert job.status == job_pb.JOB_STATUS_ERROR and "submission failed" in job.error_message
        # rider_daily fails again once Prometheus has seen the first failure, so increase() shows one.
        wait_for(prometheus, f'provender_core_job_failures_total{{feature_table="{STALE_TABLE}"}}')
        _start_ingestion(core.channel, STALE_TABLE)
        _record_finished_ingestion(database_url, FRESH_TABLE)
        # What the ingestion job pushes at its end.
        t = time.time()
        assert metrics_push.push_ingestion_metrics(
            pushgateway.url, REPORT, job_id="ingest-obs-1", lag_seconds_samples=[600, 1200, 1800, 5400, 7200, 90000]
        )  # fmt: skip
        stale = REPORT | {"table": STALE_TABLE, "rows_written": 10, "rows_read": 10, "rows_dead_lettered": 0}
        assert metrics_push.push_ingestion_metrics(
            pushgateway.url, stale, job_id="ingest-obs-2", now=t - 7200
        )
        assert metrics_push.push_ingestion_metrics(
            pushgateway.url, None, job_id="ingest-obs-3", project=PROJECT, table=STALE_TABLE, outcome="failure",
            duration_seconds=2.0,
        )  # fmt: skip

        # Serving: driver 1001 fresh, 1002 older than driver_hourly's max_age, 1003 absent (NOT_FOUND).
        client = redis_server.client()
        ent = {"driver_id": (1001, ValueType.INT64)}
        feats = {"conv_rate": (0.5, ValueType.FLOAT), "trips": (3, ValueType.INT64)}
        online_store.write_row(client, PROJECT, ent, FRESH_TABLE, feats, max_age_seconds=3 * 3600)
        old = time.time_ns() - 5 * 3600 * 10**9
        online_store.write_row(
            client, PROJECT, {"driver_id": (1002, ValueType.INT64)}, FRESH_TABLE, feats, event_time_ns=old
        )
        client.close()
        wait_for(prometheus, 'up{job="provender-serving"} == 1')
        _serving_traffic(serving.channel, 2.5)
        # Enough scrapes for rate() and increase() to have two samples of everything.
        wait_for(prometheus, "rate(provender_serving_feature_not_found_total[1m]) > 0")
        wait_for(prometheus, f'provender_ingestion_rows_written{{feature_table="{FRESH_TABLE}"}}')
        wait_for(prometheus, f'provender_core_jobs{{feature_table="{FRESH_TABLE}", status="DONE"}}')
        yield Stack(prometheus, pushgateway, core, serving, database_url, work)
    finally:
        for process in reversed(started):
            process.stop()
