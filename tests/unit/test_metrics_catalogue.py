"""docs/metrics.md against the code: every metric a process registers is in the catalogue with its type and
labels, and every metric the catalogue lists is registered by the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from provender.core.metrics import CoreMetrics
from provender.jobs import metrics_push
from provender.jobs.stream_metrics import StreamMetrics
from provender.server.metrics import RpcMetrics
from provender.serving.metrics import ServingMetrics

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
SECTIONS = {
    "Every gRPC server": "rpc",
    "Core": "core",
    "Serving": "serving",
    "Jobs": "jobs",
    "Stream jobs": "streams",
}
ROW = re.compile(r"^\|\s*`(provender_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|\s*([^|]*)\|\s*([^|]+)\|\s*([^|]+)\|\s*$")
TYPES = {"counter", "gauge", "histogram", "summary"}

Entry = tuple[str, tuple[str, ...]]  # type, sorted label names


def catalogue() -> dict[str, dict[str, Entry]]:
    out: dict[str, dict[str, Entry]] = {v: {} for v in SECTIONS.values()}
    section = None
    for line in CATALOGUE.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            section = next((v for k, v in SECTIONS.items() if heading.startswith(k)), None)
            continue
        m = ROW.match(line)
        if m is None:
            continue
        assert section is not None, f"metric row outside a process section: {line}"
        name, kind, labels, unit, meaning = m.groups()
        assert kind in TYPES, line
        assert unit.strip() and meaning.strip(), f"unit and meaning are required: {line}"
        names = tuple(sorted(re.findall(r"`([a-z_]+)`", labels))) if labels.strip() != "-" else ()
        assert name not in out[section], f"{name} listed twice"
        out[section][name] = (kind, names)
    return out


def exported(registry: CollectorRegistry, extra_labels: tuple[str, ...] = ()) -> dict[str, Entry]:
    """name as queried (counters with _total) -> (type, label names) for every collector in `registry`."""
    out: dict[str, Entry] = {}

    def add(name: str, kind: str, labels: tuple[str, ...]) -> None:
        if kind == "counter" and not name.endswith("_total"):
            name += "_total"
        out[name] = (kind, tuple(sorted((*labels, *extra_labels))))

    for collector in list(registry._collector_to_names):  # private: the labels of unobserved metrics
        if hasattr(collector, "_labelnames") and hasattr(collector, "_type"):  # Counter, Gauge, Histogram
            add(collector._name, collector._type, tuple(collector._labelnames))
        else:  # custom collectors: their families, described with their label names
            for family in collector.collect():
                add(family.name, family.type, tuple(getattr(family, "_labelnames", ())))
    return out


def code() -> dict[str, dict[str, Entry]]:
    rpc, core, serving, streams = (
        CollectorRegistry(),
        CollectorRegistry(),
        CollectorRegistry(),
        CollectorRegistry(),
    )
    RpcMetrics(rpc)
    CoreMetrics(core)
    ServingMetrics(serving)
    StreamMetrics("p", "t", streams)
    report = {
        "project": "p", "table": "t", "rows_read": 1, "rows_in_window": 1, "rows_dead_lettered": 0,
        "keys": 1, "rows_written": 1, "rows_skipped_stale": 0, "max_event_time": "2026-11-20T00:00:00+00:00",
        "event_time_lag_seconds": 1.0, "duration_seconds": 1.0,
    }  # fmt: skip
    jobs, key = metrics_push.ingestion_registry(report, job_id="j")
    grouping = ("job", *key)
    return {
        "rpc": exported(rpc),
        "core": exported(core),
        "serving": exported(serving),
        "jobs": exported(jobs, grouping),
        "streams": exported(streams),
    }


@pytest.mark.parametrize("section", sorted(SECTIONS.values()))
def test_the_catalogue_matches_what_the_code_registers(section):
    documented, registered = catalogue()[section], code()[section]
    assert sorted(set(registered) - set(documented)) == [], "registered but not in docs/metrics.md"
    assert sorted(set(documented) - set(registered)) == [], "in docs/metrics.md but not registered"
    for name, entry in registered.items():
        assert documented[name] == entry, f"{name}: docs say {documented[name]}, code has {entry}"


def test_names_follow_the_conventions():
    for section in catalogue().values():
        for name, (kind, _) in section.items():
            assert name.startswith("provender_")
            assert name.endswith("_total") == (kind == "counter"), name
            assert not re.search(r"_(ms|milliseconds|minutes|hours|bytes_total_total)$", name), name
            if "time" in name.split("_") and kind == "gauge":
                assert name.endswith("_time_seconds"), name


def test_a_failed_run_pushes_a_subset_of_the_catalogued_job_metrics():
    registry, _ = metrics_push.ingestion_registry(None, job_id="j", table="t", outcome="failure")
    failed = exported(registry, ("job", "project", "feature_table"))
    assert set(failed) <= set(catalogue()["jobs"])
    assert "provender_ingestion_last_success_time_seconds" not in failed
