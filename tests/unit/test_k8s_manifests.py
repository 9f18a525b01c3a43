"""Every SparkApplication the k8s launcher can produce is valid against the Spark operator's CRD (the
openAPIV3Schema of tests/helm/crds/sparkapplications.sparkoperator.k8s.io.yaml, strict: unknown properties are
errors), and its metadata against what the API server checks (the CRD leaves metadata to it): ingestion and
retrieval jobs, from the built-in template and from the chart's (rendered by Helm's engine), for ordinary, long
and odd job ids, projects and tables. Also the state mapping, names, labels and template errors, offline."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from provender.core.launchers import k8s
from provender.core.launchers.base import JobStatus, create_launcher
from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.args import (
    Column,
    FeatureSelection,
    IngestionJobArgs,
    JobArgs,
    JobSource,
    JobTable,
    RetrievalJobArgs,
    parse_job_args,
)
from provender.kernel.value_types import ValueType
from tests.helm import chart as c
from tests.k8s_standin import label_problems, name_problems

pytestmark = pytest.mark.timeout(120)

NAMESPACE = "feast"
LONG = "t" * 70  # longer than a label value may be
# Names as the registry accepts them (^[a-zA-Z_][a-zA-Z0-9_]*$), including ones a label value may not hold.
TABLES = ["driver_hourly", "_private_stats", LONG, "Trips_2026"]


def _table(name: str) -> JobTable:
    return JobTable(
        name,
        (Column("driver_id", ValueType.INT64),),
        (Column("conv_rate", ValueType.FLOAT), Column("trips", ValueType.INT64)),
        JobSource(
            "s3://bucket/data/" + name + "/",
            "event_timestamp",
            "created",
            "date",
            {"conv rate": "conv_rate"},
        ),
        3600,
    )


def _ingestion(project: str, table: str) -> IngestionJobArgs:
    return IngestionJobArgs(
        project=project,
        table=_table(table),
        redis_url="redis://provender-redis:6379/0",
        start=datetime(2026, 11, 1, tzinfo=UTC),
        end=datetime(2026, 11, 2, tzinfo=UTC),
        dead_letter_location="s3://bucket/staging/dead-letter/",
        pushgateway_url="http://pushgateway:9091",
    )


def _retrieval(project: str, tables: list[str]) -> RetrievalJobArgs:
    return RetrievalJobArgs(
        project=project,
        entity_source=JobSource("s3://bucket/entities.csv", "event_timestamp", file_format="csv"),
        tables=tuple(FeatureSelection(_table(t), ("conv_rate",)) for t in tables),
        output_location="s3://bucket/staging/historical/out",
    )


JOBS: dict[str, JobArgs] = {
    "ingestion": _ingestion("default", "driver_hourly"),
    "ingestion-odd-names": _ingestion("_team_a", LONG),
    "retrieval-one-table": _retrieval("default", ["driver_hourly"]),
    "retrieval-many-tables": _retrieval("Project_" + "p" * 60, TABLES),
}
JOB_IDS = {
    "core-id": "ingest-0123456789abcdef",
    "core-retry-id": "retrieve-0123456789abcdef-123456",
    "long": "ingest-" + "0123456789abcdef" * 8,
    "odd": "Ingest_Job ÄÖ/..#1",
    "digit-first": "42-job",
}


@pytest.fixture(scope="module")
def api_client() -> client.ApiClient:
    # Building manifests needs no API; nothing listens here.
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    return client.ApiClient(configuration)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | None]:
    folder = tmp_path_factory.mktemp("templates")
    out: dict[str, Path | None] = {"built-in": None}
    everything = {
        "image": {"repository": "registry.example/provender", "tag": "1.2.3", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "commonLabels": {"team": "ml-platform"},
        "spark": {
            "image": "registry.example/provender-spark:1.2.3",
            "sparkConf": {"spark.hadoop.fs.s3a.endpoint": "http://minio.minio:9000"},
            "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
            "envFromSecrets": [{"name": "AWS_ACCESS_KEY_ID", "secretName": "s3", "key": "access-key"}],
            "driver": {"cores": 2, "coreLimit": "2", "memory": "4g"},
            "executor": {"instances": 5, "cores": 4, "coreLimit": "4", "memory": "8g"},
        },
    }
    for name, values in (("chart-defaults", {}), ("chart-values-set", everything)):
        path = folder / f"{name}.yaml"
        path.write_text(c.job_template_text(values))
        out[name] = path
    return out


def _launcher(api_client: client.ApiClient, template: Path | None, **settings: Any) -> k8s.K8sLauncher:
    launcher = create_launcher(
        "k8s",
        namespace=NAMESPACE,
        job_template=str(template) if template else "",
        api_client=api_client,
        **settings,
    )
    assert isinstance(launcher, k8s.K8sLauncher)
    return launcher


def _errors(app: dict[str, Any]) -> list[str]:
    errors = sorted(c.sparkapplication_validator().iter_errors(app), key=lambda e: list(e.path))
    return [f"{list(e.path)}: {e.message}" for e in errors]


@pytest.mark.parametrize("template_name", ["built-in", "chart-defaults", "chart-values-set"])
@pytest.mark.parametrize("job", JOBS, ids=list(JOBS))
def test_every_manifest_is_a_valid_sparkapplication(
    api_client: client.ApiClient, templates: dict[str, Path | None], template_name: str, job: str
) -> None:
    launcher = _launcher(api_client, templates[template_name], conf={"spark.sql.shuffle.partitions": "16"})
    args = JOBS[job]
    names = set()
    for job_id in JOB_IDS.values():
        app = launcher.manifest(job_id, args)
        assert not _errors(app), _errors(app)
        meta = app["metadata"]
        # What the API server checks of metadata (the CRD's schema leaves it open).
        assert not name_problems(meta["name"]) and not label_problems(meta["labels"])
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", meta["name"]) and len(meta["name"]) <= 50
        assert meta["namespace"] == NAMESPACE
        names.add(meta["name"])
        # Labels (selectable) and annotations (unabridged) name the job.
        identity = k8s.job_identity(job_id, args)
        assert meta["annotations"][k8s.JOB_ID_LABEL] == job_id
        assert {k: meta["annotations"][k] for k in identity} == identity
        assert meta["labels"][k8s.JOB_ID_LABEL] == k8s.label_value(job_id)
        assert meta["labels"][k8s.PROJECT_LABEL] == k8s.label_value(args.project)
        assert meta["labels"][k8s.JOB_TYPE_LABEL] == (
            "ingestion" if job.startswith("ingestion") else "retrieval"
        )
        spec = app["spec"]
        for role in ("driver", "executor"):
            assert not label_problems(spec[role]["labels"])
            assert {k: spec[role]["labels"][k] for k in meta["labels"] if k.startswith("provender.dev/")} == {
                k: v for k, v in meta["labels"].items() if k.startswith("provender.dev/")
            }
        # The job's arguments arrive as one exact string; the entry point is the image's.
        assert len(spec["arguments"]) == 1 and parse_job_args(spec["arguments"][0]) == args
        kind = "ingestion" if isinstance(args, IngestionJobArgs) else "retrieval"
        assert spec["mainApplicationFile"] == f"local:///opt/provender/jobs/{kind}.py"
        assert spec["sparkConf"]["spark.sql.shuffle.partitions"] == "16"
        assert all(isinstance(v, str) for v in spec["sparkConf"].values())
    assert len(names) == len(JOB_IDS), "different job ids must get different names"


def test_chart_template_keeps_the_charts_settings(
    api_client: client.ApiClient, templates: dict[str, Path | None]
) -> None:
    app = _launcher(api_client, templates["chart-values-set"]).manifest(
        "ingest-0123456789abcdef", JOBS["ingestion"]
    )
    spec = app["spec"]
    assert spec["image"] == "registry.example/provender-spark:1.2.3"
    assert spec["imagePullSecrets"] == ["regcred"]
    assert spec["sparkConf"] == {
        "spark.hadoop.fs.s3a.endpoint": "http://minio.minio:9000",
        "spark.provender.job_id": "ingest-0123456789abcdef",  # the id the job's pushed metrics carry
    }
    assert (spec["executor"]["instances"], spec["executor"]["memory"]) == (5, "8g")
    assert spec["driver"]["serviceAccount"] == "provender-spark"
    # The chart's own labels stay beside the launcher's.
    assert app["metadata"]["labels"]["team"] == "ml-platform"
    assert spec["driver"]["labels"]["team"] == "ml-platform"


def test_built_in_template_settings(api_client: client.ApiClient) -> None:
    launcher = _launcher(
        api_client, None, image="reg.example/p:9", service_account="spark", spark_version="4.0.1"
    )
    app = launcher.manifest("ingest-0123456789abcdef", JOBS["ingestion"])
    assert not _errors(app)
    assert (app["spec"]["image"], app["spec"]["sparkVersion"]) == ("reg.example/p:9", "4.0.1")
    assert app["spec"]["driver"]["serviceAccount"] == app["spec"]["executor"]["serviceAccount"] == "spark"
    assert app["spec"]["restartPolicy"] == {"type": "Never"}


def test_namespace_defaults_to_the_templates(api_client: client.ApiClient, tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(c.job_template_text(namespace="team-a"))
    launcher = create_launcher("k8s", job_template=str(path), api_client=api_client)
    assert isinstance(launcher, k8s.K8sLauncher) and launcher.namespace == "team-a"
    app = launcher.manifest("ingest-0123456789abcdef", JOBS["ingestion"])
    assert app["metadata"]["namespace"] == "team-a"


# Names and labels ---------------------------------------------------------------------------------------------


def test_application_names() -> None:
    assert k8s.application_name("ingest-0123456789abcdef") == "ingest-0123456789abcdef"
    for job_id in [*JOB_IDS.values(), "a" * 51, "-", "ÄÖÜ", "x" * 1000]:
        name = k8s.application_name(job_id)
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 50, name
        assert k8s.application_name(job_id) == name  # deterministic
    assert k8s.application_name("a" * 51) != k8s.application_name("a" * 52)
    assert k8s.application_name("Job") != k8s.application_name("job")
    with pytest.raises(InvalidArgument):
        k8s.application_name("")


def test_label_values() -> None:
    assert k8s.label_value("driver_hourly") == "driver_hourly"
    for value in ["_private", LONG, "a,b", "ü", "x-", "a b"]:
        hashed = k8s.label_value(value)
        assert hashed.startswith("sha256-") and not label_problems({"k": hashed})
        assert k8s.label_value(value) == hashed
    assert k8s.label_value("") == ""


# States ---------------------------------------------------------------------------------------------------------

OPERATOR_STATES = {
    "": JobStatus.PENDING,
    "NEW": JobStatus.PENDING,
    "SUBMITTED": JobStatus.PENDING,
    "PENDING_RERUN": JobStatus.PENDING,
    "INVALIDATING": JobStatus.PENDING,
    "SUSPENDING": JobStatus.PENDING,
    "SUSPENDED": JobStatus.PENDING,
    "RESUMING": JobStatus.PENDING,
    "RUNNING": JobStatus.RUNNING,
    "SUCCEEDING": JobStatus.RUNNING,
    "FAILING": JobStatus.RUNNING,
    "UNKNOWN": JobStatus.RUNNING,
    "COMPLETED": JobStatus.DONE,
    "FAILED": JobStatus.ERROR,
    "SUBMISSION_FAILED": JobStatus.ERROR,
    "HIBERNATING": JobStatus.PENDING,  # a state this launcher has never heard of
    "completed": JobStatus.DONE,
}


@pytest.mark.parametrize("state", OPERATOR_STATES)
def test_every_operator_state_maps_to_a_job_state(state: str) -> None:
    app = {"metadata": {"name": "a", "namespace": "n"}, "status": {"applicationState": {"state": state}}}
    job_state, message = k8s.application_state(app)
    assert job_state is OPERATOR_STATES[state]
    assert bool(message) == (job_state is JobStatus.ERROR)


def test_states_table_covers_the_operator() -> None:
    assert set(k8s.STATES) == {s for s in OPERATOR_STATES if s.isupper() or s == ""} - {"HIBERNATING"}


def test_missing_status_and_error_messages() -> None:
    assert k8s.application_state({"metadata": {"name": "a"}}) == (JobStatus.PENDING, "")
    assert k8s.application_state({"status": {"applicationState": None}}) == (JobStatus.PENDING, "")
    failed = {
        "metadata": {"name": "a", "namespace": "n"},
        "status": {"applicationState": {"state": "FAILED"}},
    }
    assert (
        k8s.application_state(failed)[1]
        == "SparkApplication n/a FAILED without an error message; see the driver's log"
    )
    failed["status"]["applicationState"]["errorMessage"] = "driver container failed with ExitCode: 1"
    assert k8s.application_state(failed) == (
        JobStatus.ERROR,
        "SparkApplication n/a FAILED: driver container failed with ExitCode: 1",
    )


def test_submission_failure_is_an_error_only_when_the_operator_will_not_retry() -> None:
    def app(policy: dict[str, Any], attempts: int) -> dict[str, Any]:
        return {
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"restartPolicy": policy},
            "status": {
                "applicationState": {"state": "SUBMISSION_FAILED", "errorMessage": "no quota"},
                "submissionAttempts": attempts,
            },
        }

    assert k8s.application_state(app({"type": "Never"}, 1))[0] is JobStatus.ERROR
    assert k8s.application_state(app({"type": "Always"}, 9))[0] is JobStatus.PENDING
    retrying = {"type": "OnFailure", "onSubmissionFailureRetries": 2}
    assert k8s.application_state(app(retrying, 2))[0] is JobStatus.PENDING
    assert k8s.application_state(app(retrying, 3)) == (
        JobStatus.ERROR,
        "SparkApplication n/a SUBMISSION_FAILED: no quota",
    )


def test_log_uri_names_the_driver_pod() -> None:
    app = {"metadata": {"name": "ingest-1", "namespace": "feast"}, "status": {}}
    assert k8s.driver_pod(app) == "ingest-1-driver"
    app["status"] = {"driverInfo": {"podName": "custom-driver"}}
    assert k8s.pod_log_uri("feast", k8s.driver_pod(app)) == "k8s://feast/pods/custom-driver/log"


# Templates the launcher refuses at start ------------------------------------------------------------------------


def test_bad_templates_are_refused_at_start(api_client: client.ApiClient, tmp_path: Path) -> None:
    chart_template = c.job_template_text()
    cases = {
        "missing": None,
        "unknown-placeholder": chart_template.replace("${arguments}", "${args}"),
        "not-a-sparkapplication": chart_template.replace(
            "kind: SparkApplication", "kind: ScheduledSparkApplication"
        ),
        "not-yaml": "spec: [unclosed",
        "a-list": "- a\n- b\n",
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.yaml"
        if text is not None:
            path.write_text(text)
        with pytest.raises(InvalidArgument, match="job_template"):
            _launcher(api_client, path)


def test_handles_from_other_launchers_are_refused(api_client: client.ApiClient) -> None:
    launcher = _launcher(api_client, None)
    for handle in ["", "{}", json.dumps({"launcher": "local", "namespace": "n", "name": "a", "job_id": "a"})]:
        with pytest.raises(InvalidArgument, match="launcher handle"):
            launcher.status(handle)


def test_the_schema_check_is_strict(api_client: client.ApiClient) -> None:
    # The check would catch a template typo or a field the operator does not know.
    app = _launcher(api_client, None).manifest("ingest-0123456789abcdef", JOBS["ingestion"])
    app["spec"]["driver"]["memmory"] = "1g"
    app["spec"]["executor"]["instances"] = "5"
    errors = _errors(app)
    assert any("memmory" in e for e in errors) and any("instances" in e for e in errors), errors
