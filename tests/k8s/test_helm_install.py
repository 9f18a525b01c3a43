"""deploy/helm/provender installed for real: the real `helm` against a real API server (Spark operator CRDs in it,
a kwok node to run pods on). Every object of the release is accepted and stored; Core's and Serving's Deployments
become available; `helm upgrade` with changed values and `helm rollback` work and the generated Postgres password
survives both; the external-stores values install too. Then the k8s launcher acts as the chart's Core service
account (its token from the API), with the job template the chart installed: it submits, lists, reads and cancels
SparkApplications in the release's namespace and is refused, by RBAC, anything the chart did not grant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from provender.core.launchers import k8s
from provender.core.launchers.base import JobStatus, create_launcher
from provender.kernel.errors import PermissionDenied
from tests.integration.launchers.test_k8s_launcher import INGESTION, RETRIEVAL
from tests.k8s.cluster import ControlPlane, secret_value
from tests.k8s.helm import Helm, named
from tests.k8s.parts import PartMissing, Process, wait_for
from tests.unit.test_helm_chart import EXTERNAL

pytestmark = pytest.mark.timeout(300)

RELEASE, NAMESPACE = "provender", "feast"


@pytest.fixture(scope="module")
def helm(control_plane: ControlPlane, kwok_node: Process) -> Helm:
    try:
        return Helm(control_plane)
    except PartMissing as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def release(helm: Helm) -> Iterator[list[dict[str, Any]]]:
    """The chart installed with its default values, in a namespace enforcing the restricted Pod Security
    profile: the release's manifest."""
    helm.restricted_namespace(NAMESPACE)
    helm.install(RELEASE, NAMESPACE)
    yield helm.manifest(RELEASE, NAMESPACE)


def assert_stored(plane: ControlPlane, manifest: list[dict[str, Any]], namespace: str) -> None:
    """Every object of the manifest is in the API, as what the chart rendered (kind, name, labels)."""
    dynamic = DynamicClient(plane.api_client())
    for doc in manifest:
        resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        meta = doc["metadata"]
        found = resource.get(name=meta["name"], namespace=namespace if resource.namespaced else None)
        assert found.to_dict()["metadata"].get("labels") == meta.get("labels"), (
            f"{doc['kind']} {meta['name']}"
        )


def wait_available(plane: ControlPlane, namespace: str, name: str, replicas: int) -> None:
    apps = client.AppsV1Api(plane.api_client())

    def available() -> bool:
        status = apps.read_namespaced_deployment(name, namespace).status
        return status.available_replicas == replicas and status.updated_replicas == replicas

    wait_for(f"Deployment {namespace}/{name} to have {replicas} available replicas", available, 90)


def test_every_object_of_the_default_install_is_accepted(control_plane: ControlPlane, release) -> None:
    kinds = {d["kind"] for d in release}
    assert {"Deployment", "StatefulSet", "Service", "Role", "RoleBinding", "ConfigMap", "Secret"} <= kinds
    assert_stored(control_plane, release, NAMESPACE)


def replicas(manifest: list[dict[str, Any]], component: str) -> int:
    """What the Deployment should reach: its replicas, or its autoscaler's minimum (Serving's by default: the
    HorizontalPodAutoscaler raises the Deployment to it; with no metrics here it goes no further)."""
    deployment = named(manifest, "Deployment", component)
    if "replicas" in deployment["spec"]:
        return deployment["spec"]["replicas"]
    return named(manifest, "HorizontalPodAutoscaler", component)["spec"]["minReplicas"]


def test_core_and_serving_become_available_on_the_node(control_plane: ControlPlane, release) -> None:
    assert (
        replicas(release, "serving") == 2
        and "replicas" not in named(release, "Deployment", "serving")["spec"]
    )
    for component in ("core", "serving"):
        deployment = named(release, "Deployment", component)["metadata"]["name"]
        wait_available(control_plane, NAMESPACE, deployment, replicas(release, component))


