"""Jobs as the SDK shows them: status, waiting (with a progress bar in terminals and notebooks), outputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provender.errors import ProvenderError
from provender.proto.feast_spark.api import JobService_pb2 as pb
from provender.timestamps import from_timestamp

TERMINAL = ("DONE", "ERROR")


class JobFailed(ProvenderError):
    """A job ended in ERROR; the message carries its error and where its log is."""


class JobTimeout(ProvenderError):
    """A job did not finish within the time given."""


@dataclass(frozen=True)
class JobInfo:
    id: str
    type: str  # BATCH_INGESTION_JOB, STREAM_INGESTION_JOB, RETRIEVAL_JOB
    status: str  # JOB_STATUS_PENDING ... JOB_STATUS_ERROR, without the prefix
    start_time: datetime | None
    table_name: str
    output_location: str
    log_uri: str
    error_message: str

    @classmethod
    def from_proto(cls, job: pb.Job) -> JobInfo:
        meta = job.WhichOneof("meta")
        return cls(
            id=job.id,
            type=pb.JobType.Name(job.type),
            status=pb.JobStatus.Name(job.status).removeprefix("JOB_STATUS_"),
            start_time=from_timestamp(job.start_time) if job.HasField("start_time") else None,
            table_name=getattr(job, meta).table_name
            if meta in ("batch_ingestion", "stream_ingestion")
            else "",
            output_location=job.retrieval.output_location if meta == "retrieval" else "",
            log_uri=job.log_uri,
            error_message=job.error_message,
        )


class RemoteJob:
    """A job Core runs; `get_job` is how it asks Core about it."""

    def __init__(self, job_id: str, get_job: Callable[[str], JobInfo], cancel: Callable[[str], None]) -> None:
        self.id = job_id
        self._get_job = get_job
        self._cancel = cancel

    def info(self) -> JobInfo:
        return self._get_job(self.id)

    @property
    def status(self) -> str:
        return self.info().status

    def cancel(self) -> None:
        self._cancel(self.id)

    def wait(self, timeout: float = 600, poll: float = 1.0, progress: bool = True) -> JobInfo:
        """Block until the job is DONE (returned) or ERROR (JobFailed); JobTimeout after `timeout` seconds."""
        bar = _progress(self.id) if progress else None
        deadline = time.monotonic() + timeout
        try:
            while True:
                info = self.info()
                if bar is not None:
                    bar.set_postfix_str(info.status)
                    bar.update(0)
                if info.status == "DONE":
                    return info
                if info.status == "ERROR":
                    raise JobFailed(
                        f"job {self.id} failed: {info.error_message or 'no reason given'} (log: {info.log_uri})"
                    )
                if time.monotonic() > deadline:
                    raise JobTimeout(
                        f"job {self.id} is still {info.status} after {timeout:g}s; it keeps running"
                    )
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


class IngestionJob(RemoteJob):
    """An offline-to-online ingestion."""


class RetrievalJob(RemoteJob):
    """A historical retrieval; its output is a folder of parquet files."""

    def __init__(
        self,
        job_id: str,
        output_file_uri: str,
        get_job: Callable[[str], JobInfo],
        cancel: Callable[[str], None],
    ) -> None:
        super().__init__(job_id, get_job, cancel)
        self.output_file_uri = output_file_uri

    def get_output_file_uri(self, timeout: float = 600, progress: bool = True) -> str:
        """Wait for the job, then return where its parquet output is."""
        self.wait(timeout, progress=progress)
        return self.output_file_uri

    def to_df(self, timeout: float = 600, progress: bool = True) -> Any:
        """Wait for the job, then read its output into a pandas DataFrame."""
        import pyarrow.parquet as pq

        from provender.storage import filesystem

        fs, path = filesystem(self.get_output_file_uri(timeout, progress))
        return pq.read_table(path, filesystem=fs).to_pandas()


def _progress(job_id: str) -> Any:
    from tqdm.auto import tqdm

    # disable=None: shown in terminals and notebooks, silent when output goes to a file or a pipe.
    return tqdm(
        total=None,
        desc=f"job {job_id}",
        bar_format="{desc}: {postfix} [{elapsed}]",
        leave=False,
        disable=None,
    )
