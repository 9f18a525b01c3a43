"""The k8s launcher's lifecycle against an in-process stand-in of the Kubernetes API (tests/k8s_standin.py),
reached by the real `kubernetes` client over HTTP: create, idempotent re-submit, the status transitions the Spark
operator reports (SUSPENDED, UNKNOWN and a state nobody knows included), failure with errorMessage, cancel, a
new launcher after a Core restart, the cached LIST, API errors; and Core's JobController running job records to
DONE and ERROR through it; a stream job submitted, running through a driver failure the operator retries, and
cancelled. No cluster, no Spark: the test plays the operator by setting `.status`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from provender.core.jobs.controller import EntitySource, JobController, JobSettings
from provender.core.jobs.store import JobStore
from provender.core.launchers import k8s
from provender.core.launchers.base import JobStatus, Launched, create_launcher
from provender.core.registry.database import Database, make_engine, migrate
from provender.core.registry.service import Registry
from provender.kernel.errors import FailedPrecondition, PermissionDenied, ProvenderError, Unavailable
from provender.kernel.jobs.args import (
    Column,
    FeatureSelection,
    IngestionJobArgs,
    JobSource,
    JobTable,
    KafkaJobSource,
    RetrievalJobArgs,
    StreamIngestionJobArgs,
)
from provender.kernel.value_types import ValueType
from tests import factories as f
from tests.helm import chart as c
from tests.k8s_standin import K8sStandIn

pytestmark = pytest.mark.timeout(60)

NS = "feast"
JOB = "ingest-0123456789abcdef"
TABLE = JobTable(
    "driver_hourly",
    (Column("driver_id", ValueType.INT64),),
    (Column("conv_rate", ValueType.FLOAT),),
    JobSource("s3://bucket/driver_hourly/", "event_timestamp"),
    3600,
)
INGESTION = IngestionJobArgs(
    project="default",
    table=TABLE,
    redis_url="redis://provender-redis:6379",
    start=datetime(2026, 11, 1, tzinfo=UTC),
    end=datetime(2026, 11, 2, tzinfo=UTC),
    dead_letter_location="s3://bucket/dead-letter/",
)
STREAM_JOB = "stream-0123456789abcdef"
STREAM = StreamIngestionJobArgs(
    project="default",
    table=TABLE,
    source=KafkaJobSource("kafka:9092", "driver_trips", "json", "event_timestamp"),
    redis_url="redis://provender-redis:6379",
    checkpoint_location="s3://bucket/checkpoints/default/driver_hourly/0123abcd",
    dead_letter_location="s3://bucket/dead-letter/",
    metrics_port=8090,
)
KAFKA_JARS = ("local:///opt/provender/jars/spark-sql-kafka-0-10_2.13-4.2.0.jar",)
RETRIEVAL = RetrievalJobArgs(
    project="default",
    entity_source=JobSource("s3://bucket/entities.parquet", "event_timestamp"),
    tables=(FeatureSelection(TABLE, ("conv_rate",)),),
    output_location="s3://bucket/out",
)


@pytest.fixture
def standin() -> Iterator[K8sStandIn]:
    with K8sStandIn() as server:
        yield server


def new_launcher(standin: K8sStandIn, **settings: Any) -> k8s.K8sLauncher:
    """A launcher as Core makes it, with its own API client (a new one stands for a restarted Core)."""
    configuration = client.Configuration()
    configuration.host = standin.url
    launcher = create_launcher("k8s", namespace=NS, api_client=client.ApiClient(configuration), **settings)
    assert isinstance(launcher, k8s.K8sLauncher)
    return launcher


@pytest.fixture
def launcher(standin: K8sStandIn) -> k8s.K8sLauncher:
    return new_launcher(standin, cache_ttl_seconds=0)


def test_submit_creates_one_labelled_sparkapplication_named_after_the_job(standin: K8sStandIn) -> None:
    # This API server also checks what it stores against the CRD's schema, strictly.
    standin.validate = lambda obj: [e.message for e in c.sparkapplication_validator().iter_errors(obj)]
    launcher = new_launcher(standin)
    launched = launcher.submit(JOB, INGESTION)
    (app,) = standin.objects(NS)
    assert app["metadata"]["name"] == JOB and app["metadata"]["namespace"] == NS
    assert app["metadata"]["labels"] == {
        "provender.dev/job-id": JOB,
        "provender.dev/job-type": "ingestion",
        "provender.dev/project": "default",
        "provender.dev/table": "driver_hourly",
    }
    assert app["spec"]["arguments"] == [INGESTION.to_json()]
    assert app["spec"]["mainApplicationFile"] == "local:///opt/provender/jobs/ingestion.py"
    assert "status" not in app
    assert json.loads(launched.handle) == {"launcher": "k8s", "namespace": NS, "name": JOB, "job_id": JOB}
    # Before the operator reports the driver pod, the log is where the operator will put it.
    assert launched.log_uri == f"k8s://{NS}/pods/{JOB}-driver/log"
    assert launcher.status(launched.handle) == (JobStatus.PENDING, "")
    # The create asks the API server to refuse unknown fields rather than drop them.
    (post,) = [r for r in standin.requests if r.method == "POST"]
    assert post.query["fieldValidation"] == ["Strict"]


def test_resubmitting_a_job_id_returns_the_first_launch(
    standin: K8sStandIn, launcher: k8s.K8sLauncher
) -> None:
    first = launcher.submit(JOB, INGESTION)
    standin.set_status(NS, JOB, "RUNNING", pod_name=f"{JOB}-driver")
    assert launcher.submit(JOB, INGESTION) == first
    # ... also from another launcher object, and while the job runs.
    assert new_launcher(standin).submit(JOB, INGESTION) == first
    assert len(standin.objects(NS)) == 1
    assert standin.count("POST") == 3  # each later one answered 409 AlreadyExists
    assert standin.get(NS, JOB)["status"]["applicationState"]["state"] == "RUNNING"


def test_another_jobs_application_of_the_same_name_is_not_taken_for_this_one(
    standin: K8sStandIn, launcher: k8s.K8sLauncher
) -> None:
    launcher.submit(JOB, INGESTION)
    app = standin.get(NS, JOB)
    standin.delete(NS, JOB)
    app["metadata"]["annotations"]["provender.dev/job-id"] = "someone-else"
    del app["metadata"]["resourceVersion"]
    client_api = launcher.api
    client_api.create_namespaced_custom_object(k8s.GROUP, k8s.VERSION, NS, k8s.PLURAL, app)
    with pytest.raises(FailedPrecondition, match="already exists for job 'someone-else'"):
        launcher.submit(JOB, INGESTION)


@pytest.mark.parametrize(
    "states",
    [
        # What the operator reports for a job that succeeds, and one that is retried by its restart policy.
        [(None, JobStatus.PENDING), ("SUBMITTED", JobStatus.PENDING), ("RUNNING", JobStatus.RUNNING),
         ("SUCCEEDING", JobStatus.RUNNING), ("COMPLETED", JobStatus.DONE)],
        [("SUBMITTED", JobStatus.PENDING), ("RUNNING", JobStatus.RUNNING), ("FAILING", JobStatus.RUNNING),
         ("PENDING_RERUN", JobStatus.PENDING), ("SUBMITTED", JobStatus.PENDING), ("RUNNING", JobStatus.RUNNING),
         ("COMPLETED", JobStatus.DONE)],
        # Suspended and resumed, its node lost for a while, an update, and states this launcher never heard of.
        [("RUNNING", JobStatus.RUNNING), ("SUSPENDING", JobStatus.PENDING), ("SUSPENDED", JobStatus.PENDING),
         ("RESUMING", JobStatus.PENDING), ("UNKNOWN", JobStatus.RUNNING), ("INVALIDATING", JobStatus.PENDING),
         ("HIBERNATING", JobStatus.PENDING), ("", JobStatus.PENDING), ("RUNNING", JobStatus.RUNNING),
         ("COMPLETED", JobStatus.DONE)],
    ],
    ids=["success", "rerun", "suspend-unknown-invented"],
)  # fmt: skip
def test_status_follows_what_the_operator_reports(
    standin: K8sStandIn, launcher: k8s.K8sLauncher, states: list[tuple[str | None, JobStatus]]
) -> None:
    handle = launcher.submit(JOB, INGESTION).handle
    for state, expected in states:
        if state is not None:
            standin.set_status(NS, JOB, state)
        assert launcher.status(handle) == (expected, ""), state


def test_failure_carries_the_operators_error_message(standin: K8sStandIn, launcher: k8s.K8sLauncher) -> None:
    handle = launcher.submit(JOB, INGESTION).handle
    standin.set_status(NS, JOB, "RUNNING", pod_name="ingest-driver-pod")
    assert launcher.log_uri(handle) == f"k8s://{NS}/pods/ingest-driver-pod/log"
    message = "driver container failed with ExitCode: 1, Reason: Error"
    standin.set_status(NS, JOB, "FAILED", message)
    assert launcher.status(handle) == (JobStatus.ERROR, f"SparkApplication {NS}/{JOB} FAILED: {message}")
    assert launcher.log_uri(handle) == f"k8s://{NS}/pods/ingest-driver-pod/log"


def test_submission_failure(standin: K8sStandIn, launcher: k8s.K8sLauncher) -> None:
    handle = launcher.submit(JOB, INGESTION).handle
    standin.set_status(
        NS, JOB, "SUBMISSION_FAILED", 'pods "x" is forbidden: exceeded quota', submissionAttempts=1
    )
    state, message = launcher.status(handle)
    assert state is JobStatus.ERROR and message.endswith("exceeded quota")


def test_cancel_deletes_the_application(standin: K8sStandIn, launcher: k8s.K8sLauncher) -> None:
    handle = launcher.submit(JOB, INGESTION).handle
    standin.set_status(NS, JOB, "RUNNING")
    launcher.cancel(handle)
    assert standin.objects(NS) == []
    assert launcher.status(handle) == (JobStatus.ERROR, k8s.CANCELLED_MESSAGE)
    launcher.cancel(handle)  # already gone: 404 is fine
    new_launcher(standin).cancel(handle)
    # Another launcher (Core restarted) sees it gone, and says so.
    state, message = new_launcher(standin).status(handle)
    assert state is JobStatus.ERROR and "no longer exists" in message


def test_cancel_leaves_a_finished_job_as_it_is(standin: K8sStandIn, launcher: k8s.K8sLauncher) -> None:
    handle = launcher.submit(JOB, INGESTION).handle
    standin.set_status(NS, JOB, "COMPLETED")
    launcher.cancel(handle)
    assert standin.get(NS, JOB) is not None
    assert launcher.status(handle) == (JobStatus.DONE, "")


def test_an_application_removed_behind_cores_back_is_an_error(
    standin: K8sStandIn, launcher: k8s.K8sLauncher
) -> None:
    handle = launcher.submit(JOB, INGESTION).handle
    standin.delete(NS, JOB)  # e.g. kubectl delete, or the operator's timeToLiveSeconds
    state, message = launcher.status(handle)
    assert state is JobStatus.ERROR and "no longer exists" in message


def test_a_restarted_core_finds_its_jobs(standin: K8sStandIn) -> None:
    before = new_launcher(standin)
    ingestion = before.submit(JOB, INGESTION)
    retrieval = before.submit("retrieve-0123456789abcdef", RETRIEVAL)
    other = before.submit(
        "ingest-fedcba9876543210", IngestionJobArgs(**{**INGESTION.__dict__, "project": "p2"})
    )
    standin.set_status(NS, JOB, "RUNNING", pod_name="drv")
    standin.set_status(NS, "retrieve-0123456789abcdef", "FAILED", "OOMKilled")
    del before

    after = new_launcher(standin)  # Core restarted: a new launcher and API client, the handles from Postgres
    assert after.status(ingestion.handle) == (JobStatus.RUNNING, "")
    assert after.status(retrieval.handle)[0] is JobStatus.ERROR
    assert after.log_uri(ingestion.handle) == f"k8s://{NS}/pods/drv/log"
    assert after.submit(JOB, INGESTION) == Launched(ingestion.handle, f"k8s://{NS}/pods/drv/log")
    # Listing by label selector.
    jobs = {j.job_id: j for j in after.list_jobs()}
    assert set(jobs) == {JOB, "retrieve-0123456789abcdef", "ingest-fedcba9876543210"}
    assert jobs[JOB].handle == ingestion.handle and jobs[JOB].state is JobStatus.RUNNING
    assert jobs["retrieve-0123456789abcdef"].error_message.endswith("OOMKilled")
    assert jobs["ingest-fedcba9876543210"].handle == other.handle
    assert [j.job_id for j in after.list_jobs(project="p2")] == ["ingest-fedcba9876543210"]
    assert [j.job_id for j in after.list_jobs(job_type="retrieval")] == ["retrieve-0123456789abcdef"]
    assert {j.job_id for j in after.list_jobs(table="driver_hourly")} == set(jobs)
    lists = [r for r in standin.requests if r.method == "GET" and "labelSelector" in r.query]
    assert "provender.dev/project=p2" in lists[-3].query["labelSelector"][0]


def test_listing_follows_pages(standin: K8sStandIn) -> None:
    launcher = new_launcher(standin, list_page_size=2)
    ids = [f"ingest-{i:016x}" for i in range(5)]
    for job_id in ids:
        launcher.submit(job_id, INGESTION)
    assert [j.job_id for j in launcher.list_jobs()] == ids
    assert standin.count("GET", collection=True) == 3


def test_statuses_come_from_one_cached_list_not_a_get_per_call(standin: K8sStandIn) -> None:
    launcher = new_launcher(standin, cache_ttl_seconds=60)
    handles = [launcher.submit(f"ingest-{i:016x}", INGESTION).handle for i in range(10)]
    for name in (f"ingest-{i:016x}" for i in range(10)):
        standin.set_status(NS, name, "RUNNING")
    gets_before = standin.count("GET", collection=False)
    for _ in range(3):
        for handle in handles:
            launcher.status(handle)
    assert standin.count("GET", collection=True) == 1  # one LIST by label selector
    assert standin.count("GET", collection=False) == gets_before  # no GET per status call
    # The cache is as old as its TTL allows: a refresh sees the operator's news.
    assert launcher.status(handles[0]) == (JobStatus.RUNNING, "")
    standin.set_status(NS, "ingest-0000000000000000", "COMPLETED")
    launcher.refresh()
    assert launcher.status(handles[0]) == (JobStatus.DONE, "")
    assert standin.count("GET", collection=True) == 2
    # A job submitted since the last LIST is known at once, without another LIST.
    late = launcher.submit("ingest-ffffffffffffffff", INGESTION).handle
    assert launcher.status(late) == (JobStatus.PENDING, "")
    assert standin.count("GET", collection=True) == 2


def test_api_errors_are_provender_errors(standin: K8sStandIn, launcher: k8s.K8sLauncher) -> None:
    standin.fail_next(403, "POST", reason="Forbidden")
    with pytest.raises(PermissionDenied, match="RBAC"):
        launcher.submit(JOB, INGESTION)
    standin.fail_next(404, "POST", reason="NotFound")
    with pytest.raises(FailedPrecondition, match="CRD installed"):
        launcher.submit(JOB, INGESTION)
    standin.fail_next(422, "POST", reason="Invalid")
    with pytest.raises(FailedPrecondition, match="rejected"):
        launcher.submit(JOB, INGESTION)
    handle = launcher.submit(JOB, INGESTION).handle
    standin.fail_next(500, "GET")
    with pytest.raises(Unavailable):
        launcher.status(handle)
    assert launcher.status(handle) == (JobStatus.PENDING, "")
    standin.stop()
    with pytest.raises(Unavailable, match="unreachable"):
        launcher.status(handle)


def test_a_stream_job_runs_through_a_retried_failure_until_cancelled(standin: K8sStandIn) -> None:
    standin.validate = lambda obj: [e.message for e in c.sparkapplication_validator().iter_errors(obj)]
    launcher = new_launcher(standin, cache_ttl_seconds=0, jars=KAFKA_JARS)
    handle = launcher.submit(STREAM_JOB, STREAM).handle
    (app,) = standin.objects(NS)
    assert app["metadata"]["labels"]["provender.dev/job-type"] == "stream"
    assert app["spec"]["mainApplicationFile"] == "local:///opt/provender/jobs/stream_ingestion.py"
    assert app["spec"]["restartPolicy"] == k8s.STREAM_RESTART_POLICY
    assert app["spec"]["driver"]["annotations"]["prometheus.io/port"] == "8090"
    assert app["spec"]["deps"]["jars"] == list(KAFKA_JARS)
    assert launcher.status(handle) == (JobStatus.PENDING, "")
    # Running, its driver lost and resubmitted by the operator (restartPolicy OnFailure), running again: the job
    # stays active throughout, and RUNNING however many status calls (and however long) it runs.
    for state, expected in [
        ("SUBMITTED", JobStatus.PENDING),
        ("RUNNING", JobStatus.RUNNING),
        ("FAILING", JobStatus.RUNNING),
        ("PENDING_RERUN", JobStatus.PENDING),
        ("SUBMITTED", JobStatus.PENDING),
        ("RUNNING", JobStatus.RUNNING),
    ]:
        standin.set_status(NS, STREAM_JOB, state, pod_name=f"{STREAM_JOB}-driver", executionAttempts=2)
        assert launcher.status(handle) == (expected, ""), state
    for _ in range(20):
        assert launcher.status(handle) == (JobStatus.RUNNING, "")
    assert [j.job_id for j in launcher.list_jobs(job_type="stream")] == [STREAM_JOB]
    assert launcher.list_jobs(job_type="ingestion") == []
    # Cancel deletes the running application; the operator then removes the driver and executors.
    launcher.cancel(handle)
    assert standin.objects(NS) == []
    assert launcher.status(handle) == (JobStatus.ERROR, k8s.CANCELLED_MESSAGE)


# The JobController with this launcher -----------------------------------------------------------------------------


@pytest.fixture
def controller(database_url: str, standin: K8sStandIn) -> JobController:
    engine = make_engine(database_url)
    migrate(engine)
    db = Database(engine)
    registry = Registry(db)
    registry.apply_entity("default", f.entity("driver_id", ValueType.INT64))
    table = f.table("driver_hourly")
    table.batch_source.file_options.file_url = "s3://bucket/driver_hourly/"
    registry.apply_feature_table("default", table)
    return JobController(
        JobStore(db),
        registry,
        new_launcher(standin, cache_ttl_seconds=0),
        JobSettings(staging_location="s3://bucket/staging", redis_url="redis://provender-redis:6379"),
    )


def test_job_controller_runs_jobs_to_done_and_error(controller: JobController, standin: K8sStandIn) -> None:
    end = datetime(2026, 11, 2, tzinfo=UTC)
    ingestion = controller.start_offline_to_online("default", "driver_hourly", end - timedelta(days=1), end)
    assert ingestion.handle and ingestion.log_uri == f"k8s://{NS}/pods/{ingestion.id}-driver/log"
    retrieval = controller.get_historical_features(
        "default", ["driver_hourly:conv_rate"], EntitySource("s3://bucket/entities.parquet"), "", "parquet"
    )
    apps = {a["metadata"]["name"]: a for a in standin.objects(NS)}
    assert set(apps) == {ingestion.id, retrieval.id}
    assert apps[retrieval.id]["metadata"]["labels"]["provender.dev/job-type"] == "retrieval"

    standin.set_status(NS, ingestion.id, "RUNNING", pod_name=f"{ingestion.id}-driver")
    standin.set_status(NS, retrieval.id, "SUBMITTED")
    controller.reconcile_all()
    assert controller.store.get(ingestion.id).status is JobStatus.RUNNING
    assert controller.store.get(retrieval.id).status is JobStatus.PENDING

    standin.set_status(NS, ingestion.id, "COMPLETED")
    standin.set_status(NS, retrieval.id, "FAILED", "Job aborted due to stage failure")
    controller.reconcile_all()
    done = controller.get_job(ingestion.id)
    assert done.status is JobStatus.DONE and done.error_message == ""
    failed = controller.get_job(retrieval.id)
    assert failed.status is JobStatus.ERROR
    assert (
        failed.error_message
        == f"SparkApplication {NS}/{retrieval.id} FAILED: Job aborted due to stage failure"
    )
    # A finished ingestion asked for again is a new attempt, with an id and an application of its own.
    again = controller.start_offline_to_online("default", "driver_hourly", end - timedelta(days=1), end)
    assert again.id == f"{ingestion.id}-2" and again.status is JobStatus.PENDING
    assert len(standin.objects(NS)) == 3


def test_job_controller_asks_once_for_an_active_job(controller: JobController, standin: K8sStandIn) -> None:
    end = datetime(2026, 11, 2, tzinfo=UTC)
    first = controller.start_offline_to_online("default", "driver_hourly", end - timedelta(days=1), end)
    standin.set_status(NS, first.id, "RUNNING")
    second = controller.start_offline_to_online("default", "driver_hourly", end - timedelta(days=1), end)
    assert second.id == first.id and len(standin.objects(NS)) == 1
    # A record created but never submitted (Core stopped in between) is submitted by reconcile, idempotently.
    controller.store.launched(first.id, "", "")
    assert controller._submit(controller.store.get(first.id)).handle == first.handle
    assert len(standin.objects(NS)) == 1


def test_job_controller_cancels_and_reports_submission_errors(
    controller: JobController, standin: K8sStandIn
) -> None:
    end = datetime(2026, 11, 2, tzinfo=UTC)
    job = controller.start_offline_to_online("default", "driver_hourly", end - timedelta(days=1), end)
    standin.set_status(NS, job.id, "RUNNING")
    cancelled = controller.cancel_job(job.id)
    assert cancelled.status is JobStatus.ERROR and standin.get(NS, job.id) is None
    standin.fail_next(403, "POST", reason="Forbidden")
    refused = controller.start_offline_to_online("default", "driver_hourly", end - timedelta(days=2), end)
    assert refused.status is JobStatus.ERROR and "submission failed" in refused.error_message
    assert isinstance(PermissionDenied("x"), ProvenderError)


def test_job_controller_runs_a_stream_job_until_cancelled(database_url: str, standin: K8sStandIn) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    registry = Registry(Database(engine))
    registry.apply_entity("default", f.entity("driver_id", ValueType.INT64))
    registry.apply_feature_table("default", f.table("driver_trips", stream=True))
    controller = JobController(
        JobStore(Database(engine)),
        registry,
        new_launcher(standin, cache_ttl_seconds=0, jars=KAFKA_JARS),
        JobSettings(
            staging_location="s3://bucket/staging",
            redis_url="redis://provender-redis:6379",
            stream_metrics_port=8090,
        ),
    )
    job = controller.start_stream_to_online("default", "driver_trips")
    app = standin.get(NS, job.id)
    assert app["metadata"]["labels"]["provender.dev/job-type"] == "stream"
    assert app["metadata"]["annotations"]["provender.dev/table"] == "driver_trips"
    assert app["spec"]["restartPolicy"]["type"] == "OnFailure"
    assert app["spec"]["driver"]["annotations"]["prometheus.io/port"] == "8090"
    standin.set_status(NS, job.id, "RUNNING", pod_name=f"{job.id}-driver")
    for _ in range(3):
        controller.reconcile_all()
        assert controller.store.get(job.id).status is JobStatus.RUNNING
    # The same table's stream asked for again while it runs is the running job.
    assert controller.start_stream_to_online("default", "driver_trips").id == job.id
    assert len(standin.objects(NS)) == 1
    cancelled = controller.cancel_job(job.id)
    assert cancelled.status is JobStatus.ERROR and standin.get(NS, job.id) is None
    engine.dispose()


def test_configured_from_a_kubeconfig(standin: K8sStandIn, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "standin", "cluster": {"server": standin.url}}],
                "users": [{"name": "core", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "core"}}],
                "current-context": "standin",
            }
        )
    )
    launcher = create_launcher("k8s", namespace=NS, kubeconfig=str(kubeconfig), in_cluster=False)
    launcher.submit(JOB, INGESTION)
    assert [a["metadata"]["name"] for a in standin.objects(NS)] == [JOB]
    with pytest.raises(FailedPrecondition, match="kubeconfig"):
        create_launcher("k8s", namespace=NS, kubeconfig=str(tmp_path / "missing"))
    with pytest.raises(FailedPrecondition, match="service account"):
        create_launcher("k8s", namespace=NS, in_cluster=True)


def test_concurrent_status_calls_share_one_list(standin: K8sStandIn) -> None:
    launcher = new_launcher(standin, cache_ttl_seconds=60)
    handles = [launcher.submit(f"ingest-{i:016x}", INGESTION).handle for i in range(4)]
    fresh = new_launcher(standin, cache_ttl_seconds=60)  # nothing cached yet
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fresh.status, handles * 8))
    assert results == [(JobStatus.PENDING, "")] * 32
    assert standin.count("GET", collection=True) == 1
