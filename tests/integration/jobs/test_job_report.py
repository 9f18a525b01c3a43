"""How a failed job's reason is read back from its log (what a launcher puts in error_message)."""

from __future__ import annotations

from pathlib import Path

from provender.kernel.jobs import report as job_report

SPARK_INFO = "26/11/23 04:48:01 INFO DAGScheduler: Job 4 finished: collect at ingestion.py:244, took 3359 ms"


def _log(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "driver.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_job_error_line_wins(tmp_path) -> None:
    log = _log(
        tmp_path,
        SPARK_INFO,
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "ValueError: something deep",
        "PROVENDER_JOB_ERROR table t.batch_source.file_url: 'file:///x' is not valid; expected a readable location",
        SPARK_INFO,
    )
    assert job_report.failure_reason(log) == (
        "table t.batch_source.file_url: 'file:///x' is not valid; expected a readable location"
    )


def test_else_the_last_exception_line(tmp_path) -> None:
    log = _log(
        tmp_path,
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "py4j.protocol.Py4JJavaError: An error occurred while calling o42.parquet.",
        "\tat org.apache.spark.Foo.bar(Foo.scala:1)",
        SPARK_INFO,
    )
    assert (
        job_report.failure_reason(log)
        == "py4j.protocol.Py4JJavaError: An error occurred while calling o42.parquet."
    )


def test_else_spark_error_lines_without_info_noise_or_stack_frames(tmp_path) -> None:
    log = _log(
        tmp_path,
        SPARK_INFO,
        "26/11/23 04:48:02 ERROR SparkContext: Error initializing SparkContext.",
        "\tat org.apache.spark.SparkContext.<init>(SparkContext.scala:1)",
        SPARK_INFO,
    )
    assert (
        job_report.failure_reason(log)
        == "26/11/23 04:48:02 ERROR SparkContext: Error initializing SparkContext."
    )


def test_summary_is_found_and_a_missing_log_says_nothing(tmp_path) -> None:
    log = _log(tmp_path, SPARK_INFO, 'PROVENDER_JOB_SUMMARY {"rows_written": 3}', SPARK_INFO)
    assert job_report.find_summary(log) == {"rows_written": 3}
    assert job_report.failure_reason(tmp_path / "missing.log") == ""