def test_every_pod_passes_the_restricted_pod_security_profile(control_plane: ControlPlane, release) -> None:
    """Each Deployment's and StatefulSet's pods were admitted by Pod Security Admission ("restricted")."""
    core = client.CoreV1Api(control_plane.api_client())
    workloads = [d for d in release if d["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == 4

    def admitted() -> bool:
        for workload in workloads:
            selector = ",".join(f"{k}={v}" for k, v in workload["spec"]["selector"]["matchLabels"].items())
            if not core.list_namespaced_pod(NAMESPACE, label_selector=selector).items:
                return False
        return True

    wait_for("a pod of every workload to be admitted", admitted, 60)


def core_launcher(plane: ControlPlane, manifest: list[dict[str, Any]], tmp_path: Path) -> k8s.K8sLauncher:
    """The k8s launcher as Core in the release runs it: the chart's Core service account and job template."""
    account = named(manifest, "ServiceAccount", "core")["metadata"]["name"]
    template = named(manifest, "ConfigMap", "spark")["data"]["job-template.yaml"]
    (tmp_path / "job-template.yaml").write_text(template)
    kubeconfig = plane.service_account_kubeconfig(NAMESPACE, account, tmp_path / "core.kubeconfig")
    launcher = create_launcher(
        "k8s",
        namespace=NAMESPACE,
        api_client=plane.api_client(kubeconfig),
        job_template=str(tmp_path / "job-template.yaml"),
        cache_ttl_seconds=0,
    )
    assert isinstance(launcher, k8s.K8sLauncher)
    return launcher


def test_the_cores_service_account_runs_jobs_in_its_namespace(
    control_plane: ControlPlane, release, tmp_path: Path
) -> None:
    jobs = core_launcher(control_plane, release, tmp_path)
    ingestion = jobs.submit("ingest-chart-1", INGESTION)
    retrieval = jobs.submit("retrieve-chart-1", RETRIEVAL)
    listed = {j.job_id: j for j in jobs.list_jobs()}
    assert set(listed) == {"ingest-chart-1", "retrieve-chart-1"}
    assert listed["retrieve-chart-1"].job_type == "retrieval"
    assert [j.job_id for j in jobs.list_jobs(job_type="ingestion")] == ["ingest-chart-1"]
    assert jobs.status(ingestion.handle) == (JobStatus.PENDING, "")
    # The application runs as the chart's Spark service account, in the release's namespace.
    app = client.CustomObjectsApi(control_plane.api_client()).get_namespaced_custom_object(
        k8s.GROUP, k8s.VERSION, NAMESPACE, k8s.PLURAL, "ingest-chart-1"
    )
    spark_account = named(release, "ServiceAccount", "spark")["metadata"]["name"]
    assert app["spec"]["driver"]["serviceAccount"] == spark_account
    jobs.cancel(ingestion.handle)
    jobs.cancel(retrieval.handle)
    assert jobs.list_jobs() == []


def test_what_the_chart_did_not_grant_is_refused(
    control_plane: ControlPlane, release, tmp_path: Path
) -> None:
    jobs = core_launcher(control_plane, release, tmp_path)
    with pytest.raises(PermissionDenied, match="may not"):
        jobs.list_jobs(namespace="default")
    elsewhere = create_launcher(
        "k8s",
        namespace="default",
        api_client=jobs.api_client,
        job_template=jobs.settings.job_template,
        cache_ttl_seconds=0,
    )
    with pytest.raises(PermissionDenied, match="may not"):
        elsewhere.submit("ingest-chart-2", INGESTION)
    # Nor may Core read the release's Secrets (the Postgres password among them).
    core = client.CoreV1Api(jobs.api_client)
    with pytest.raises(client.ApiException) as refused:
        core.list_namespaced_secret(NAMESPACE)
    assert refused.value.status == 403


def test_upgrade_and_rollback_keep_the_generated_postgres_password(
    control_plane: ControlPlane, helm: Helm, release
) -> None:
    api = control_plane.api_client()
    secret = named(release, "Secret", "postgres")["metadata"]["name"]
    password = secret_value(api, NAMESPACE, secret, "postgres-password")
    assert len(password) == 24
    core = named(release, "Deployment", "core")["metadata"]["name"]

    helm.upgrade(RELEASE, NAMESPACE, {"core": {"replicaCount": 3}})
    assert secret_value(api, NAMESPACE, secret, "postgres-password") == password
    wait_available(control_plane, NAMESPACE, core, 3)

    helm.rollback(RELEASE, NAMESPACE, 1)
    assert secret_value(api, NAMESPACE, secret, "postgres-password") == password
    wait_available(control_plane, NAMESPACE, core, 2)
    history = helm.history(RELEASE, NAMESPACE)
    assert [(h["revision"], h["status"]) for h in history] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]
    assert "Rollback to 1" in history[-1]["description"]


def test_the_external_stores_values_install(control_plane: ControlPlane, helm: Helm) -> None:
    helm.install("provender-ext", "feast-ext", EXTERNAL)
    manifest = helm.manifest("provender-ext", "feast-ext")
    assert not [d for d in manifest if d["kind"] == "StatefulSet"]  # no bundled Postgres or Redis
    assert_stored(control_plane, manifest, "feast-ext")
    for component in ("core", "serving"):
        deployment = named(manifest, "Deployment", component)["metadata"]["name"]
        wait_available(control_plane, "feast-ext", deployment, replicas(manifest, component))
