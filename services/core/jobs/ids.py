"""Deterministic job ids: the same request gets the same id, so a retried or repeated request finds the job it
already started instead of launching a second one. A new attempt after a finished one gets the next suffix."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from provender.core.jobs.model import JobType
from provender.kernel.errors import InvalidArgument

_PREFIX = {
    JobType.BATCH_INGESTION: "ingest",
    JobType.STREAM_INGESTION: "stream",
    JobType.RETRIEVAL: "retrieve",
}


def base_id(job_type: JobType, request: dict[str, Any]) -> str:
    """`<kind>-<16 hex digits>` from the canonical JSON of what the request asks for."""
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{_PREFIX[job_type]}-{digest}"


def attempt_id(base: str, attempt: int) -> str:
    """The id of the n-th attempt (1-based); the first attempt's id is the base id itself."""
    return base if attempt == 1 else f"{base}-{attempt}"


_JOB_ID = re.compile(r"^(ingest|stream|retrieve)-[0-9a-f]{16}(-[1-9][0-9]{0,5})?$")


def check_job_id(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise InvalidArgument(
            "job_id", job_id, "a job id like ingest-0123456789abcdef (as StartXxx or ListJobs return)"
        )
    return job_id
