"""Scheduled offline-to-online ingestion: cron schedules kept in Postgres, surviving restarts, run by the leading
Core (jobs/leader.py).

A run never happens twice, nor is lost, even when the leader dies in the middle of it: each due schedule is run
in one transaction holding its row lock (`FOR UPDATE SKIP LOCKED`: two Cores that both believe they lead skip
each other's), which starts the run's job and moves `next_run_at` on. If the Core dies after the job record was
made but before that commit, the schedule is still due at the same time when the next leader looks, and that
leader finds the job by its table and window (`_job_of_run`) instead of starting a second one; if it dies
before the job record, the run is simply done by the next leader."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from croniter import croniter
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from provender.core.jobs.controller import JobController
from provender.core.jobs.model import JobType
from provender.core.metrics import CoreMetrics
from provender.core.registry import validation
from provender.core.registry.database import Database
from provender.core.registry.schema import JobRow, ScheduleRow
from provender.kernel.errors import InvalidArgument, NotFound, ProvenderError
from provender.kernel.jobs import args as job_args

log = logging.getLogger(__name__)

# Stream control's transaction lock (jobs/streams.py): one stream tick at a time across replicas.
SCHEDULER_LOCK = 724292


def _always() -> bool:
    return True


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

    def run_due(self, now: datetime | None = None, leading: Callable[[], bool] = _always) -> list[str]:
        """Start the ingestions that are due (at most one per schedule, however many runs were missed);
        returns the ids of the jobs of the runs done. Stops before the next schedule once `leading()` is false
        (this Core lost the lead)."""
        now = now or datetime.now(UTC)
        with self.db.transaction() as s:
            due = s.execute(
                select(ScheduleRow.project, ScheduleRow.table_name)
                .where(ScheduleRow.next_run_at <= now)
                .order_by(ScheduleRow.next_run_at, ScheduleRow.project, ScheduleRow.table_name)
            ).all()
        started: list[str] = []
        for project, table_name in due:
            if not leading():
                log.info("schedules left to the new leader", extra={"left": len(due) - len(started)})
                break
            job_id = self._run_one(project, table_name, now)
            if job_id:
                started.append(job_id)
        return started

    def _run_one(self, project: str, table_name: str, now: datetime) -> str:
        """Run one due schedule: its job (started now, or found when a Core that died had started it) and the
        schedule moved on, under the schedule's row lock; the job id, or "" when none could be started."""
        with self.db.transaction() as s:
            row = s.scalars(
                select(ScheduleRow)
                .where(
                    ScheduleRow.project == project,
                    ScheduleRow.table_name == table_name,
                    ScheduleRow.next_run_at <= now,
                )
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:  # ran meanwhile, unscheduled, or another Core holds it
                return ""
            start, end = run_window(row.next_run_at, row.ingestion_timespan_days)
            job_id = _job_of_run(s, project, table_name, start, end)
            if job_id:
                log.info(
                    "scheduled run found started",
                    extra={"project": project, "table": table_name, "job_id": job_id, "run": end.isoformat()},
                )
            else:
                try:
                    job_id = self.controller.start_offline_to_online(project, table_name, start, end).id
                except ProvenderError as e:
                    log.warning(
                        "scheduled ingestion not started", extra={"table": table_name, "error": str(e)}
                    )
            if self.metrics is not None:
                self.metrics.schedule_ran(project, table_name, started=bool(job_id))
            if job_id:
                row.last_job_id = job_id
            row.last_run_at = now
            row.next_run_at = next_run(row.cron, now)
        return job_id


def run_window(run_at: datetime, timespan_days: int) -> tuple[datetime, datetime]:
    """The event-time window a run ingests: the `timespan_days` before the time it was due."""
    return run_at - timedelta(days=timespan_days), run_at


def _job_of_run(s: Session, project: str, table_name: str, start: datetime, end: datetime) -> str:
    """The job a run already has: an ingestion of the same table and window created since the run was due (by a
    Core that died before it could move the schedule on); "" when there is none. The window, not the job id,
    identifies it: the id also covers the table's spec, which may have changed since."""
    return (
        s.scalar(
            select(JobRow.id)
            .where(
                JobRow.project == project,
                JobRow.table_name == table_name,
                JobRow.type == JobType.BATCH_INGESTION.name,
                JobRow.created_at >= end,
                JobRow.args["start"].astext == job_args.format_timestamp(start),
                JobRow.args["end"].astext == job_args.format_timestamp(end),
            )
            .order_by(JobRow.created_at)
            .limit(1)
        )
        or ""
    )
