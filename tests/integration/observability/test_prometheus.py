"""Every dashboard panel query and every alert expression through a real Prometheus that scrapes real Core,
Serving and Pushgateway processes (see conftest.py for what was produced before the queries run)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import time

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.observability.conftest import (
    DASHBOARDS,
    FRESH_TABLE,
    PROJECT,
    REPO,
    RULES,
    STALE_TABLE,
    needs_binaries,
    wait_for,
    wrapped_rules,
)
from tests.integration.observability.servers import PROMTOOL, http_get
from tests.unit.test_metrics_catalogue import catalogue

pytestmark = [needs_binaries, pytest.mark.timeout(120)]

LABEL_VALUES = re.compile(r"^label_values\((?:(?P<metric>.+),\s*)?(?P<label>\w+)\)$")


def substitute(expr: str, project: str = PROJECT, table: str = FRESH_TABLE) -> str:
    """Grafana's variables as Grafana would fill them for one project and table."""
    values = {
        "project": project,
        "table": table,
        "datasource": "prometheus",
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": "1h",
    }
    out = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], expr)
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], out)


def panels(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return [p for p in out if p.get("targets")]


def board_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in panels(board):
            for target in panel["targets"]:
                out.append((path.stem, f"{panel['id']}:{panel['title']}:{target['refId']}", target["expr"]))
    return out


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text()) for rule in group["rules"]]


def result_tables(result: list[dict]) -> set[str]:
    return {s["metric"].get("feature_table", "") for s in result}


@pytest.mark.parametrize(("board", "panel", "expr"), board_queries(), ids=lambda v: str(v)[:60])
def test_every_panel_query_evaluates(stack, board, panel, expr):
    for project, table in ((PROJECT, FRESH_TABLE), (".*", ".*")):  # one table, and "All"
        answer = stack.prometheus.query(substitute(expr, project, table))
        assert answer["status"] == "success", (panel, answer.get("error"))


def test_the_ingestion_panels_show_the_table_just_ingested(stack):
    board = json.loads(next(p for p in DASHBOARDS if p.stem == "ingestion").read_text())
    for panel in panels(board):
        for target in panel["targets"]:
            result = stack.prometheus.query(substitute(target["expr"]))["data"]["result"]
            assert result, f"{panel['title']} ({target['refId']}) has no data for {PROJECT}/{FRESH_TABLE}"
            assert result_tables(result) == {FRESH_TABLE}, (panel["title"], result)
    # and the values are those of the run that was pushed
    q = stack.prometheus.query
    rows = q(substitute(board_expr(board, "Rows written per second (latest run, when it succeeded)")))[
        "data"
    ]["result"]
    assert float(rows[0]["value"][1]) == pytest.approx(3 / 8.5)
    ratio = q(substitute(board_expr(board, "Dead-letter ratio")))["data"]["result"]
    assert float(ratio[0]["value"][1]) == pytest.approx(4 / 144)
    p95 = q(substitute(board_expr(board, "Event-time lag p95 / p99 (latest run)")))["data"]["result"]
    assert 7200 < float(p95[0]["value"][1]) <= 2 * 86400  # 6 samples: the 95th is the 1-day-old one
    fresh = q(substitute(board_expr(board, "Time since last successful ingestion")))["data"]["result"]
    assert 0 <= float(fresh[0]["value"][1]) < 120


def board_expr(board: dict, title: str) -> str:
    return next(p for p in panels(board) if p["title"] == title)["targets"][0]["expr"]


def test_serving_and_jobs_panels_show_the_traffic_and_the_jobs(stack):
    q = stack.prometheus.query
    serving = json.loads(next(p for p in DASHBOARDS if p.stem == "serving").read_text())
    jobs = json.loads(next(p for p in DASHBOARDS if p.stem == "jobs").read_text())
    requests = q(substitute(board_expr(serving, "Requests per second")))["data"]["result"]
    assert {s["metric"]["grpc_method"] for s in requests} == {"GetOnlineFeaturesV2"}
    assert q(substitute(board_expr(serving, "Latency p50 / p99")))["data"]["result"]
    not_found = q(substitute(board_expr(serving, "NOT_FOUND values per second, by table")))["data"]["result"]
    assert float(not_found[0]["value"][1]) > 0
    stale = q(substitute(board_expr(serving, "OUTSIDE_MAX_AGE values per second, by table")))["data"][
        "result"
    ]
    assert float(stale[0]["value"][1]) > 0
    by_table = q(substitute(board_expr(jobs, "Jobs per table, type and status"), ".*", ".*"))["data"][
        "result"
    ]
    got = {(s["metric"]["feature_table"], s["metric"]["status"]): float(s["value"][1]) for s in by_table}
    assert got == {(FRESH_TABLE, "ERROR"): 1, (FRESH_TABLE, "DONE"): 1, (STALE_TABLE, "ERROR"): 2}


