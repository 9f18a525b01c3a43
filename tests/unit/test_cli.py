"""The user commands' first-hour edges, without servers: relative times, missing files, unwrapped output,
addresses."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from provender import commands
from provender.remote_job import JobInfo


def test_relative_start_as_the_readme_writes_it():
    args = commands.parser("ingest").parse_args(
        commands._attach_time_values(["--table", "t", "--start", "-2d", "--end", "-1h"])
    )
    now = datetime.now(UTC)
    assert abs(args.start - (now - timedelta(days=2))) < timedelta(seconds=5)
    assert abs(args.end - (now - timedelta(hours=1))) < timedelta(seconds=5)


def test_apply_of_a_missing_file_is_one_line_without_a_traceback(capsys, tmp_path):
    missing = tmp_path / "missing.yaml"
    assert commands.main("apply", ["-f", str(missing), "--core-url", "127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"provender apply: file: {str(missing)!r} is not valid; expected a readable YAML file "
        "(No such file or directory)"
    )


def test_a_url_with_a_scheme_says_what_an_address_is(capsys):
    assert commands.main("projects", ["list", "--core-url", "http://core.example:6565"]) == 1
    err = capsys.readouterr().err
    assert "Core URL: 'http://core.example:6565' is not valid; expected host:port with no scheme" in err
    assert "Traceback" not in err


def test_urls_in_tables_and_lines_are_never_broken(capsys):
    url = "file:///var/lib/provender/staging/" + "x" * 150 + "/driver.log"
    commands._table("jobs", ["id", "log"], [("job-" + "a" * 40, url)])
    commands.console.print(f"output: {url}")
    out = capsys.readouterr().out
    assert sum(url in line for line in out.splitlines()) == 2


class _Jobs:
    """A client that answers the job calls of `provender jobs` from fixed JobInfos."""

    def __init__(self, *jobs: JobInfo) -> None:
        self.jobs = {j.id: j for j in jobs}
        self.asked: dict = {}

    def get_job(self, job_id: str) -> JobInfo:
        return self.jobs[job_id]

    def list_jobs(self, **asked) -> list[JobInfo]:
        self.asked = asked
        return list(self.jobs.values())


def _stream_job(status: str = "RUNNING", report: dict | None = None) -> JobInfo:
    return JobInfo(
        id="stream-0123456789abcdef-2",
        type="STREAM_INGESTION_JOB",
        status=status,
        start_time=datetime(2026, 12, 1, 3, 20, tzinfo=UTC),
        table_name="driver_trips",
        output_location="",
        log_uri="file:///p/jobs/stream-0123456789abcdef-2/driver.log",
        error_message="",
        report=report or {},
        hash="426917cbc5a3cf71",
    )


def _run_jobs(client: _Jobs, *argv: str) -> None:
    commands.jobs(client, commands.parser("jobs").parse_args(list(argv)))  # type: ignore[arg-type]


def test_jobs_describe_shows_a_streams_hash_latest_micro_batch_and_offsets(capsys):
    report = {
        "batch": 7, "project": "default", "table": "driver_trips", "rows_read": 1200, "rows_written": 1180,
        "rows_skipped_stale": 15, "rows_dead_lettered": 5, "duration_seconds": 0.84,
        "max_event_time": 1796095315.0, "max_kafka_timestamp": 1796095325.285, "event_time_lag_seconds": 2.5,
        "offsets": {"10": 77, "2": 4511, "0": 12}, "time": "2026-12-01T03:23:07.870093+00:00",
    }  # fmt: skip
    _run_jobs(_Jobs(_stream_job(report=report)), "describe", "stream-0123456789abcdef-2")
    out = capsys.readouterr().out
    assert "hash: 426917cbc5a3cf71" in out and "report:" not in out  # the report as tables, not a dict
    lines = [" ".join(line.replace("│", " ").split()) for line in out.splitlines()]
    assert "latest micro-batch (#7)" in lines
    for row in ("at 2026-12-01T03:23:07.870093+00:00", "rows read 1200", "rows written 1180",
                "rows skipped (older than stored) 15", "rows dead-lettered 5", "event-time lag 2.5 s",
                "newest Kafka timestamp 2026-12-01T03:22:05.285000+00:00"):  # fmt: skip
        assert row in lines, out
    offsets = lines[lines.index("last offsets") :]
    assert [line for line in offsets if line[:1].isdigit()] == ["0 12", "2 4511", "10 77"]  # by partition


def test_jobs_describe_of_a_stream_without_a_micro_batch_says_why(capsys):
    _run_jobs(_Jobs(_stream_job()), "describe", "stream-0123456789abcdef-2")
    assert (
        "latest micro-batch: none (Spark is starting, or no message has arrived)" in capsys.readouterr().out
    )
    _run_jobs(_Jobs(_stream_job(status="ERROR")), "describe", "stream-0123456789abcdef-2")
    assert "latest micro-batch: none (the job is not running)" in capsys.readouterr().out


def test_jobs_describe_prints_brackets_in_messages_as_they_are(capsys):
    message = "StreamingQueryException: [STREAM_FAILED] Query [id = fd87] terminated"
    job = dataclasses.replace(_stream_job(status="ERROR"), error_message=message)
    _run_jobs(_Jobs(job), "describe", job.id)
    assert f"error_message: {job.error_message}" in capsys.readouterr().out


def test_jobs_list_by_type(capsys):
    client = _Jobs(_stream_job())
    _run_jobs(client, "list", "--type", "stream", "--active")
    assert client.asked["job_type"] == "stream" and client.asked["include_terminated"] is False
    out = capsys.readouterr().out
    assert "stream jobs" in out and "stream-0123456789abcdef-2" in out
    _run_jobs(client, "list")
    assert client.asked["job_type"] is None
    try:
        commands.parser("jobs").parse_args(["list", "--type", "streams"])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("--type streams was accepted")
