"""services/jobs/metrics_push.py against a real Pushgateway (Debian's prometheus-pushgateway on loopback)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from provender.jobs import metrics_push
from tests.integration.observability.servers import PUSHGATEWAY, Pushgateway

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not os.access(PUSHGATEWAY, os.X_OK), reason="prometheus-pushgateway is not installed"),
]

# What ingestion.IngestionSummary holds (asdict), as the job prints it.
REPORT = {
    "job": "offline_to_online_ingestion",
    "project": "fraud",
    "table": "driver_hourly",
    "start": "2026-11-20T00:00:00+00:00",
    "end": "2026-11-22T00:00:00+00:00",
    "rows_read": 144,
    "rows_in_window": 140,
    "rows_dead_lettered": 4,
    "keys": 3,
    "rows_written": 3,
    "rows_skipped_stale": 0,
    "max_event_time": "2026-11-21T23:00:00+00:00",
    "event_time_lag_seconds": 3600.0,
    "dead_letter_location": "file:///tmp/dl",
    "duration_seconds": 12.5,
}
GROUP = {"job": "provender_ingestion", "project": "fraud", "feature_table": "driver_hourly"}
RIDERS = GROUP | {"feature_table": "riders"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Pushgateway]:
    server = Pushgateway(Path(tmp_path_factory.mktemp("pushgateway")))
    yield server
    server.stop()


def samples(gateway: Pushgateway, **labels: str) -> dict[str, float]:
    """name{extra labels} -> value for the samples of the group selected by `labels`."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(gateway.metrics_text()):
        for s in family.samples:
            if all(s.labels.get(k) == v for k, v in labels.items()):
                extra = {k: v for k, v in s.labels.items() if k not in labels and k != "instance"}
                key = s.name + (
                    "{" + ",".join(f"{k}={v}" for k, v in sorted(extra.items())) + "}" if extra else ""
                )
                out[key] = s.value
    return out


def test_a_success_then_a_failure_keep_the_last_success_time(gateway):
    assert metrics_push.push_ingestion_metrics(
        gateway.url, REPORT, job_id="ingest-1", lag_seconds_samples=[30, 400, 4000, 90000], now=1_000.0
    )
    got = samples(gateway, **GROUP)
    assert got["provender_ingestion_rows_read"] == 144
    assert got["provender_ingestion_rows_written"] == 3
    assert got["provender_ingestion_rows_dead_lettered"] == 4
    assert got["provender_ingestion_rows_in_window"] == 140
    assert got["provender_ingestion_rows_skipped_stale"] == 0
    assert got["provender_ingestion_duration_seconds"] == 12.5
    assert got["provender_ingestion_last_success_time_seconds"] == 1_000.0
    assert got["provender_ingestion_last_run_time_seconds"] == 1_000.0
    assert got["provender_ingestion_last_run_success"] == 1
    assert got["provender_ingestion_last_run_info{job_id=ingest-1,outcome=success}"] == 1
    assert got["provender_ingestion_max_event_time_seconds"] == 1_795_302_000.0  # 2026-11-21T23:00Z
    assert got["provender_ingestion_event_time_lag_seconds_count"] == 4
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=60}"] == 1
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=3600}"] == 2
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=+Inf}"] == 4
    assert "push_time_seconds" in got

    # The next run fails before it has a report: outcome and time change, the last success stays.
    assert metrics_push.push_ingestion_metrics(
        gateway.url, None, job_id="ingest-2", project="fraud", table="driver_hourly", outcome="failure",
        duration_seconds=3.0, now=2_000.0,
    )  # fmt: skip
    got = samples(gateway, **GROUP)
    assert got["provender_ingestion_last_run_success"] == 0
    assert got["provender_ingestion_last_run_time_seconds"] == 2_000.0
    assert got["provender_ingestion_last_success_time_seconds"] == 1_000.0
    assert got["provender_ingestion_duration_seconds"] == 3.0
    info = [k for k in got if k.startswith("provender_ingestion_last_run_info")]
    assert info == [
        "provender_ingestion_last_run_info{job_id=ingest-2,outcome=failure}"
    ]  # replaced, one series
    assert got["provender_ingestion_rows_read"] == 144  # no report: the previous counts are kept


