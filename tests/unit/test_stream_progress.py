"""What a stream job reads off Spark's progress reports (consumer lag in offsets) and what it tells Prometheus."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from provender.jobs.stream_ingestion import consumer_lag, topic_pattern
from provender.jobs.stream_metrics import BatchOutcome, StreamMetrics


def progress(latest, end) -> dict:
    return {
        "sources": [{"description": "KafkaV2[Subscribe[trips]]", "latestOffset": latest, "endOffset": end}]
    }


def test_consumer_lag_is_what_the_topic_has_beyond_the_job_over_all_partitions():
    latest = '{"trips":{"0":120,"1":40}}'
    assert consumer_lag(progress(latest, '{"trips":{"0":100,"1":40}}')) == 20
    assert consumer_lag(progress({"trips": {"0": 5, "1": 7}}, None)) == 12  # nothing read yet
    assert consumer_lag(progress(latest, latest)) == 0


def test_no_figure_rather_than_a_failure_when_spark_has_none():
    assert consumer_lag(None) is None
    assert consumer_lag({"sources": []}) is None
    assert consumer_lag(progress("null", "null")) is None  # right after a restart
    assert consumer_lag(progress(None, None)) is None
    assert consumer_lag(progress("not json", None)) is None


def test_a_batch_updates_the_series_a_dashboard_reads():
    registry = CollectorRegistry()
    metrics = StreamMetrics("p", "trips", registry)
    metrics.batch(BatchOutcome(10, 7, 2, 1, 0.4, max_event_time=990.0, max_kafka_timestamp=995.0), now=1000.0)
    metrics.lag(42)
    labels = {"project": "p", "feature_table": "trips"}

    def value(name: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("provender_stream_rows_written_total") == 7
    assert value("provender_stream_rows_skipped_stale_total") == 2
    assert value("provender_stream_rows_dead_lettered_total") == 1
    assert value("provender_stream_event_lag_seconds") == 10.0
    assert value("provender_stream_last_kafka_timestamp_seconds") == 995.0
    assert value("provender_stream_consumer_lag_offsets") == 42
    assert value("provender_stream_batch_duration_seconds_count") == 1


def test_the_topic_pattern_matches_the_topic_alone():
    import re

    pattern = topic_pattern("driver.trips-v1_2")
    assert re.fullmatch(pattern, "driver.trips-v1_2")
    assert not re.fullmatch(pattern, "driverXtrips-v1_2") and not re.fullmatch(pattern, "driver.trips-v1_23")


def test_the_latest_readable_progress_line_is_the_report_even_with_the_jvms_output_glued_on(tmp_path):
    from provender.kernel.jobs.report import PROGRESS_PREFIX, find_summary

    log = tmp_path / "driver.log"
    log.write_text(
        f'{PROGRESS_PREFIX}{{"batch": 1, "rows_written": 3}}\n'
        "26/12/01 04:00:00 INFO KafkaConsumer: Seeking to offset 3\n"
        f'{PROGRESS_PREFIX}{{"batch": 2, "rows_written": 5}}26/12/01 04:00:01 INFO SparkContext: glued\n'
        f"{PROGRESS_PREFIX}{{not json\n"
    )
    assert find_summary(log) == {"batch": 2, "rows_written": 5}
