"""Job records in Postgres. Creating a job is serialised per deterministic base id (an advisory lock), so two
identical requests, or a request retried across a Core restart, never start two jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from provender.core.jobs.ids import attempt_id
from provender.core.jobs.model import Job, JobStatus, JobType
from provender.core.registry.database import Database
from provender.core.registry.schema import JobRow
from provender.kernel.errors import NotFound

ACTIVE = (JobStatus.PENDING.name, JobStatus.RUNNING.name)


def _now() -> datetime:
    return datetime.now(UTC)


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        type=JobType[row.type],
        status=JobStatus[row.status],
        project=row.project,
        table_name=row.table_name,
        launcher=row.launcher,
        handle=row.handle,
        args=row.args,
        output_uri=row.output_uri,
        log_uri=row.log_uri,
        error_message=row.error_message,
        spec_hash=row.spec_hash,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


class JobStore:
    def __init__(self, db: Database, on_finished: Callable[[Job], None] | None = None) -> None:
        self.db = db
        # told once per job, when its record reaches a terminal status (Core's metrics count failures)
        self.on_finished = on_finished

    def create_unless_active(
        self,
        base_id: str,
        job_type: JobType,
        project: str,
        table_name: str,
        launcher: str,
        args: dict[str, Any],
        output_uri: str = "",
        spec_hash: str = "",
    ) -> tuple[Job, bool]:
        """The active job with this base id, or a new PENDING attempt; the flag says whether it is new."""
        with self.db.transaction() as s:
            s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:b))"), {"b": base_id})
            active = s.scalars(
                select(JobRow).where(JobRow.base_id == base_id, JobRow.status.in_(ACTIVE)).limit(1)
            ).first()
            if active is not None:
                return _job(active), False
            attempts = (
                s.scalar(select(func.count()).select_from(JobRow).where(JobRow.base_id == base_id)) or 0
            )
            row = JobRow(
                id=attempt_id(base_id, attempts + 1),
                base_id=base_id,
                type=job_type.name,
                status=JobStatus.PENDING.name,
                project=project,
                table_name=table_name,
                spec_hash=spec_hash,
                launcher=launcher,
                handle="",
                args=args,
                output_uri=output_uri,
                log_uri="",
                error_message="",
                created_at=_now(),
            )
            s.add(row)
            s.flush()
            return _job(row), True

    def launched(self, job_id: str, handle: str, log_uri: str) -> Job:
        with self.db.transaction() as s:
            row = self._row(s, job_id)
            row.handle, row.log_uri, row.started_at = handle, log_uri, _now()
            return _job(row)

    def set_status(self, job_id: str, status: JobStatus, error_message: str = "") -> Job:
        """Move a job to `status`; a terminal job never changes again."""
        with self.db.transaction() as s:
            row = self._row(s, job_id, lock=True)
            if JobStatus[row.status].terminal:
                return _job(row)
            row.status = status.name
            if error_message:
                row.error_message = error_message[:8000]
            if status.terminal:
                row.finished_at = _now()
            job = _job(row)
        if status.terminal and self.on_finished is not None:
            self.on_finished(job)
        return job

    def get(self, job_id: str) -> Job:
        with self.db.transaction() as s:
            return _job(self._row(s, job_id))

    def list(
        self,
        project: str | None = None,
        table_name: str = "",
        include_terminated: bool = False,
        types: Iterable[JobType] = (),
    ) -> list[Job]:
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id)
        if project is not None:
            query = query.where(JobRow.project == project)
        if table_name:
            query = query.where(JobRow.table_name == table_name)
        if not include_terminated:
            query = query.where(JobRow.status.in_(ACTIVE))
        names = [t.name for t in types]
        if names:
            query = query.where(JobRow.type.in_(names))
        with self.db.transaction() as s:
            return [_job(r) for r in s.scalars(query)]

    def active(self) -> list[Job]:
        return self.list(include_terminated=False)

    def latest_per_table(self, project: str, tables: Iterable[str], job_type: JobType) -> dict[str, Job]:
        """The newest job of `job_type` for each of `tables`."""
        out: dict[str, Job] = {}
        with self.db.transaction() as s:
            for table in tables:
                row = s.scalars(
                    select(JobRow)
                    .where(
                        JobRow.project == project, JobRow.table_name == table, JobRow.type == job_type.name
                    )
                    .order_by(JobRow.created_at.desc())
                    .limit(1)
                ).first()
                if row is not None:
                    out[table] = _job(row)
        return out

    def mark_error_if_unlaunched(self, job_id: str, message: str) -> None:
        with self.db.transaction() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.in_(ACTIVE), JobRow.handle == "")
                .values(status=JobStatus.ERROR.name, error_message=message, finished_at=_now())
            )

    @staticmethod
    def _row(s: Session, job_id: str, lock: bool = False) -> JobRow:
        row = s.get(JobRow, job_id, with_for_update=lock)
        if row is None:
            raise NotFound("job", job_id, hint="ListJobs shows the jobs Core knows")
        return row
