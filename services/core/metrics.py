"""Core's own Prometheus metrics (requests and latency per RPC come from the shared interceptor).

Two kinds:
- counters recorded as things happen: job submissions, job failures (counted once, when a job record turns
  ERROR), schedule runs; and whether this replica leads (`provender_core_leader`, jobs/leader.py);
- gauges read from Postgres when Prometheus scrapes (`CoreStateCollector`): registry object counts, job records
  by project, table, type and status, the last time each kind of job of a table finished, each table's max_age
  (so that alert rules can compare freshness with it) and the schedules. One grouped query per kind of object;
  answers are reused for `min_interval` seconds so that several scrapers cost one round of queries.

The catalogue of every name lives in docs/metrics.md (tests/unit/test_metrics_catalogue.py keeps them in step).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from provender.kernel.jobs.status import CANCELLED, JobStatus

if TYPE_CHECKING:
    from provender.core.jobs.model import Job
    from provender.core.registry.database import Database

log = logging.getLogger(__name__)

JOB_TYPES = ("BATCH_INGESTION", "STREAM_INGESTION", "RETRIEVAL")
JOB_STATUSES = tuple(s.name for s in JobStatus)

# Why a job record turned ERROR, from the message the controller records (see controller.py).
SUBMIT_PREFIX = "submission failed"
CANCEL_PREFIX = CANCELLED


def failure_reason(error_message: str) -> str:
    if error_message.startswith(SUBMIT_PREFIX):
        return "submit"
    if error_message.startswith(CANCEL_PREFIX):
        return "cancelled"
    return "run"


class CoreMetrics:
    """The counters Core records, and the collector of what its database knows (attach a database to it)."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY, min_interval: float = 5.0) -> None:
        table_labels = ("project", "feature_table", "job_type")
        self.job_submissions = Counter(
            "provender_core_job_submissions",
            "Jobs handed to the Spark launcher (including re-submissions after a Core restart), by project, "
            "feature table (empty for retrieval) and job type.",
            table_labels,
            registry=registry,
        )
        self.job_failures = Counter(
            "provender_core_job_failures",
            "Jobs whose record turned ERROR, counted once per job, by project, feature table, job type and "
            "reason (submit: the launcher refused it; run: the Spark application failed; cancelled: CancelJob).",
            (*table_labels, "reason"),
            registry=registry,
        )
        self.schedule_runs = Counter(
            "provender_core_schedule_runs",
            "Due ingestion schedules this Core ran, by project, feature table and result "
            "(started: an ingestion job was started or was already running; error: it could not be started).",
            ("project", "feature_table", "result"),
            registry=registry,
        )
        self.leader = Gauge(
            "provender_core_leader",
            "1 on the Core replica that leads (runs the reconcile loop, the schedules and stream control), "
            "0 on the others; the replicas' sum is 1 when all is well.",
            registry=registry,
        )
        self.state = CoreStateCollector(min_interval=min_interval)
        if registry is not None:
            registry.register(self.state)

    # hooks the job controller, job store and schedules call ---------------------------------------------

    def job_submitted(self, job: Job) -> None:
        self.job_submissions.labels(job.project, job.table_name, job.type.name).inc()

    def job_finished(self, job: Job) -> None:
        """A job record reached a terminal status (called once per job, by the store)."""
        if job.status.name == "ERROR":
            reason = failure_reason(job.error_message)
            self.job_failures.labels(job.project, job.table_name, job.type.name, reason).inc()

    def schedule_ran(self, project: str, table_name: str, started: bool) -> None:
        self.schedule_runs.labels(project, table_name, "started" if started else "error").inc()

    def leadership_changed(self, leading: bool) -> None:
        self.leader.set(1 if leading else 0)


def _seconds(value: object) -> float:
    """A protobuf JSON Duration ("10800s", "1.5s") in seconds; 0 when absent or unreadable."""
    if not isinstance(value, str) or not value.endswith("s"):
        return 0.0
    try:
        return float(value[:-1])
    except ValueError:
        return 0.0


_QUERIES = {
    "entities": """
        SELECT p.name, count(e.name) FROM projects p LEFT JOIN entities e ON e.project = p.name
        WHERE NOT p.archived GROUP BY p.name""",
    "tables": """
        SELECT p.name, t.name, t.spec->>'max_age' FROM projects p JOIN feature_tables t ON t.project = p.name
        WHERE NOT p.archived""",
    "projects": "SELECT name FROM projects WHERE NOT archived",
    "jobs": """
        SELECT project, table_name, type, status, count(*),
               extract(epoch FROM max(finished_at)), extract(epoch FROM max(created_at))
        FROM jobs GROUP BY project, table_name, type, status""",
    "schedules": """
        SELECT project, table_name, extract(epoch FROM next_run_at), extract(epoch FROM last_run_at)
        FROM schedules""",
}


