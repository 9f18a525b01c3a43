"""Job objects as a Feast 0.9 notebook and our own users use them, without servers: Core's answers come from
a scripted sequence of JobInfo snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from provender.remote_job import (
    IngestionJob,
    JobInfo,
    JobTimeout,
    RetrievalJob,
    SparkJobFailure,
    SparkJobStatus,
)

REPORT = {
    "rows_read": 3600,
    "rows_in_window": 3600,
    "rows_written": 50,
    "rows_skipped_stale": 0,
    "rows_dead_lettered": 2,
    "dead_letter_location": "file:///tmp/dead",
}


def info(status: str, **extra: object) -> JobInfo:
    fields = {
        "id": "job-1",
        "type": "BATCH_INGESTION_JOB",
        "status": status,
        "start_time": datetime(2026, 11, 30, tzinfo=UTC),
        "table_name": "driver_hourly",
        "output_location": "",
        "log_uri": "file:///tmp/job-1/driver.log",
        "error_message": "",
    }
    return JobInfo(**{**fields, **extra})  # type: ignore[arg-type]


def ingestion(*states: JobInfo) -> tuple[IngestionJob, list[str]]:
    """A job whose Core answers the states in order, then the last one forever."""
    answers: Iterator[JobInfo] = iter(states)
    cancelled: list[str] = []

    def get(job_id: str) -> JobInfo:
        return next(answers, states[-1])

    return IngestionJob("job-1", get, cancelled.append, table_name="driver_hourly"), cancelled


def test_feast09_status_polling_reaches_completed():
    job, cancelled = ingestion(info("PENDING"), info("RUNNING"), info("DONE", report=REPORT))
    seen = [job.get_status(), job.get_status(), job.get_status()]
    assert seen == [SparkJobStatus.STARTING, SparkJobStatus.IN_PROGRESS, SparkJobStatus.COMPLETED]
    assert (job.get_id(), job.get_feature_table()) == ("job-1", "driver_hourly")
    assert job.get_start_time() == datetime(2026, 11, 30, tzinfo=UTC)
    job.cancel()
    assert cancelled == ["job-1"]


def test_wait_says_what_an_ingestion_did():
    job, _ = ingestion(info("RUNNING"), info("DONE", report=REPORT))
    done = job.wait(poll=0, progress=False)
    assert done.outcome() == (
        "DONE: 3,600 rows read, 3,600 in the window, 50 written, 0 skipped as older than stored, "
        "2 dead-lettered (dead letters: file:///tmp/dead)"
    )
    assert "50 written" in done._repr_html_()


def test_progress_bar_reads_job_then_state(capsys):
    import tqdm

    job, _ = ingestion(info("RUNNING"), info("DONE", report=REPORT))
    bar_texts: list[str] = []
    original = tqdm.tqdm.set_description_str

    def record(self, desc=None, refresh=True):
        bar_texts.append(desc)
        return original(self, desc, refresh)

    tqdm.tqdm.set_description_str = record  # type: ignore[method-assign]
    try:
        job.wait(poll=0, progress=True)
    finally:
        tqdm.tqdm.set_description_str = original  # type: ignore[method-assign]
    assert bar_texts[0] == "job job-1: RUNNING" and bar_texts[-1].startswith(
        "job job-1: DONE: 3,600 rows read"
    )
    assert ", RUNNING" not in capsys.readouterr().err


def test_failure_is_feast09s_spark_job_failure_and_names_the_log():
    job, _ = ingestion(info("ERROR", error_message="table gone"))
    with pytest.raises(SparkJobFailure, match=r"table gone \(log: file:///tmp/job-1/driver.log\)"):
        job.wait_termination(timeout_sec=5)


def test_timeout_is_a_timeout_error():
    job, _ = ingestion(info("RUNNING"))
    with pytest.raises(TimeoutError):
        job.wait(timeout=0, poll=0, progress=False)
    assert issubclass(JobTimeout, TimeoutError)


def test_output_uri_without_blocking_is_none_until_completed():
    states = iter([info("RUNNING"), info("DONE")])
    job = RetrievalJob("job-1", "file:///tmp/out", lambda _: next(states), lambda _: None)
    assert job.get_output_file_uri(block=False) is None
    assert job.get_output_file_uri(timeout_sec=5) == "file:///tmp/out"
