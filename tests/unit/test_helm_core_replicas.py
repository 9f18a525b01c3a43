"""The chart runs Core as several replicas (issue 15, finding 11): two by default, rolled one at a time, kept
through node drains by a PodDisruptionBudget, with the leader's timeout passed to Core, and an alert when no
replica leads."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.helm import chart as c

RULES = c.CHART / "rules" / "provender.yaml"


def core_deployment(values: dict | None = None) -> dict:
    return c.one(c.manifests(values), "Deployment", "provender-core")


def test_two_core_replicas_roll_one_at_a_time() -> None:
    spec = core_deployment()["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert core_deployment({"core": {"replicaCount": 3}})["spec"]["replicas"] == 3


def test_a_disruption_budget_keeps_one_core_through_drains() -> None:
    pdb = c.one(c.manifests(), "PodDisruptionBudget", "provender-core")
    assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    selected = pdb["spec"]["selector"]["matchLabels"]
    labels = core_deployment()["spec"]["template"]["metadata"]["labels"]
    assert selected.items() <= labels.items()
    # One replica: a budget of one available would block every node drain, so there is none.
    assert c.find(c.manifests({"core": {"replicaCount": 1}}), "PodDisruptionBudget", "provender-core") == []
    disabled = {"core": {"podDisruptionBudget": {"enabled": False}}}
    assert c.find(c.manifests(disabled), "PodDisruptionBudget", "provender-core") == []


def test_the_leader_timeout_reaches_core() -> None:
    from provender.core.app import CoreSettings

    container = next(
        x for x in core_deployment()["spec"]["template"]["spec"]["containers"] if x["name"] == "core"
    )
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PROVENDER_LEADER_TIMEOUT_SECONDS"] == "10"
    assert (
        CoreSettings.__dataclass_fields__["leader_timeout_seconds"].metadata["flag"].env
        == "LEADER_TIMEOUT_SECONDS"
    )
    tuned = core_deployment({"core": {"leaderTimeoutSeconds": 30}})["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert {"name": "PROVENDER_LEADER_TIMEOUT_SECONDS", "value": "30"} in tuned["env"]


def test_the_values_schema_takes_several_replicas_and_no_short_timeout() -> None:
    import helm_python as helm
    import pytest

    chart = c.chart()
    chart.validate_schema(chart.merge_values({"core": {"replicaCount": 5}}))
    for wrong, where in (
        ({"core": {"leaderTimeoutSeconds": 1}}, "/core/leaderTimeoutSeconds"),
        ({"core": {"podDisruptionBudget": {"maxUnavailable": 1}}}, "/core/podDisruptionBudget"),
    ):
        with pytest.raises(helm.HelmValuesError) as raised:
            chart.validate_schema(chart.merge_values(wrong))
        assert where in str(raised.value)


def test_an_alert_fires_when_no_core_leads() -> None:
    rules = {r["alert"]: r for group in yaml.safe_load(Path(RULES).read_text()) for r in group["rules"]}
    rule = rules["ProvenderCoreNoLeader"]
    assert "provender_core_leader" in rule["expr"] and rule["labels"]["severity"] == "critical"
