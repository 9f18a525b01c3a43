"""What Core knows about a job, independent of any transport."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provender.kernel.jobs.status import JobStatus


class JobType(enum.Enum):
    """Numbers are those of the wire enum JobType."""

    BATCH_INGESTION = 1
    STREAM_INGESTION = 2
    RETRIEVAL = 4


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