def test_without_samples_the_lag_histogram_holds_the_newest_rows_lag(gateway):
    report = REPORT | {"table": "lag_only", "event_time_lag_seconds": 5000.0}
    assert metrics_push.push_ingestion_metrics(gateway.url, report, job_id="ingest-3")
    got = samples(gateway, job="provender_ingestion", project="fraud", feature_table="lag_only")
    assert got["provender_ingestion_event_time_lag_seconds_count"] == 1
    assert got["provender_ingestion_event_time_lag_seconds_sum"] == 5000.0
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=3600}"] == 0
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=7200}"] == 1


def test_tables_are_separate_groups_and_a_deleted_table_leaves_nothing(gateway):
    other = REPORT | {"project": "fraud", "table": "riders", "rows_read": 7}
    assert metrics_push.push_ingestion_metrics(gateway.url, other, job_id="ingest-4")
    assert samples(gateway, **RIDERS)["provender_ingestion_rows_read"] == 7
    assert samples(gateway, **GROUP)["provender_ingestion_rows_read"] == 144
    metrics_push.delete_ingestion_metrics(gateway.url, "fraud", "riders")
    assert samples(gateway, **RIDERS) == {}
    assert samples(gateway, **GROUP)["provender_ingestion_rows_read"] == 144


def test_a_summary_dataclass_is_accepted_and_an_unreachable_gateway_does_not_raise(capsys):
    from dataclasses import make_dataclass

    summary_type = make_dataclass("Summary", [(k, object) for k in REPORT])
    registry, key = metrics_push.ingestion_registry(summary_type(**REPORT), job_id="j")
    assert key == {"project": "fraud", "feature_table": "driver_hourly"}
    assert registry.get_sample_value("provender_ingestion_rows_written") == 3
    assert not metrics_push.push_ingestion_metrics("http://127.0.0.1:9", REPORT, job_id="j", timeout=2)
    assert "could not push metrics" in capsys.readouterr().err
    assert not metrics_push.push_ingestion_metrics("", REPORT, job_id="j")
    with pytest.raises(ValueError, match="outcome"):
        metrics_push.ingestion_registry(REPORT, job_id="j", outcome="maybe")


def test_lag_counts_from_partitions_add_up_to_the_histogram_pushed(gateway):
    import numpy as np

    now_ns = 10_000 * 10**9
    # two partitions' event times: lags 0 s, 60 s (on a bound: le is inclusive), 61 s, 2 h, 30 days
    first = metrics_push.LagCounts.of_event_times(np.array([now_ns, now_ns - 60 * 10**9]), now_ns)
    second = metrics_push.LagCounts.of_event_times(
        np.array([now_ns - 61 * 10**9, now_ns - 7200 * 10**9, now_ns - 30 * 86400 * 10**9]), now_ns
    )
    total = first + second
    assert total == metrics_push.LagCounts.of([0, 60, 61, 7200, 30 * 86400])
    assert sum(total.counts) == 5 and total.sum_seconds == 60 + 61 + 7200 + 30 * 86400
    report = REPORT | {"table": "partitioned"}
    assert metrics_push.push_ingestion_metrics(gateway.url, report, job_id="ingest-5", lag_counts=total)
    got = samples(gateway, **GROUP | {"feature_table": "partitioned"})
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=60}"] == 2
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=300}"] == 3
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=7200}"] == 4
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=604800}"] == 4
    assert got["provender_ingestion_event_time_lag_seconds_bucket{le=+Inf}"] == 5
    assert got["provender_ingestion_event_time_lag_seconds_count"] == 5
