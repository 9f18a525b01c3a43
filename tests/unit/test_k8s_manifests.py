"""Every SparkApplication the k8s launcher can produce is valid against the Spark operator's CRD (the
openAPIV3Schema of tests/helm/crds/sparkapplications.sparkoperator.k8s.io.yaml, strict: unknown properties are
errors), and its metadata against what the API server checks (the CRD leaves metadata to it): ingestion,
retrieval and stream jobs, from the built-in template and from the chart's (rendered by Helm's engine), for
ordinary, long and odd job ids, projects and tables. A stream job's differences (restart policy, scrape
annotations and port, the chart's jars, which the image carries) are checked against the chart and the
Dockerfile. Also the state mapping, names, labels and template errors, offline."""

from __future__ import annotations

import hashlib
import json
import logging
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
    KafkaJobSource,
    RetrievalJobArgs,
    StreamIngestionJobArgs,
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


def _stream(project: str, table: str, metrics_port: int = 8090) -> StreamIngestionJobArgs:
    return StreamIngestionJobArgs(
        project=project,
        table=_table(table),
        source=KafkaJobSource(
            bootstrap_servers="kafka-0.kafka:9092,kafka-1.kafka:9092",
            topic="driver_trips",
            message_format="avro",
            event_timestamp_column="event_timestamp",
            schema_json='{"type": "record", "name": "Trip", "fields": [{"name": "driver_id", "type": "long"}]}',
            field_mapping={"conv": "conv_rate"},
        ),
        redis_url="redis://provender-redis:6379/0",  # as Core writes it: the password reaches the driver by env
        checkpoint_location=f"s3://bucket/staging/checkpoints/{project}/{table}/0123abcd",
        dead_letter_location=f"s3://bucket/staging/dead-letter/{project}/{table}/stream-0123456789abcdef",
        trigger_seconds=1.0,
        starting_offsets="earliest",
        metrics_port=metrics_port,
    )


