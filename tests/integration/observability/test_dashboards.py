"""The chart's Grafana dashboards and alert rules, offline: structure (unique ids, a Prometheus datasource
variable that every panel and query uses, no dangling variables, a sane grid), and the chart rendering them
(one ConfigMap per dashboard for the Grafana sidecar, the rule groups in the PrometheusRule)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.helm import chart as c
from tests.integration.observability.conftest import DASHBOARDS, RULES, wrapped_rules
from tests.integration.observability.servers import PROMTOOL

pytestmark = pytest.mark.timeout(60)

BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__from", "__to"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def load(path) -> dict[str, Any]:
    return json.loads(path.read_text())


def all_panels(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def test_the_three_dashboards_ship():
    assert {p.stem for p in DASHBOARDS} == {"ingestion", "serving", "jobs"}
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_structure(path):
    board = load(path)
    panels = all_panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"

    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for name in ("project", "table"):
        assert variables[name]["type"] == "query" and variables[name]["datasource"] == DATASOURCE
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"

    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, (panel["title"], target["refId"])
            assert target["expr"].strip()
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]

    used = set()
    for text in strings(board):
        for m in VARIABLE.finditer(text):
            used.add(next(g for g in m.groups() if g))
    dangling = used - set(variables) - BUILTINS
    assert not dangling, f"{path.name} uses undefined variables {sorted(dangling)}"
    unused = set(variables) - used
    assert not unused, f"{path.name} defines unused variables {sorted(unused)}"

    # The grid: 24 columns, no two panels on the same cells.
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_rule_file_is_a_list_of_groups_with_alerts_that_say_what_and_how_bad():
    groups = yaml.safe_load(RULES.read_text())
    assert isinstance(groups, list)
    alerts = [r for g in groups for r in g["rules"]]
    assert {r["alert"] for r in alerts} >= {
        "ProvenderFeatureTableStale",
        "ProvenderIngestionFailing",
        "ProvenderServingLatencyHigh",
        "ProvenderRedisUnreachable",
    }
    for rule in alerts:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_chart_renders_dashboard_configmaps_and_the_prometheus_rule():
    extra = [{"name": "extra", "rules": [{"alert": "Extra", "expr": "vector(1)"}]}]
    docs = c.manifests(
        {
            "grafana": {"dashboards": {"enabled": True, "labels": {"grafana_folder": "provender"}}},
            "prometheusRule": {"enabled": True, "groups": extra},
        }
    )
    maps = {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == "ConfigMap" and "-dashboard-" in d["metadata"]["name"]
    }
    assert set(maps) == {f"provender-dashboard-{p.stem}" for p in DASHBOARDS}
    for path in DASHBOARDS:
        cm = maps[f"provender-dashboard-{path.stem}"]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["labels"]["grafana_folder"] == "provender"
        assert json.loads(cm["data"][path.name]) == load(path)
    rule = c.one(docs, "PrometheusRule", "provender")
    assert rule["spec"]["groups"] == extra + yaml.safe_load(RULES.read_text())
    # Off by default: nothing rendered.
    plain = c.manifests()
    assert not [d for d in plain if d["kind"] == "PrometheusRule" or "-dashboard-" in d["metadata"]["name"]]


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    return {"series": name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def _alert(project: str, table: str, summary: str, description: str, severity: str = "warning") -> dict:
    return {
        "exp_labels": {"severity": severity, "project": project, "feature_table": table},
        "exp_annotations": {"summary": summary, "description": description},
    }


PUSHED = {"job": "provender_ingestion", "project": "p"}
CORE = {"job": "provender-core", "instance": "core:9090", "project": "p"}
INGEST = {"job_type": "BATCH_INGESTION"}
FAILING = (
    "The latest offline-to-online ingestion of p/{t} failed. `provender jobs list` (or ListJobs) shows its "
    "error_message and log URI."
)
PROMTOOL_TESTS = {
    "evaluation_interval": "1m",
    "tests": [
        {   # freshness from the Pushgateway, and from Core's records when nothing is pushed
            "interval": "1m",
            "input_series": [
                _series("provender_ingestion_last_success_time_seconds", "0x40", **PUSHED, feature_table="stale"),
                _series("provender_ingestion_last_success_time_seconds", "0+60x40", **PUSHED, feature_table="fresh"),
                _series("provender_ingestion_last_success_time_seconds", "0x40", **PUSHED, feature_table="forever"),
                _series("provender_core_job_last_finish_time_seconds", "0x40", **CORE, **INGEST, status="DONE",
                        feature_table="unpushed"),
                _series("provender_core_feature_table_max_age_seconds", "600x40", **CORE, feature_table="stale"),
                _series("provender_core_feature_table_max_age_seconds", "600x40", **CORE, feature_table="fresh"),
                _series("provender_core_feature_table_max_age_seconds", "0x40", **CORE, feature_table="forever"),
                _series("provender_core_feature_table_max_age_seconds", "600x40", **CORE, feature_table="unpushed"),
            ],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "ProvenderFeatureTableStale", "exp_alerts": []},  # `for: 10m`
                {
                    "eval_time": "25m",
                    "alertname": "ProvenderFeatureTableStale",
                    "exp_alerts": [
                        _alert("p", t, f"Feature table p/{t} is stale",
                               f"The latest successful ingestion of p/{t} ended 25m 0s ago, longer than the "
                               "table's max_age: online lookups answer OUTSIDE_MAX_AGE for values not refreshed since.")
                        for t in ("stale", "unpushed")
                    ],
                },
            ],
        },
        {   # failing: pushed by the job, or Core's latest record an error newer than the latest success
            "interval": "1m",
            "input_series": [
                _series("provender_ingestion_last_run_success", "1x20", **PUSHED, feature_table="ok"),
                _series("provender_ingestion_last_run_success", "0x20", **PUSHED, feature_table="broken"),
                _series("provender_core_job_last_finish_time_seconds", "200x20", **CORE, **INGEST, status="ERROR",
                        feature_table="crashed"),
                _series("provender_core_job_last_finish_time_seconds", "100x20", **CORE, **INGEST, status="DONE",
                        feature_table="crashed"),
                _series("provender_core_job_last_finish_time_seconds", "100x20", **CORE, **INGEST, status="ERROR",
                        feature_table="recovered"),
                _series("provender_core_job_last_finish_time_seconds", "200x20", **CORE, **INGEST, status="DONE",
                        feature_table="recovered"),
                _series("provender_core_job_last_finish_time_seconds", "100x20", **CORE, **INGEST, status="ERROR",
                        feature_table="never_ok"),
            ],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": "ProvenderIngestionFailing",
                    "exp_alerts": [
                        _alert("p", t, f"Ingestion of p/{t} is failing", FAILING.format(t=t))
                        for t in ("broken", "crashed", "never_ok")
                    ],
                },
            ],
        },
        {   # Redis down on one Serving instance; p99 latency over 50 ms
            "interval": "1m",
            "input_series": [
                {"series": 'provender_serving_redis_up{instance="serving-a"}', "values": "0x10"},
                {"series": 'provender_serving_redis_up{instance="serving-b"}', "values": "1x10"},
                *[
                    {
                        "series": "provender_grpc_request_duration_seconds_bucket"
                        f'{{grpc_service="feast.serving.ServingService",grpc_method="GetOnlineFeaturesV2",le="{le}"}}',
                        "values": f"0+{n}x30",
                    }
                    for le, n in (("0.01", 10), ("0.1", 50), ("+Inf", 100))
                ],
            ],
            "alert_rule_test": [
                {
                    "eval_time": "5m",
                    "alertname": "ProvenderRedisUnreachable",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "critical", "instance": "serving-a"},
                            "exp_annotations": {
                                "summary": "Serving serving-a cannot reach Redis",
                                "description": "The online store does not answer Serving serving-a: lookups fail "
                                "with UNAVAILABLE.",
                            },
                        }
                    ],
                },
                {
                    "eval_time": "20m",
                    "alertname": "ProvenderServingLatencyHigh",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "warning"},
                            "exp_annotations": {
                                "summary": "Serving p99 latency is over 50 ms",
                                "description": "Online lookups' p99 latency over the last 5 minutes is 100ms.",
                            },
                        }
                    ],
                },
            ],
        },
    ],
}  # fmt: skip


def test_promtool_unit_tests_the_alerts(tmp_path):
    """`promtool test rules`: the alerts fire for what they are meant to, after their `for:`, and not otherwise."""
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip("promtool is not installed")
    rules = wrapped_rules(tmp_path)
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], **PROMTOOL_TESTS}, sort_keys=False))
    out = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stdout + out.stderr
