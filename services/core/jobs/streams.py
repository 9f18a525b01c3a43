"""The stream control loop: exactly one healthy stream job for every feature table with a Kafka stream source.

Each tick, on the Core that holds the scheduler lock (so several replicas never act twice), compares the registry
with the stream job records:
- a table with a stream source and no active job of its current spec hash → start one (StartStreamToOnline…);
- a job of an older spec hash (the table's entities, features, sources or max_age changed) → cancelled once the current one is RUNNING, so the online
  store has no gap while the new job starts;
- a table deleted, its project archived, or its stream source removed → its jobs cancelled;
- the current job failed → started again after a backoff that doubles with each failed attempt in a row (up to
  `max_backoff_seconds`); each failure stays in its own job record. A job cancelled by request (CancelJob) is
  not restarted until its table changes or someone starts it again.
Domain code: no gRPC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from provender.core.jobs.controller import JobController, stream_spec_hash
from provender.core.jobs.model import Job, JobStatus, JobType
from provender.core.jobs.schedules import SCHEDULER_LOCK
from provender.core.registry.database import Database
from provender.core.registry.service import StoredTable
from provender.kernel.errors import ProvenderError
from provender.kernel.jobs.status import CANCELLED

log = logging.getLogger(__name__)

CANCELLED_BY_CONTROL = "cancelled by the stream control loop"


@dataclass(frozen=True)
class Action:
    """What a tick did: "start", "restart", "cancel" (a job of another spec, or of a table without a stream)."""

    kind: str
    project: str
    table: str
    job_id: str
    reason: str = ""


def has_stream(stored: StoredTable) -> bool:
    return stored.spec.stream_source.WhichOneof("options") == "kafka_options"


def backoff(failures: int, base_seconds: float, max_seconds: float) -> timedelta:
    """How long to wait before attempt `failures + 1` after `failures` failed attempts in a row."""
    if failures <= 0:
        return timedelta(0)
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** (failures - 1)))


class StreamControl:
    def __init__(
        self,
        db: Database,
        controller: JobController,
        backoff_seconds: float = 10.0,
        max_backoff_seconds: float = 600.0,
    ) -> None:
        self.db = db
        self.controller = controller
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._said: dict[tuple[str, str, str], str] = {}  # the last failure to start, logged once each

    def enabled(self) -> bool:
        """Streams write the online store: without one (no --redis-url) the loop has nothing to do."""
        return bool(self.controller.settings.redis_url)

    def tick(self, now: datetime | None = None) -> list[Action]:
        """One pass; does nothing unless this Core holds the scheduler lock (held for the pass)."""
        if not self.enabled():
            return []
        with self.db.transaction() as s:
            if not s.scalar(text(f"SELECT pg_try_advisory_xact_lock({SCHEDULER_LOCK})")):
                return []
            return self._pass(now or datetime.now(UTC))

    def _pass(self, now: datetime) -> list[Action]:
        wanted = self._streamed_tables()
        jobs: dict[tuple[str, str], list[Job]] = {}
        for job in self.controller.store.list(include_terminated=True, types=[JobType.STREAM_INGESTION]):
            jobs.setdefault((job.project, job.table_name), []).append(job)  # newest first
        actions: list[Action] = []
        for key, stored in wanted.items():
            actions += self._keep_one(key, stored, jobs.get(key, []), now)
        for key, table_jobs in jobs.items():
            if key not in wanted:
                actions += self._cancel(key, _active(table_jobs), "the table has no stream source any more")
        return actions

    def _streamed_tables(self) -> dict[tuple[str, str], StoredTable]:
        registry = self.controller.registry
        return {
            (project, stored.spec.name): stored
            for project in registry.list_projects()
            for stored in registry.list_feature_tables(project, {})
            if has_stream(stored)
        }

    def _keep_one(
        self, key: tuple[str, str], stored: StoredTable, jobs: list[Job], now: datetime
    ) -> list[Action]:
        project, table = key
        spec_hash = stream_spec_hash(stored, self.controller.registry.kafka_bootstrap_servers)
        current = [j for j in jobs if j.spec_hash == spec_hash]
        older = _active([j for j in jobs if j.spec_hash != spec_hash])
        active = _active(current)
        actions: list[Action] = []
        if not active:
            latest = current[0] if current else None
            if latest is not None and latest.error_message.startswith(CANCELLED):
                return self._cancel(key, older, "its table changed")  # the user stopped it: leave it stopped
            failures = _failures_in_a_row(current)
            if latest is not None and latest.finished_at is not None:
                wait = backoff(failures, self.backoff_seconds, self.max_backoff_seconds)
                if now < latest.finished_at + wait:
                    return actions
            try:
                job = self.controller.start_stream_to_online(project, table)
            except ProvenderError as e:
                log.warning(
                    "stream job not started", extra={"project": project, "table": table, "error": str(e)}
                )
                return actions
            kind = "restart" if failures else "start"
            log.info(f"stream job {kind}ed", extra={"job_id": job.id, "project": project, "table": table})
            actions.append(Action(kind, project, table, job.id, latest.error_message if latest else ""))
            active = [job]
        if older and any(j.status is JobStatus.RUNNING for j in active):
            actions += self._cancel(key, older, f"replaced by a job of the table's new spec ({active[0].id})")
        return actions

    def _cancel(self, key: tuple[str, str], jobs: Iterable[Job], reason: str) -> list[Action]:
        actions = []
        for job in jobs:
            try:
                self.controller.cancel_job(job.id, f"{CANCELLED_BY_CONTROL}: {reason}")
            except ProvenderError as e:
                log.warning("stream job not cancelled", extra={"job_id": job.id, "error": str(e)})
                continue
            log.info("stream job cancelled", extra={"job_id": job.id, "reason": reason})
            actions.append(Action("cancel", key[0], key[1], job.id, reason))
        return actions


def _active(jobs: Iterable[Job]) -> list[Job]:
    return [j for j in jobs if not j.status.terminal]


def _failures_in_a_row(jobs: list[Job]) -> int:
    """Failed attempts (newest first) before the latest one that ran without failing, or cancelled."""
    n = 0
    for job in jobs:
        if job.status is not JobStatus.ERROR or job.error_message.startswith(
            (CANCELLED, CANCELLED_BY_CONTROL)
        ):
            break
        n += 1
    return n
