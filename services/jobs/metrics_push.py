"""What a batch ingestion job tells Prometheus, through a Pushgateway, when its run ends.

Grouping and replacement. Every run of one feature table pushes to the group
`{job="provender_ingestion", project=<project>, feature_table=<table>}` with POST (`pushadd_to_gateway`): the
metric families a push carries replace the same families of the previous push of that table, and families it
does not carry are kept. A failed run does not carry `provender_ingestion_last_success_time_seconds` nor
`provender_ingestion_max_event_time_seconds`, so the time of the last success (freshness) survives failures; a
run without a report (it failed before counting) keeps the previous row counts. So there is exactly one series
per table and metric: no per-run series piles up, and the cardinality is that of the tables.

Retention. The Pushgateway never expires what it holds. The group of a deleted table is removed with
`delete_ingestion_metrics` (meant for Core's DeleteFeatureTable; not wired yet, so an operator runs it, or
`curl -X DELETE <gateway>/metrics/job/provender_ingestion/project/<p>/feature_table/<t>`); every group carries
the Pushgateway's own `push_time_seconds`, so a group that nothing has refreshed for long can be found and alerted
on. Prometheus must scrape the Pushgateway with `honor_labels: true` so that `job` stays `provender_ingestion`.

A failure to push is reported on stderr and never fails the job.
"""

from __future__ import annotations

import bisect
import math
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.exposition import delete_from_gateway, pushadd_to_gateway
from prometheus_client.registry import Collector

JOB = "provender_ingestion"
SUCCESS = "success"
FAILURE = "failure"
OUTCOMES = (SUCCESS, FAILURE)

# Event-time lag: from a minute to a week (a daily batch of yesterday's data sits around 1 day).
LAG_BUCKETS = (
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 3 * 3600.0, 6 * 3600.0, 12 * 3600.0,
    86400.0, 2 * 86400.0, 4 * 86400.0, 7 * 86400.0, math.inf,
)  # fmt: skip

# Report field -> gauge name (the figures of the table's latest run that produced a report).
ROW_GAUGES = {
    "rows_read": (
        "provender_ingestion_rows_read",
        "Rows the latest run read from the batch source (the date partitions of its window).",
    ),
    "rows_in_window": (
        "provender_ingestion_rows_in_window",
        "Valid rows of the latest run whose event time is in its window.",
    ),
    "rows_dead_lettered": (
        "provender_ingestion_rows_dead_lettered",
        "Invalid rows the latest run wrote to the dead letter instead of the online store.",
    ),
    "rows_written": (
        "provender_ingestion_rows_written",
        "Entity rows the latest run wrote to the online store (one per entity key).",
    ),
    "rows_skipped_stale": (
        "provender_ingestion_rows_skipped_stale",
        "Entity rows the latest run did not write because a newer row was already stored.",
    ),
}


@dataclass(frozen=True)
class LagCounts:
    """An event-time lag distribution: rows per LAG_BUCKETS bucket (not cumulative) and the sum of the lags.
    Partitions compute theirs; `+` adds them up."""

    counts: tuple[int, ...] = (0,) * len(LAG_BUCKETS)
    sum_seconds: float = 0.0

    def __post_init__(self) -> None:
        if len(self.counts) != len(LAG_BUCKETS):
            raise ValueError(f"counts: expected {len(LAG_BUCKETS)} buckets, got {len(self.counts)}")

    def __add__(self, other: LagCounts) -> LagCounts:
        return LagCounts(
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            self.sum_seconds + other.sum_seconds,
        )

    @classmethod
    def of(cls, lags_seconds: Iterable[float]) -> LagCounts:
        counts = [0] * len(LAG_BUCKETS)
        total = 0.0
        for lag in lags_seconds:
            lag = max(0.0, float(lag))
            counts[bisect.bisect_left(LAG_BUCKETS, lag)] += 1
            total += lag
        return cls(tuple(counts), total)

    @classmethod
    def of_event_times(cls, event_ns: Any, now_ns: int) -> LagCounts:
        """From a numpy array of event times in ns since the epoch (vectorised: for Arrow batches in a job)."""
        import numpy as np

        lags = np.maximum((now_ns - np.asarray(event_ns, dtype=np.int64)) / 1e9, 0.0)
        index = np.searchsorted(np.asarray(LAG_BUCKETS), lags, side="left")
        counts = np.bincount(index, minlength=len(LAG_BUCKETS))
        return cls(tuple(int(c) for c in counts), float(lags.sum()))


class _LagHistogram(Collector):
    def __init__(self, lag: LagCounts) -> None:
        self.lag = lag

    def collect(self) -> Iterable[HistogramMetricFamily]:
        cumulative, buckets = 0, []
        for le, count in zip(LAG_BUCKETS, self.lag.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if math.isinf(le) else repr(le), cumulative))
        yield HistogramMetricFamily(
            "provender_ingestion_event_time_lag_seconds",
            "Event-time lag of the rows the latest run wrote: the run's end minus each row's event time "
            "(only the newest row's when the job gives no distribution).",
            buckets=buckets,
            sum_value=self.lag.sum_seconds,
        )


