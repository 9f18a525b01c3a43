"""The k8s launcher against a real kube-apiserver with the Spark operator's CRDs installed: what the in-process
stand-in (tests/k8s_standin.py) cannot show. The server itself validates every SparkApplication against the CRD's
schema (strict field validation: an unknown field is refused, not dropped), selects by label, pages lists with
its own continue tokens, keeps `.status` behind its subresource, and deletes. No operator here: the test writes
the status the operator would."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from provender.core.launchers import k8s
from provender.core.launchers.base import JobStatus, create_launcher
from provender.kernel.errors import FailedPrecondition
from tests.integration.launchers.test_k8s_launcher import INGESTION, KAFKA_JARS, RETRIEVAL, STREAM
from tests.k8s.cluster import ControlPlane

pytestmark = pytest.mark.timeout(120)

_namespaces = itertools.count()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"launcher-{next(_namespaces)}"
    core = client.CoreV1Api(control_plane.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def launcher(plane: ControlPlane, namespace: str, **settings) -> k8s.K8sLauncher:
    made = create_launcher(
        "k8s",
        namespace=namespace,
        api_client=plane.api_client(),
        image="provender:test",
        spark_version="4.0.0",
        cache_ttl_seconds=0,
        **settings,
    )
    assert isinstance(made, k8s.K8sLauncher)
    return made


def custom(plane: ControlPlane) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(plane.api_client())


def stored(plane: ControlPlane, namespace: str, name: str) -> dict:
    return custom(plane).get_namespaced_custom_object(k8s.GROUP, k8s.VERSION, namespace, k8s.PLURAL, name)


def report(plane: ControlPlane, namespace: str, name: str, state: str, message: str = "") -> None:
    """Write the application's status as the operator does: through the status subresource (the CRD requires
    driverInfo, which the operator always writes)."""
    body = {"status": {"applicationState": {"state": state, "errorMessage": message}, "driverInfo": {}}}
    custom(plane).patch_namespaced_custom_object_status(
        k8s.GROUP, k8s.VERSION, namespace, k8s.PLURAL, name, body
    )


def test_the_server_accepts_every_kind_of_job_against_the_crd(
    control_plane: ControlPlane, namespace: str
) -> None:
    assert control_plane.version.startswith("v1.")
    jobs = launcher(control_plane, namespace, jars=KAFKA_JARS)
    for job_id, args in (("ingest-1", INGESTION), ("retrieve-1", RETRIEVAL), ("stream-1", STREAM)):
        launched = jobs.submit(job_id, args)
        app = stored(control_plane, namespace, job_id)
        # What the server kept is what the launcher meant: nothing pruned by the schema.
        assert app["spec"] == jobs.manifest(job_id, args)["spec"]
        assert app["metadata"]["labels"][k8s.JOB_ID_LABEL] == job_id
        assert jobs.status(launched.handle) == (JobStatus.PENDING, "")
    assert stored(control_plane, namespace, "stream-1")["spec"]["restartPolicy"] == k8s.STREAM_RESTART_POLICY


def test_a_field_the_crd_does_not_know_is_refused_by_name(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    template = k8s.default_template("provender:test", "default", "4.0.0", "IfNotPresent")
    bad = tmp_path / "template.yaml"
    bad.write_text(
        template.replace("  timeToLiveSeconds: 86400", "  timeToLiveSeconds: 86400\n  retryForever: true")
    )
    jobs = launcher(control_plane, namespace, job_template=str(bad))
    with pytest.raises(FailedPrecondition) as refused:
        jobs.submit("ingest-2", INGESTION)
    assert "rejected the job's SparkApplication" in str(refused.value)
    assert "retryForever" in str(refused.value)
    # ... and a wrong type is refused by the schema.
    bad.write_text(template.replace('cores: 1\n    memory: "1g"', 'cores: "one"\n    memory: "1g"', 1))
    with pytest.raises(FailedPrecondition, match="cores"):
        launcher(control_plane, namespace, job_template=str(bad)).submit("ingest-3", INGESTION)


def test_statuses_selection_paging_and_cancel(control_plane: ControlPlane, namespace: str) -> None:
    jobs = launcher(control_plane, namespace, list_page_size=1)
    handles = {
        job_id: jobs.submit(job_id, args).handle
        for job_id, args in (("ingest-4", INGESTION), ("retrieve-4", RETRIEVAL))
    }
    # Paged by the server's continue tokens, one item a page.
    assert [j.job_id for j in jobs.list_jobs()] == ["ingest-4", "retrieve-4"]
    assert [j.job_id for j in jobs.list_jobs(job_type="retrieval")] == ["retrieve-4"]
    assert [j.job_id for j in jobs.list_jobs(project="default", table="driver_hourly")] == [
        "ingest-4",
        "retrieve-4",
    ]
    assert jobs.list_jobs(project="another") == []

    report(control_plane, namespace, "ingest-4", "RUNNING")
    report(control_plane, namespace, "retrieve-4", "FAILED", "Job aborted due to stage failure")
    assert jobs.status(handles["ingest-4"]) == (JobStatus.RUNNING, "")
    assert jobs.status(handles["retrieve-4"]) == (
        JobStatus.ERROR,
        f"SparkApplication {namespace}/retrieve-4 FAILED: Job aborted due to stage failure",
    )
    # A status written through the main resource is not the status: the subresource keeps it.
    custom(control_plane).patch_namespaced_custom_object(
        k8s.GROUP,
        k8s.VERSION,
        namespace,
        k8s.PLURAL,
        "ingest-4",
        {"status": {"applicationState": {"state": "COMPLETED"}}},
    )
    assert jobs.status(handles["ingest-4"]) == (JobStatus.RUNNING, "")

    jobs.cancel(handles["ingest-4"])
    assert [j.job_id for j in jobs.list_jobs()] == ["retrieve-4"]
    assert jobs.status(handles["ingest-4"]) == (JobStatus.ERROR, k8s.CANCELLED_MESSAGE)
    jobs.cancel(handles["ingest-4"])  # gone already: nothing to do
