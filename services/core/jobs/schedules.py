"""Scheduled offline-to-online ingestion: cron schedules kept in Postgres, run by the Core that holds the
scheduler lock (so several replicas never run a schedule twice), surviving restarts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from croniter import croniter
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert

from provender.core.jobs.controller import JobController
from provender.core.metrics import CoreMetrics
from provender.core.registry import validation
from provender.core.registry.database import Database
from provender.core.registry.schema import ScheduleRow
from provender.kernel.errors import InvalidArgument, NotFound, ProvenderError

log = logging.getLogger(__name__)

SCHEDULER_LOCK = 724292


def next_run(cron: str, after: datetime) -> datetime:
    return croniter(cron, after).get_next(datetime)


def shortest_interval(cron: str, after: datetime, runs: int = 24) -> float:
    """The shortest time in seconds between two of the schedule's next `runs` runs."""
    times = croniter(cron, after)
    previous = times.get_next(datetime)
    shortest = float("inf")
    for _ in range(runs - 1):
        current = times.get_next(datetime)
        shortest = min(shortest, (current - previous).total_seconds())
        previous = current
    return shortest


class Schedules:
    def __init__(
        self,
        db: Database,
        controller: JobController,
        metrics: CoreMetrics | None = None,
        min_interval_seconds: float = 60.0,
    ) -> None:
        """`min_interval_seconds`: schedules that would start ingestions more often are refused."""
        self.db = db
        self.controller = controller
        self.metrics = metrics
        self.min_interval_seconds = min_interval_seconds

    def schedule(self, project: str, table_name: str, timespan_days: int, cron: str) -> datetime:
        """Create or replace the schedule of a table; returns its next run time."""
        project = validation.project_name(project)
        self.controller.registry.get_feature_table(project, validation.check_name("table_name", table_name))
        if timespan_days <= 0:
            raise InvalidArgument("ingestion_timespan", timespan_days, "a number of days greater than 0")
        if not cron or not croniter.is_valid(cron):
            raise InvalidArgument("cron_schedule", cron, 'a cron expression such as "0 * * * *" (hourly)')
        now = datetime.now(UTC)
        interval = shortest_interval(cron, now)
        if interval < self.min_interval_seconds:
            raise InvalidArgument(
                "cron_schedule",
                cron,
                f"a schedule that starts an ingestion at most every {self.min_interval_seconds:g} s (Core's "
                f"--schedule-min-interval-seconds); this one starts one every {interval:g} s",
            )
        upcoming = next_run(cron, now)
        values = {
            "project": project,
            "table_name": table_name,
            "cron": cron,
            "ingestion_timespan_days": timespan_days,
            "next_run_at": upcoming,
            "created_at": now,
        }
        with self.db.transaction() as s:
            s.execute(
                insert(ScheduleRow)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=["project", "table_name"],
                    set_={"cron": cron, "ingestion_timespan_days": timespan_days, "next_run_at": upcoming},
                )
            )
        return upcoming

    def unschedule(self, project: str, table_name: str) -> None:
        project = validation.project_name(project)
        with self.db.transaction() as s:
            gone = s.execute(
                delete(ScheduleRow)
                .where(ScheduleRow.project == project, ScheduleRow.table_name == table_name)
                .returning(ScheduleRow.table_name)
            ).first()
        if gone is None:
            raise NotFound("ingestion schedule of table", table_name, project)

    def list(self) -> list[ScheduleRow]:
        with self.db.transaction() as s:
            return list(s.scalars(select(ScheduleRow).order_by(ScheduleRow.project, ScheduleRow.table_name)))

    def run_due(self, now: datetime | None = None) -> list[str]:
        """Start the ingestions that are due (at most one per schedule, however many runs were missed);
        returns the job ids started. Does nothing unless this Core holds the scheduler lock."""
        now = now or datetime.now(UTC)
        started: list[str] = []
        with self.db.transaction() as s:
            if not s.scalar(text(f"SELECT pg_try_advisory_xact_lock({SCHEDULER_LOCK})")):
                return started
            due = s.scalars(select(ScheduleRow).where(ScheduleRow.next_run_at <= now).with_for_update()).all()
            for row in due:
                end = row.next_run_at
                start = end - timedelta(days=row.ingestion_timespan_days)
                try:
                    job = self.controller.start_offline_to_online(row.project, row.table_name, start, end)
                    row.last_job_id = job.id
                    started.append(job.id)
                except ProvenderError as e:
                    log.warning(
                        "scheduled ingestion not started", extra={"table": row.table_name, "error": str(e)}
                    )
                    if self.metrics is not None:
                        self.metrics.schedule_ran(row.project, row.table_name, started=False)
                else:
                    if self.metrics is not None:
                        self.metrics.schedule_ran(row.project, row.table_name, started=True)
                row.last_run_at = now
                row.next_run_at = next_run(row.cron, now)
        return started
