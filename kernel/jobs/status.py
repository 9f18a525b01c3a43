"""A job's status, one enum for launchers, Core's job records and the wire (its numbers are those of the wire enum
feast_spark.api.JobStatus; the database stores the names)."""

from __future__ import annotations

import enum


class JobStatus(enum.Enum):
    PENDING = 1
    RUNNING = 2
    DONE = 3
    ERROR = 4

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.ERROR)


# How the error message of a job stopped by CancelJob begins, whoever records it first (the launcher, when it
# sees the job ended, or Core's controller, which adds "(CancelJob)").
CANCELLED = "cancelled by request"
