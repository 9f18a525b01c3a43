"""Jobs as the SDK shows them: status, waiting (with a progress bar in terminals and notebooks), what a finished
job reported, outputs; with Feast 0.9's job methods (get_status, get_output_file_uri, ...) beside our own."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provender.kernel.errors import ProvenderError
from provender.kernel.timestamps import from_timestamp
from provender.proto.feast_spark.api import JobService_pb2 as pb
from provender.rendering import html_table


class JobFailed(ProvenderError):
    """A job ended in ERROR; the message carries its error and where its log is."""


SparkJobFailure = JobFailed  # Feast 0.9's name (feast_spark.pyspark.abc.SparkJobFailure)


class JobTimeout(ProvenderError, TimeoutError):
    """A job did not finish within the time given (a TimeoutError, as Feast 0.9 raises)."""


class SparkJobStatus(enum.Enum):
    """Feast 0.9's job states (feast_spark.pyspark.abc.SparkJobStatus), number for number."""

    STARTING = 0
    IN_PROGRESS = 1
    FAILED = 2
    COMPLETED = 3


_SPARK_STATUS = {
    "PENDING": SparkJobStatus.STARTING,
    "RUNNING": SparkJobStatus.IN_PROGRESS,
    "DONE": SparkJobStatus.COMPLETED,
    "ERROR": SparkJobStatus.FAILED,
}

# What an ingestion's report counts, in the order people read them.
_INGESTION_COUNTS = (
    ("rows_read", "rows read"),
    ("rows_in_window", "in the window"),
    ("rows_written", "written"),
    ("rows_skipped_stale", "skipped as older than stored"),
    ("rows_dead_lettered", "dead-lettered"),
)


@dataclass(frozen=True)
class JobInfo:
    id: str
    type: str  # BATCH_INGESTION_JOB, STREAM_INGESTION_JOB, RETRIEVAL_JOB
    status: str  # PENDING, RUNNING, DONE or ERROR
    start_time: datetime | None
    table_name: str
    output_location: str
    log_uri: str
    error_message: str
    # What the finished job reported (rows read, written, ...; see `outcome`), when Core could read it; for a
    # running stream job, its latest micro-batch (rows, event-time lag, offsets per partition).
    report: dict[str, Any] = field(default_factory=dict)
    hash: str = ""  # a stream job's table spec hash: one job per hash runs

    @classmethod
    def from_proto(cls, job: pb.Job, report: dict[str, Any] | None = None) -> JobInfo:
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
            report=dict(report or {}),
            hash=job.hash,
        )

    @property
    def spark_status(self) -> SparkJobStatus:
        return _SPARK_STATUS[self.status]

    def outcome(self) -> str:
        """One line on what the job did: for an ingestion the rows read, written, skipped as older than what
        was stored, and dead-lettered (and where those went); for a retrieval the entity rows."""
        r = self.report
        if not r:
            return self.status if not self.error_message else f"{self.status}: {self.error_message}"
        if "rows_written" in r:
            text = ", ".join(f"{r[key]:,} {label}" for key, label in _INGESTION_COUNTS if key in r)
            if r.get("rows_dead_lettered") and r.get("dead_letter_location"):
                text += f" (dead letters: {r['dead_letter_location']})"
            return f"{self.status}: {text}"
        if "entity_rows" in r:
            return f"{self.status}: {r['entity_rows']:,} entity rows"
        return self.status

    def _repr_html_(self) -> str:
        rows = [(k, v) for k, v in vars(self).items() if k != "report" and v not in ("", None)]
        if self.report:
            rows.append(("outcome", self.outcome().split(": ", 1)[-1]))
        return html_table(f"job {self.id}", ["", ""], rows, header=False)


