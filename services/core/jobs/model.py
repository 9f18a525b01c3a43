"""What Core knows about a job, independent of any transport."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class JobType(enum.Enum):
    """Numbers are those of the wire enum JobType."""

    BATCH_INGESTION = 1
    STREAM_INGESTION = 2
    RETRIEVAL = 4


class JobStatus(enum.Enum):
    """Numbers are those of the wire enum JobStatus."""

    PENDING = 1
    RUNNING = 2
    DONE = 3
    ERROR = 4

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.ERROR)


@dataclass(frozen=True)
class Job:
    id: str
    type: JobType
    status: JobStatus
    project: str
    table_name: str
    launcher: str
    handle: str
    args: dict[str, Any]
    output_uri: str
    log_uri: str
    error_message: str
    spec_hash: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