def test_template_variables_list_the_project_and_tables(stack):
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = LABEL_VALUES.match(substitute(var["query"]["query"], ".*", ".*"))
            assert m, var["query"]
            params = {"match[]": m["metric"]} if m["metric"] else {}
            answer = stack.prometheus.api(f"label/{m['label']}/values", **params)
            assert answer["status"] == "success", answer
            expected = PROJECT if var["name"] == "project" else FRESH_TABLE
            assert expected in answer["data"], (path.name, var["name"], answer["data"])


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_expression_evaluates(stack, rule):
    answer = stack.prometheus.query(rule["expr"])
    assert answer["status"] == "success", answer.get("error")


def test_the_alerts_pick_the_stale_and_failing_table_only(stack):
    by_name = {r["alert"]: r["expr"] for r in alert_rules()}
    for alert in ("ProvenderFeatureTableStale", "ProvenderIngestionFailing"):
        result = stack.prometheus.query(by_name[alert])["data"]["result"]
        assert result_tables(result) == {STALE_TABLE}, (alert, result)
    for alert in ("ProvenderServingLatencyHigh", "ProvenderRedisUnreachable", "ProvenderCoreDatabaseDown"):
        assert stack.prometheus.query(by_name[alert])["data"]["result"] == [], alert


def test_prometheus_loads_the_rules_and_holds_the_alerts_pending(stack):
    groups = stack.prometheus.api("rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
    # Rules are evaluated every second; wait for an evaluation after the data arrived.
    wait_for(stack.prometheus, 'ALERTS{alertname="ProvenderFeatureTableStale"}')
    for r in stack.prometheus.api("rules")["data"]["groups"]:
        for rule in r["rules"]:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
    alerts = stack.prometheus.api("alerts")["data"]["alerts"]
    pending = {(a["labels"]["alertname"], a["labels"].get("feature_table")) for a in alerts}
    assert ("ProvenderFeatureTableStale", STALE_TABLE) in pending
    assert ("ProvenderIngestionFailing", STALE_TABLE) in pending
    assert all(a["state"] == "pending" for a in alerts)  # `for:` has not elapsed


def test_promtool_checks_the_rule_file(tmp_path):
    out = subprocess.run(
        [PROMTOOL, "check", "rules", str(wrapped_rules(tmp_path))], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in out.stdout


def test_what_the_processes_export_is_in_the_catalogue(stack):
    documented = {name for section in catalogue().values() for name in section}
    suffixes = ("_bucket", "_sum", "_count", "_created")
    for address in (stack.core.metrics_address, stack.serving.metrics_address, stack.pushgateway.url[7:]):
        text = http_get(f"http://{address}/metrics")
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("provender_"):
                continue
            names = {s.name for s in family.samples if not s.name.endswith("_created")}
            for name in names:
                base = next((name[: -len(x)] for x in suffixes if name.endswith(x)), name)
                assert name in documented or base in documented, f"{address} exports {name}, not catalogued"


def test_the_dashboard_renders_as_a_picture_from_prometheus_answers(stack, tmp_path):
    """docs/render_dashboard.py against this stack; PROVENDER_UPDATE_DOCS=1 also refreshes the README picture."""
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("render_dashboard", REPO / "docs" / "render_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.render(stack.prometheus.url, tmp_path / "ingestion.png", project=PROJECT, minutes=1)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    if os.environ.get("PROVENDER_UPDATE_DOCS") == "1":
        shutil.copyfile(out, REPO / "docs" / "ingestion-dashboard.png")


def test_core_exports_the_registry_and_what_it_knows_of_the_jobs(stack):
    def values(expr: str) -> dict[tuple[str, ...], float]:
        result = stack.prometheus.query(expr)["data"]["result"]
        return {tuple(v for k, v in sorted(s["metric"].items())): float(s["value"][1]) for s in result}

    sel = f'project="{PROJECT}"'
    assert values(f"max by (project) (provender_core_entities{{{sel}}})") == {(PROJECT,): 1}
    assert values(f"max by (project) (provender_core_feature_tables{{{sel}}})") == {(PROJECT,): 2}
    assert values(f"max by (feature_table) (provender_core_feature_table_max_age_seconds{{{sel}}})") == {
        (FRESH_TABLE,): 3 * 3600,
        (STALE_TABLE,): 3600,
    }
    assert values(f"sum by (feature_table) (provender_core_job_submissions_total{{{sel}}})") == {
        (FRESH_TABLE,): 1,
        (STALE_TABLE,): 2,
    }
    assert values(f"sum by (feature_table, reason) (provender_core_job_failures_total{{{sel}}})") == {
        (FRESH_TABLE, "submit"): 1,
        (STALE_TABLE, "submit"): 2,
    }
    assert values('provender_core_jobs_by_status{job_type="BATCH_INGESTION", status="ERROR"}') != {}
    done = values(f'provender_core_job_last_finish_time_seconds{{{sel}, status="DONE"}}')
    assert len(done) == 1 and abs(next(iter(done.values())) - time.time()) < 120
    assert set(values("provender_core_database_up").values()) == {1.0}