class RemoteJob:
    """A job Core runs. `get_job` is how it asks Core about it (with the report once the job is DONE)."""

    def __init__(
        self,
        job_id: str,
        get_job: Callable[[str], JobInfo],
        cancel: Callable[[str], None],
        timeout: float = 600,
        start_time: datetime | None = None,
        log_uri: str = "",
    ) -> None:
        self.id = job_id
        self._get_job = get_job
        self._cancel = cancel
        self._timeout = timeout
        self._start_time = start_time
        self._log_uri = log_uri

    def info(self) -> JobInfo:
        return self._get_job(self.id)

    @property
    def status(self) -> str:
        """PENDING, RUNNING, DONE or ERROR."""
        return self.info().status

    def cancel(self) -> None:
        self._cancel(self.id)

    def wait(self, timeout: float | None = None, poll: float = 1.0, progress: bool = True) -> JobInfo:
        """Block until the job is DONE (its info returned, with what it reported) or ERROR (JobFailed);
        JobTimeout after `timeout` seconds (default: the client's job_timeout)."""
        timeout = self._timeout if timeout is None else timeout
        bar = _progress(self.id) if progress else None
        deadline = time.monotonic() + timeout
        info: JobInfo | None = None
        try:
            while True:
                info = self.info()
                if bar is not None:
                    bar.set_description_str(f"job {self.id}: {info.status}", refresh=True)
                if info.status == "DONE":
                    if bar is not None:
                        bar.set_description_str(f"job {self.id}: {info.outcome()}", refresh=True)
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

    # Feast 0.9's job methods ------------------------------------------------------------------------------

    def get_id(self) -> str:
        return self.id

    def get_status(self) -> SparkJobStatus:
        return self.info().spark_status

    def get_start_time(self) -> datetime | None:
        if self._start_time is None:
            self._start_time = self.info().start_time
        return self._start_time

    def get_log_uri(self) -> str:
        if not self._log_uri:
            self._log_uri = self.info().log_uri
        return self._log_uri

    def get_error_message(self) -> str:
        return self.info().error_message

    def wait_termination(self, timeout_sec: float | None = None) -> None:
        """Block until the job ends; SparkJobFailure (JobFailed) when it failed."""
        self.wait(timeout_sec, progress=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    def _repr_html_(self) -> str:
        return self.info()._repr_html_()


class IngestionJob(RemoteJob):
    """An offline-to-online ingestion. `wait()` returns what it did: rows read, written, skipped as older than
    what was stored, dead-lettered (`JobInfo.outcome()`)."""

    def __init__(self, job_id: str, *args: Any, table_name: str = "", **kwargs: Any) -> None:
        super().__init__(job_id, *args, **kwargs)
        self._table_name = table_name

    def get_feature_table(self) -> str:
        if not self._table_name:
            self._table_name = self.info().table_name
        return self._table_name


class RetrievalJob(RemoteJob):
    """A historical retrieval; its output is a folder of parquet files. `to_df()` reads it with the dtypes of
    the entity DataFrame it was given (time zones included) and the feature dtypes of provender.kernel.value_types."""

    def __init__(
        self,
        job_id: str,
        output_file_uri: str,
        get_job: Callable[[str], JobInfo],
        cancel: Callable[[str], None],
        entity_dtypes: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(job_id, get_job, cancel, **kwargs)
        self.output_file_uri = output_file_uri
        self._entity_dtypes = dict(entity_dtypes or {})

    def get_output_file_uri(
        self, timeout_sec: float | None = None, block: bool = True, progress: bool = False
    ) -> str | None:
        """Where the parquet output is, once the job is DONE (JobFailed if it failed). With block=False, None
        while the job has not completed, as in Feast 0.9."""
        if not block and self.info().status != "DONE":
            return None
        self.wait(timeout_sec, progress=progress)
        return self.output_file_uri

    def to_df(self, timeout: float | None = None, progress: bool = True) -> Any:
        """Wait for the job, then read its output into a pandas DataFrame."""
        import pyarrow.parquet as pq

        from provender.dtypes import arrow_to_pandas_dtype, restore_dtypes
        from provender.storage import filesystem

        self.wait(timeout, progress=progress)
        fs, path = filesystem(self.output_file_uri)
        frame = pq.read_table(path, filesystem=fs).to_pandas(types_mapper=arrow_to_pandas_dtype)
        return restore_dtypes(frame, self._entity_dtypes)


def _progress(job_id: str) -> Any:
    from importlib.util import find_spec

    # tqdm.auto draws a widget in notebooks, which needs ipywidgets (the `notebook` extra); without it, the
    # text bar, rather than tqdm's warning.
    if find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    # disable=None: shown in terminals and notebooks, silent when output goes to a file or a pipe.
    return tqdm(total=None, desc=f"job {job_id}", bar_format="{desc} [{elapsed}]", disable=None)