JOBS: dict[str, JobArgs] = {
    "ingestion": _ingestion("default", "driver_hourly"),
    "ingestion-odd-names": _ingestion("_team_a", LONG),
    "retrieval-one-table": _retrieval("default", ["driver_hourly"]),
    "retrieval-many-tables": _retrieval("Project_" + "p" * 60, TABLES),
    "stream": _stream("default", "driver_hourly"),
    "stream-odd-names": _stream("_team_a", LONG),
}
# The job-type label and the application file of each kind of job.
KINDS = {
    IngestionJobArgs: ("ingestion", "ingestion.py"),
    RetrievalJobArgs: ("retrieval", "retrieval.py"),
    StreamIngestionJobArgs: ("stream", "stream_ingestion.py"),
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


def driver_container(spec: dict[str, Any]) -> dict[str, Any]:
    found = k8s.role_container(spec, "driver")
    assert found is not None, "the driver's pod template has no Spark container"
    return found


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
        assert meta["labels"][k8s.JOB_TYPE_LABEL] == KINDS[type(args)][0]
        spec = app["spec"]
        for role in ("driver", "executor"):
            assert not label_problems(spec[role]["labels"])
            assert {k: spec[role]["labels"][k] for k in meta["labels"] if k.startswith("provender.dev/")} == {
                k: v for k, v in meta["labels"].items() if k.startswith("provender.dev/")
            }
        # The job's arguments arrive as one exact string; the entry point is the image's.
        assert len(spec["arguments"]) == 1 and parse_job_args(spec["arguments"][0]) == args
        assert spec["mainApplicationFile"] == f"local:///opt/provender/jobs/{KINDS[type(args)][1]}"
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


# Stream jobs ----------------------------------------------------------------------------------------------------

STREAM_ID = "stream-0123456789abcdef"
JARS = (
    "local:///opt/provender/jars/spark-sql-kafka-0-10_2.13-4.2.0.jar",
    "local:///opt/provender/jars/spark-avro_2.13-4.2.0.jar",
)
SCRAPE = {"prometheus.io/scrape": "true", "prometheus.io/port": "8090", "prometheus.io/path": "/metrics"}


@pytest.mark.parametrize("template_name", ["built-in", "chart-defaults", "chart-values-set"])
def test_a_stream_job_restarts_on_failure_and_announces_its_metrics(
    api_client: client.ApiClient, templates: dict[str, Path | None], template_name: str
) -> None:
    launcher = _launcher(api_client, templates[template_name], jars=JARS)
    args = JOBS["stream"]
    app = launcher.manifest(STREAM_ID, args)
    assert not _errors(app), _errors(app)
    meta, spec = app["metadata"], app["spec"]
    assert meta["labels"][k8s.JOB_TYPE_LABEL] == "stream"
    assert spec["driver"]["labels"][k8s.JOB_TYPE_LABEL] == spec["executor"]["labels"][k8s.JOB_TYPE_LABEL]
    assert spec["mainApplicationFile"] == "local:///opt/provender/jobs/stream_ingestion.py"
    # Restarted by the operator when the driver fails, with retries and pauses (the CRD's field names).
    assert spec["restartPolicy"] == {
        "type": "OnFailure",
        "onFailureRetries": 10,
        "onFailureRetryInterval": 30,
        "onSubmissionFailureRetries": 5,
        "onSubmissionFailureRetryInterval": 60,
    }
    # The driver pod (not the application, not the executors) is annotated for scraping, on a declared port.
    assert {
        k: v for k, v in spec["driver"]["annotations"].items() if k.startswith("prometheus.io/")
    } == SCRAPE
    # The port in the driver's pod template, which spark-submit applies (no webhook needed).
    assert {"name": "metrics", "containerPort": 8090, "protocol": "TCP"} in driver_container(spec)["ports"]
    assert "ports" not in spec["driver"]
    assert not any(k.startswith("prometheus.io/") for k in spec["executor"].get("annotations", {}))
    assert "ports" not in spec["executor"] and "ports" not in k8s.role_container(spec, "executor")
    assert not any(k.startswith("prometheus.io/") for k in meta["annotations"])
    # Spark's Kafka source on the classpath, after the template's own jars.
    assert spec["deps"]["jars"][-len(JARS) :] == list(JARS)
    # Finished applications are still cleaned up by the operator.
    assert spec["timeToLiveSeconds"] == 86400
    assert parse_job_args(spec["arguments"][0]) == args

    # A batch job of the same launcher keeps the template's restart policy and announces nothing.
    batch = launcher.manifest("ingest-0123456789abcdef", JOBS["ingestion"])
    assert batch["spec"]["restartPolicy"] == {"type": "Never"}
    assert not any(k.startswith("prometheus.io/") for k in batch["spec"]["driver"].get("annotations", {}))
    assert "ports" not in batch["spec"]["driver"] and "ports" not in driver_container(batch["spec"])
    assert batch["spec"]["deps"]["jars"][-len(JARS) :] == list(JARS)


def test_a_stream_job_without_a_metrics_port_is_not_announced(
    api_client: client.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=k8s.__name__):
        app = _launcher(api_client, None).manifest(STREAM_ID, _stream("default", "driver_hourly", 0))
    assert not _errors(app)
    assert app["spec"]["restartPolicy"]["type"] == "OnFailure"
    assert "annotations" not in app["spec"]["driver"] and "ports" not in driver_container(app["spec"])
    assert "--stream-metrics-port" in caplog.text


def test_a_templates_driver_ports_and_annotations_stay_beside_the_streams(
    api_client: client.ApiClient, tmp_path: Path
) -> None:
    text = c.job_template_text()
    assert text.count("\n  driver:\n") == 1
    container = f"          - name: {k8s.DRIVER_CONTAINER}\n"
    assert text.count(container) == 1
    own = "\n  driver:\n    annotations: {team: ml-platform, prometheus.io/port: '1'}\n"
    ports = (
        "            ports:\n"
        "              - {name: debug, containerPort: 5005, protocol: TCP}\n"
        "              - {name: metrics, containerPort: 9999, protocol: TCP}\n"
    )
    path = tmp_path / "t.yaml"
    path.write_text(text.replace("\n  driver:\n", own).replace(container, container + ports))
    app = _launcher(api_client, path).manifest(STREAM_ID, JOBS["stream"])
    assert not _errors(app)
    driver = app["spec"]["driver"]
    assert driver["annotations"] == {"team": "ml-platform", **SCRAPE}
    assert driver_container(app["spec"])["ports"] == [
        {"name": "debug", "containerPort": 5005, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 8090, "protocol": "TCP"},
    ]


def test_a_running_stream_stays_running_and_failures_are_retried_as_the_operator_does() -> None:
    def app(state: str, **status: Any) -> dict[str, Any]:
        return {
            "metadata": {"name": STREAM_ID, "namespace": NAMESPACE},
            "spec": {"restartPolicy": dict(k8s.STREAM_RESTART_POLICY)},
            "status": {"applicationState": {"state": state, "errorMessage": "boom"}, **status},
        }

    # However long it has run: the launcher has no notion of a job taking too long.
    assert k8s.application_state(app("RUNNING", lastSubmissionAttemptTime="2020-01-01T00:00:00Z")) == (
        JobStatus.RUNNING,
        "",
    )
    assert k8s.application_state(app("FAILING", executionAttempts=3))[0] is JobStatus.RUNNING
    assert k8s.application_state(app("PENDING_RERUN"))[0] is JobStatus.PENDING
    # A refused submission is retried while onSubmissionFailureRetries (5) allows, then the job is an ERROR.
    assert k8s.application_state(app("SUBMISSION_FAILED", submissionAttempts=5))[0] is JobStatus.PENDING
    assert k8s.application_state(app("SUBMISSION_FAILED", submissionAttempts=6)) == (
        JobStatus.ERROR,
        f"SparkApplication {NAMESPACE}/{STREAM_ID} SUBMISSION_FAILED: boom",
    )
    assert k8s.application_state(app("FAILED"))[0] is JobStatus.ERROR


def test_the_charts_stream_settings_reach_the_application_and_the_image_carries_the_jars(
    api_client: client.ApiClient, templates: dict[str, Path | None]
) -> None:
    docs = c.manifests({"metrics": {"podMonitor": {"enabled": True}}})
    (core,) = c.one(docs, "Deployment", "provender-core")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in core["env"]}
    jars = tuple(env["PROVENDER_SPARK_JARS"].split(","))
    port = int(env["PROVENDER_STREAM_METRICS_PORT"])
    assert port == 8090 and env["PROVENDER_STREAM_TRIGGER_SECONDS"] == "1"
    assert env["PROVENDER_STREAM_STARTING_OFFSETS"] == "earliest"
    app = _launcher(api_client, templates["chart-defaults"], jars=jars).manifest(
        STREAM_ID, _stream("default", "driver_hourly", port)
    )
    assert not _errors(app)
    assert app["spec"]["deps"]["jars"] == list(jars)
    assert app["spec"]["driver"]["annotations"]["prometheus.io/port"] == str(port)

    # The chart's jars are in the image: the Dockerfile adds each from Maven Central, checksum pinned.
    dockerfile = (c.REPO / "deploy" / "docker" / "Dockerfile").read_text()
    added = {
        m["file"]: m["sha256"]
        for m in re.finditer(
            r"^ADD --checksum=sha256:(?P<sha256>[0-9a-f]{64}) --chmod=0644 "
            r"https://repo1\.maven\.org/maven2/\S+/(?P<file>[^/\s]+\.jar) /opt/provender/jars/(?P=file)$",
            dockerfile,
            re.M,
        )
    }
    assert {jar.removeprefix("local:///opt/provender/jars/") for jar in jars} == set(added)
    # ... and they are the jars the stream tests run with (tools/fetch-jvm-deps.sh), byte for byte.
    fetched = c.REPO / ".deps" / "spark-kafka"
    if fetched.is_dir():
        assert {p.name for p in fetched.glob("*.jar")} == set(added)
        for name, sha256 in added.items():
            assert hashlib.sha256((fetched / name).read_bytes()).hexdigest() == sha256, name

    # The chart's PodMonitor selects this driver (Spark adds spark-role=driver) on the port it declares.
    monitor = c.one(docs, "PodMonitor", "provender-streams")
    driver = app["spec"]["driver"]
    pod_labels = {**driver["labels"], "spark-role": "driver"}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [app["metadata"]["namespace"]]}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in driver_container(app["spec"])["ports"]}
    assert endpoint["path"] == "/metrics"
    # Batch jobs' pods are not selected.
    batch = _launcher(api_client, templates["chart-defaults"]).manifest(
        "ingest-0123456789abcdef", JOBS["ingestion"]
    )
    assert (
        not monitor["spec"]["selector"]["matchLabels"].items()
        <= {
            **batch["spec"]["driver"]["labels"],
            "spark-role": "driver",
        }.items()
    )


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


def test_a_redis_password_never_enters_a_sparkapplication(
    api_client: client.ApiClient, templates: dict[str, Path | None]
) -> None:
    """Core's Redis has a password: the chart's template gives the driver PROVENDER_REDIS_URL from Core's own
    source, and the manifest holds no password; a template without that entry is refused at start, naming it."""
    secret = "redis://:s3cret-pw@redis.example:6379"
    launcher = _launcher(api_client, templates["chart-defaults"], redis_url=secret)
    app = launcher.manifest("ingest-0123456789abcdef", JOBS["ingestion"])
    assert "s3cret-pw" not in json.dumps(app)
    assert "PROVENDER_REDIS_URL" in {e["name"] for e in driver_container(app["spec"])["env"]}
    with pytest.raises(InvalidArgument) as info:
        _launcher(api_client, None, redis_url=secret)
    assert info.value.field == "job_template" and "PROVENDER_REDIS_URL" in str(info.value)
    _launcher(api_client, None, redis_url="redis://redis.example:6379")  # no password: nothing to pass
