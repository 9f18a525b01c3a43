"""Jobs through the real Spark operator into Core's job records. The chart is installed (helm) with a staging
location; Core runs here as a process, configured as the chart's Core Deployment configures it (its environment,
read back from the API) and acting as the chart's Core service account, with the job template the chart
installed. A user's SDK starts an ingestion and a retrieval: Core creates their SparkApplications; the operator
(built from its module) runs spark-submit, which creates the driver pods; kwok runs them on its node and ends them.
The namespace enforces the restricted Pod Security profile, and the operator runs without its webhook: the
chart's pod settings reach the driver through its pod template. The applications go through the operator's own
states, SUBMITTED, RUNNING, COMPLETED (or FAILED with the
operator's errorMessage when kwok fails the driver), and the job records Core serves follow. A running job
cancelled through the SDK loses its application, and the garbage collector its driver pod."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from provender import Client, Entity, Feature, FeatureTable, FileSource, ValueType
from provender.core.launchers import k8s
from provender.local.ports import free_port
from tests.e2e.test_core_process import wait_serving
from tests.k8s.cluster import ControlPlane
from tests.k8s.helm import Helm, named
from tests.k8s.parts import PartMissing, Process, wait_for

pytestmark = pytest.mark.timeout(420)

RELEASE, NAMESPACE = "provender-jobs", "feast-jobs"
BUCKET = "s3://provender-test"
VALUES = {"spark": {"stagingLocation": f"{BUCKET}/staging", "allowedStorage": [f"{BUCKET}/data"]}}


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, spark_operator: Process) -> list[dict[str, Any]]:
    try:
        helm = Helm(control_plane)
    except PartMissing as e:
        pytest.skip(str(e))
    helm.restricted_namespace(NAMESPACE)  # the Spark pods too must meet the restricted profile
    helm.install(RELEASE, NAMESPACE, VALUES)
    return helm.manifest(RELEASE, NAMESPACE)


def secret_text(plane: ControlPlane, name: str, key: str) -> str:
    data = client.CoreV1Api(plane.api_client()).read_namespaced_secret(name, NAMESPACE).data or {}
    return base64.b64decode(data[key]).decode()


def chart_environment(plane: ControlPlane, release: list[dict[str, Any]], mounts: Path) -> dict[str, str]:
    """The environment of Core's container as the installed Deployment gives it, resolved as the kubelet would:
    values from Secrets and from the pod's own fields, and the Secrets and ConfigMaps it mounts written under
    `mounts` (the variables that name a file in a mount then name the file there)."""
    name = named(release, "Deployment", "core")["metadata"]["name"]
    pod = client.AppsV1Api(plane.api_client()).read_namespaced_deployment(name, NAMESPACE).spec.template.spec
    (container,) = [c for c in pod.containers if c.name == "core"]
    api = client.CoreV1Api(plane.api_client())

    def secret(secret_name: str) -> dict[str, str]:
        data = api.read_namespaced_secret(secret_name, NAMESPACE).data or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    env = {}
    for var in container.env or []:
        if var.value is not None:
            env[var.name] = var.value
        elif var.value_from.secret_key_ref is not None:
            ref = var.value_from.secret_key_ref
            env[var.name] = secret(ref.name)[ref.key]
        elif (
            var.value_from.field_ref is not None
            and var.value_from.field_ref.field_path == "metadata.namespace"
        ):
            env[var.name] = NAMESPACE
    volumes = {v.name: v for v in pod.volumes or []}
    for mount in container.volume_mounts or []:
        volume = volumes[mount.name]
        if volume.secret is not None:
            files, items = secret(volume.secret.secret_name), volume.secret.items
        elif volume.config_map is not None:
            files = api.read_namespaced_config_map(volume.config_map.name, NAMESPACE).data or {}
            items = volume.config_map.items
        else:
            continue
        if items:
            files = {item.path: files[item.key] for item in items}
        local = mounts / mount.mount_path.lstrip("/")
        for path, text in files.items():
            (local / path).parent.mkdir(parents=True, exist_ok=True)
            (local / path).write_text(text)
        env = {
            k: v.replace(mount.mount_path, str(local), 1) if v.startswith(mount.mount_path) else v
            for k, v in env.items()
        }
    return env


@pytest.fixture(scope="module")
def core(control_plane: ControlPlane, release, postgres, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Core as the chart runs it, here: its Deployment's environment, but the test's Postgres and free loopback
    ports (Core's JobService never calls Redis: the chart's in-cluster URL goes to the jobs as it is). Yields
    what the SDK needs: Core's and the JobService's addresses and the chart's admin token."""
    base = tmp_path_factory.mktemp("core")
    env = chart_environment(control_plane, release, base / "mounts")
    assert env["PROVENDER_SPARK_LAUNCHER"] == "k8s" and env["PROVENDER_K8S_NAMESPACE"] == NAMESPACE
    # The job template the chart installed, as mounted.
    assert (
        Path(env["PROVENDER_K8S_JOB_TEMPLATE"]).read_text()
        == (named(release, "ConfigMap", "spark")["data"]["job-template.yaml"])
    )
    account = named(release, "ServiceAccount", "core")["metadata"]["name"]
    port, job_port = free_port(), free_port()
    env.update(
        {
            "PROVENDER_POSTGRES_URL": postgres.create_database("k8s_core"),
            "PROVENDER_CORE_HOST": "127.0.0.1",
            "PROVENDER_CORE_PORT": str(port),
            "PROVENDER_JOB_PORT": str(job_port),
            "PROVENDER_METRICS_PORT": str(free_port()),
            "PROVENDER_RECONCILE_SECONDS": "0.5",
            "KUBECONFIG": str(
                control_plane.service_account_kubeconfig(NAMESPACE, account, base / "kubeconfig")
            ),
        }
    )
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PROVENDER_", "KUBERNETES_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "provender.cli", "core"],
        env={**inherited, **env},
        stdout=(base / "core.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"127.0.0.1:{port}"
    try:
        import grpc

        with grpc.insecure_channel(url) as channel:
            wait_serving(channel, timeout=60)
        yield {
            "core_url": url,
            "job_service_url": f"127.0.0.1:{job_port}",
            "enable_auth": True,
            "auth_token": secret_text(
                control_plane, named(release, "Secret", "auth")["metadata"]["name"], "admin-token"
            ),
        }
    finally:
        process.terminate()
        process.wait(30)
        print((base / "core.log").read_text()[-3000:])


class Watch:
    """The states an application goes through as the operator writes them, and the job's status as Core serves
    it, each sampled every 0.2 s until both are final."""

    def __init__(self, plane: ControlPlane, sdk: Client, job_id: str) -> None:
        self.custom = client.CustomObjectsApi(plane.api_client())
        self.sdk, self.job_id = sdk, job_id
        self.operator: list[str] = []
        self.core: list[str] = []
        self.error_message = ""
        self.core_error = ""
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by wait()
            self.failure = e

    def _run(self) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                app = self.custom.get_namespaced_custom_object(
                    k8s.GROUP, k8s.VERSION, NAMESPACE, k8s.PLURAL, self.job_id
                )
                state = (app.get("status") or {}).get("applicationState") or {}
                if state.get("state") and (not self.operator or self.operator[-1] != state["state"]):
                    self.operator.append(state["state"])
                    self.error_message = state.get("errorMessage", "")
            except client.ApiException:
                pass
            job = self.sdk.get_job(self.job_id)
            if not self.core or self.core[-1] != job.status:
                self.core.append(job.status)
            self.core_error = job.error_message
            if (
                job.status in ("DONE", "ERROR")
                and self.operator
                and self.operator[-1] in ("COMPLETED", "FAILED")
            ):
                return
            time.sleep(0.2)

    def wait(self) -> Watch:
        self.thread.join(260)
        if self.failure is not None:
            raise AssertionError(f"watching {self.job_id} failed: {self.failure!r}") from self.failure
        return self


def ordered(seen: list[str], expected: list[str]) -> bool:
    """Whether `expected` appears in `seen` in that order (other states may come between)."""
    it = iter(seen)
    return all(state in it for state in expected)


def test_ingestion_and_retrieval_through_the_operators_states(
    control_plane: ControlPlane, release, core: dict[str, Any]
) -> None:
    sdk = Client(**core, project="default")
    source = FileSource(event_timestamp_column="event_timestamp", file_url=f"{BUCKET}/data/driver_hourly/")
    sdk.apply(
        [
            Entity(name="driver_id", value_type=ValueType.INT64, description="a driver"),
            FeatureTable(
                name="driver_hourly",
                entities=["driver_id"],
                features=[Feature("conv_rate", ValueType.FLOAT)],
                batch_source=source,
                max_age=timedelta(days=1),
            ),
            FeatureTable(
                name="fails_on_node",
                entities=["driver_id"],
                features=[Feature("trips", ValueType.INT64)],
                batch_source=FileSource(
                    event_timestamp_column="event_timestamp", file_url=f"{BUCKET}/data/fails_on_node/"
                ),
                max_age=timedelta(days=1),
            ),
        ]
    )
    end = datetime(2026, 12, 1, tzinfo=UTC)
    ingestion = sdk.start_offline_to_online_ingestion("driver_hourly", end - timedelta(days=1), end)
    retrieval = sdk.get_historical_features(["driver_hourly:conv_rate"], f"{BUCKET}/data/entities.parquet")
    failing = sdk.start_offline_to_online_ingestion("fails_on_node", end - timedelta(days=1), end)
    watches = {job.id: Watch(control_plane, sdk, job.id) for job in (ingestion, retrieval, failing)}

    for job_id in (ingestion.id, retrieval.id):
        watch = watches[job_id].wait()
        assert ordered(watch.operator, ["SUBMITTED", "RUNNING", "COMPLETED"]), (job_id, watch.operator)
        assert ordered(watch.core, ["PENDING", "RUNNING", "DONE"]), (job_id, watch.core)
        assert watch.core_error == ""
    watch = watches[failing.id].wait()
    assert ordered(watch.operator, ["SUBMITTED", "RUNNING", "FAILED"]), watch.operator
    assert watch.error_message == "driver container failed with ExitCode: 1, Reason: Error"
    assert ordered(watch.core, ["PENDING", "RUNNING", "ERROR"]), watch.core
    assert watch.core_error == (
        f"SparkApplication {NAMESPACE}/{failing.id} FAILED: driver container failed with ExitCode: 1, Reason: Error"
    )

    # The driver pods were made by spark-submit, as the chart's Spark service account, from the job's labels.
    pods = client.CoreV1Api(control_plane.api_client()).list_namespaced_pod(
        NAMESPACE, label_selector="spark-role=driver"
    )
    by_job = {p.metadata.labels[k8s.JOB_ID_LABEL]: p for p in pods.items}
    assert set(by_job) == {ingestion.id, retrieval.id, failing.id}
    spark_account = named(release, "ServiceAccount", "spark")["metadata"]["name"]
    assert {p.spec.service_account_name for p in pods.items} == {spark_account}
    assert by_job[retrieval.id].metadata.labels[k8s.JOB_TYPE_LABEL] == "retrieval"
    assert by_job[failing.id].status.phase == "Failed" and by_job[ingestion.id].status.phase == "Succeeded"
    # The chart's pod settings reached the pod without the operator's webhook (there is none here): the driver
    # pod template, applied by spark-submit. The namespace enforces the restricted profile, which admitted it.
    pod = by_job[ingestion.id].spec
    (driver,) = [c for c in pod.containers if c.name == k8s.DRIVER_CONTAINER]
    assert driver.security_context.read_only_root_filesystem is True
    assert pod.security_context.run_as_non_root is True and pod.security_context.run_as_user == 10001
    assert "/tmp" in {m.mount_path for m in driver.volume_mounts}
    assert {"HOME", "PROVENDER_REDIS_URL"} <= {e.name for e in driver.env}


def test_cancelling_a_running_job_removes_its_application_and_driver(
    control_plane: ControlPlane, release, core: dict[str, Any]
) -> None:
    sdk = Client(**core, project="default")
    end = datetime(2026, 11, 1, tzinfo=UTC)
    job = sdk.start_offline_to_online_ingestion("driver_hourly", end - timedelta(days=1), end)
    custom = client.CustomObjectsApi(control_plane.api_client())
    pods = client.CoreV1Api(control_plane.api_client())

    def state() -> str:
        app = custom.get_namespaced_custom_object(k8s.GROUP, k8s.VERSION, NAMESPACE, k8s.PLURAL, job.id)
        return ((app.get("status") or {}).get("applicationState") or {}).get("state", "")

    wait_for("the operator to report the driver RUNNING", lambda: state() == "RUNNING", 120)
    sdk.cancel_job(job.id)
    cancelled = sdk.get_job(job.id)
    assert (cancelled.status, cancelled.error_message) == ("ERROR", "cancelled by request (CancelJob)")

    def gone() -> bool:
        try:
            state()
        except client.ApiException as e:
            return e.status == 404
        return False

    wait_for("the SparkApplication to be deleted", gone, 30)
    # The operator made the application the driver pod's owner: the garbage collector deletes the pod.
    driver = f"{job.id}-driver"
    wait_for(
        "the driver pod to be garbage-collected",
        lambda: not pods.list_namespaced_pod(NAMESPACE, field_selector=f"metadata.name={driver}").items,
        60,
    )
    assert sdk.get_job(job.id).status == "ERROR"