class CoreStateCollector(Collector):
    """Gauges from Core's Postgres, read on scrape. With no database attached it exports only
    `provender_core_database_up 0`; a failed query never fails the scrape (the gauge says 0 instead)."""

    def __init__(self, min_interval: float = 5.0) -> None:
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._databases: list[Database] = []
        self._cached: tuple[float, list[Metric]] | None = None

    def attach(self, db: Database) -> Callable[[], None]:
        """Read from `db` (the most recently attached one wins); returns the function that detaches it."""
        with self._lock:
            self._databases.append(db)
            self._cached = None

        def detach() -> None:
            with self._lock:
                if db in self._databases:
                    self._databases.remove(db)
                self._cached = None

        return detach

    def describe(self) -> Iterable[Metric]:
        return self._families().values()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.min_interval:
                yield from self._cached[1]
                return
            db = self._databases[-1] if self._databases else None
            metrics = self._read(db)
            self._cached = (now, metrics)
        yield from metrics

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        job_labels = ["project", "feature_table", "job_type", "status"]
        return {
            "projects": GaugeMetricFamily(
                "provender_core_projects", "Projects in the registry (not archived)."
            ),
            "entities": GaugeMetricFamily(
                "provender_core_entities", "Entities in the registry, by project.", labels=["project"]
            ),
            "tables": GaugeMetricFamily(
                "provender_core_feature_tables",
                "Feature tables in the registry, by project.",
                labels=["project"],
            ),
            "max_age": GaugeMetricFamily(
                "provender_core_feature_table_max_age_seconds",
                "A feature table's max_age (0: values never expire), by project and feature table.",
                labels=["project", "feature_table"],
            ),
            "jobs": GaugeMetricFamily(
                "provender_core_jobs",
                "Job records Core keeps, by project, feature table (empty for retrieval), job type and status.",
                labels=job_labels,
            ),
            "jobs_by_status": GaugeMetricFamily(
                "provender_core_jobs_by_status",
                "Job records Core keeps, by job type and status (every combination, 0 when none).",
                labels=["job_type", "status"],
            ),
            "last_finish": GaugeMetricFamily(
                "provender_core_job_last_finish_time_seconds",
                "Unix time the latest job of this project, feature table, type and terminal status finished.",
                labels=job_labels,
            ),
            "last_created": GaugeMetricFamily(
                "provender_core_job_last_creation_time_seconds",
                "Unix time the latest job of this project, feature table, type and status was created.",
                labels=job_labels,
            ),
            "next_run": GaugeMetricFamily(
                "provender_core_schedule_next_run_time_seconds",
                "Unix time an ingestion schedule runs next, by project and feature table.",
                labels=["project", "feature_table"],
            ),
            "last_run": GaugeMetricFamily(
                "provender_core_schedule_last_run_time_seconds",
                "Unix time an ingestion schedule last ran, by project and feature table.",
                labels=["project", "feature_table"],
            ),
            "up": GaugeMetricFamily(
                "provender_core_database_up",
                "1 when the last read of the registry and job records for these metrics succeeded, else 0.",
            ),
            "duration": GaugeMetricFamily(
                "provender_core_state_collect_duration_seconds",
                "Time the last read of the registry and job records for these metrics took.",
            ),
        }

    def _read(self, db: Database | None) -> list[Metric]:
        families = self._families()
        began = time.perf_counter()
        up = 0.0
        if db is not None:
            try:
                rows = self._query(db)
            except Exception as e:  # Postgres away: say so through the gauge, never fail the scrape
                log.warning("could not read Core state for metrics: %s", type(e).__name__)
            else:
                up = 1.0
                self._fill(families, rows)
        families["up"].add_metric([], up)
        families["duration"].add_metric([], time.perf_counter() - began)
        return list(families.values())

    @staticmethod
    def _query(db: Database) -> dict[str, list[tuple]]:
        with db.transaction() as s:
            return {name: [tuple(r) for r in s.execute(text(sql))] for name, sql in _QUERIES.items()}

    @staticmethod
    def _fill(families: dict[str, GaugeMetricFamily], rows: dict[str, list[tuple]]) -> None:
        families["projects"].add_metric([], len(rows["projects"]))
        tables_per_project: dict[str, int] = {name: 0 for (name,) in rows["projects"]}
        for project, count in rows["entities"]:
            families["entities"].add_metric([project], count)
        for project, table, max_age in rows["tables"]:
            tables_per_project[project] = tables_per_project.get(project, 0) + 1
            families["max_age"].add_metric([project, table], _seconds(max_age))
        for project, count in sorted(tables_per_project.items()):
            families["tables"].add_metric([project], count)
        by_status = {(t, s): 0 for t in JOB_TYPES for s in JOB_STATUSES}
        for project, table, job_type, status, count, finished, created in rows["jobs"]:
            labels = [project, table or "", job_type, status]
            families["jobs"].add_metric(labels, count)
            by_status[(job_type, status)] = by_status.get((job_type, status), 0) + count
            if finished is not None:
                families["last_finish"].add_metric(labels, float(finished))
            if created is not None:
                families["last_created"].add_metric(labels, float(created))
        for (job_type, status), count in by_status.items():
            families["jobs_by_status"].add_metric([job_type, status], count)
        for project, table, next_run, last_run in rows["schedules"]:
            families["next_run"].add_metric([project, table], float(next_run))
            if last_run is not None:
                families["last_run"].add_metric([project, table], float(last_run))