def _as_dict(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    if is_dataclass(report) and not isinstance(report, type):
        return asdict(report)
    if isinstance(report, Mapping):
        return dict(report)
    raise TypeError(f"report: expected the ingestion summary or its dict, got {type(report).__name__}")


def _iso_to_unix(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def ingestion_registry(
    report: Any,
    *,
    job_id: str,
    project: str | None = None,
    table: str | None = None,
    outcome: str = SUCCESS,
    duration_seconds: float | None = None,
    lag_seconds_samples: Iterable[float] | None = None,
    lag_counts: LagCounts | None = None,
    now: float | None = None,
) -> tuple[CollectorRegistry, dict[str, str]]:
    """The metrics of one run in a fresh registry, and the grouping key they are pushed under."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome: expected one of {OUTCOMES}, got {outcome!r}")
    data = _as_dict(report)
    project = project or data.get("project") or "default"
    table = table or data.get("table") or ""
    if not table:
        raise ValueError("table: the feature table's name is required (not in the report either)")
    now = time.time() if now is None else now
    duration = duration_seconds if duration_seconds is not None else data.get("duration_seconds")
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        g = Gauge(name, doc, tuple(labels or ()), registry=registry)
        (g.labels(**labels) if labels else g).set(value)

    gauge(
        "provender_ingestion_last_run_info",
        "Always 1: the job id and outcome (success or failure) of the table's latest run.",
        1,
        {"job_id": job_id, "outcome": outcome},
    )
    gauge(
        "provender_ingestion_last_run_success",
        "1 when the table's latest run succeeded, 0 when it failed.",
        1 if outcome == SUCCESS else 0,
    )
    gauge(
        "provender_ingestion_last_run_time_seconds",
        "Unix time the table's latest run ended (either outcome).",
        now,
    )
    if duration is not None:
        gauge(
            "provender_ingestion_duration_seconds", "How long the table's latest run took.", float(duration)
        )
    if outcome == SUCCESS:
        gauge(
            "provender_ingestion_last_success_time_seconds",
            "Unix time the table's latest successful run ended (its freshness); kept when later runs fail.",
            now,
        )
        max_event = _iso_to_unix(data.get("max_event_time"))
        if max_event is not None:
            gauge(
                "provender_ingestion_max_event_time_seconds",
                "Newest event time a successful run wrote to the online store (Unix time).",
                max_event,
            )
    if data:
        for key, (name, doc) in ROW_GAUGES.items():
            if data.get(key) is not None:
                gauge(name, doc, float(data[key]))
        if lag_counts is None:
            samples = list(lag_seconds_samples) if lag_seconds_samples is not None else []
            if not samples and data.get("event_time_lag_seconds") is not None:
                samples = [float(data["event_time_lag_seconds"])]
            lag_counts = LagCounts.of(samples)
        registry.register(_LagHistogram(lag_counts))
    return registry, {"project": project, "feature_table": table}


def push_ingestion_metrics(
    pushgateway_url: str,
    report: Any,
    *,
    job_id: str,
    project: str | None = None,
    table: str | None = None,
    outcome: str = SUCCESS,
    duration_seconds: float | None = None,
    lag_seconds_samples: Iterable[float] | None = None,
    lag_counts: LagCounts | None = None,
    timeout: float = 10.0,
    now: float | None = None,
) -> bool:
    """Push one run's metrics (see the module docstring); True when the Pushgateway took them.

    `report` is the job's summary (IngestionSummary or its dict), or None when the run failed before it had
    one. `project` and `table` default to the report's; `duration_seconds` to the report's duration.
    The lag histogram holds `lag_counts` (rows per LAG_BUCKETS bucket, e.g. summed over the job's partitions
    with `LagCounts.of_event_times`), else `lag_seconds_samples` (per-row lags), else the report's
    `event_time_lag_seconds` alone.
    """
    if not pushgateway_url:
        return False
    registry, grouping_key = ingestion_registry(
        report,
        job_id=job_id,
        project=project,
        table=table,
        outcome=outcome,
        duration_seconds=duration_seconds,
        lag_seconds_samples=lag_seconds_samples,
        lag_counts=lag_counts,
        now=now,
    )
    try:
        pushadd_to_gateway(
            pushgateway_url, job=JOB, registry=registry, grouping_key=grouping_key, timeout=timeout
        )
    except Exception as e:  # URLError, HTTPError, timeouts: the job's own result matters more
        print(f"warning: could not push metrics to {pushgateway_url}: {e}", file=sys.stderr, flush=True)
        return False
    return True


def delete_ingestion_metrics(pushgateway_url: str, project: str, table: str, timeout: float = 10.0) -> None:
    """Remove a table's group from the Pushgateway (when the table is deleted)."""
    delete_from_gateway(
        pushgateway_url, job=JOB, grouping_key={"project": project, "feature_table": table}, timeout=timeout
    )
