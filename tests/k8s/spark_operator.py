"""The Kubeflow Spark operator's controller, as built from its Go module, run against the test control plane.

It runs as its own service account (`spark-operator/spark-operator`, bound to cluster-admin here: the operator's
own chart, not ours, decides its real grants), reaching the API by a kubeconfig with that account's token. It
submits an application the way it does in a cluster, by running `$SPARK_HOME/bin/spark-submit`, here the
spark-submit of the pyspark wheel in .venv, which creates the driver pod through the API server; kwok then plays
the pod. The CRDs it needs beyond SparkApplication and ScheduledSparkApplication (SparkConnect) come from the
same module version."""

from __future__ import annotations

import os
from pathlib import Path

import pyspark
from kubernetes import client

from tests.k8s.cluster import ControlPlane
from tests.k8s.parts import REPO, Process, program, wait_for

NAMESPACE = "spark-operator"
# Where the operator writes each submission's pod templates for spark-submit (fixed in its code).
POD_TEMPLATES = Path("/tmp/spark")
ACCOUNT = "spark-operator"


def module_crds(operator: Path) -> list[Path]:
    """The operator module's CRDs that our vendored ones do not cover, from the module cache of its version."""
    version = operator.parent.name.removeprefix("spark-operator-")
    bases = REPO / ".deps" / "go" / "mod" / "github.com" / "kubeflow" / "spark-operator" / f"v2@{version}"
    return sorted((bases / "config" / "crd" / "bases").glob("*sparkconnects.yaml"))


def start_operator(plane: ControlPlane) -> Process:
    operator = program("spark-operator", "operator")
    plane.apply_crds(*module_crds(operator))
    core = client.CoreV1Api(plane.api_client())
    rbac = client.RbacAuthorizationV1Api(plane.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    core.create_namespaced_service_account(NAMESPACE, client.V1ServiceAccount(metadata={"name": ACCOUNT}))
    rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name="spark-operator-test"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=ACCOUNT, namespace=NAMESPACE)],
        )
    )
    kubeconfig = plane.service_account_kubeconfig(
        NAMESPACE, ACCOUNT, plane.base / "spark-operator.kubeconfig"
    )
    port = plane.url.rsplit(":", 1)[1]
    if not POD_TEMPLATES.exists():
        # Made here, writable by every user as /tmp is, so that a later run of another user can write it too.
        POD_TEMPLATES.mkdir()
        POD_TEMPLATES.chmod(0o1777)
    if not os.access(POD_TEMPLATES, os.W_OK | os.X_OK):
        raise RuntimeError(
            f"the Spark operator writes its pod templates under {POD_TEMPLATES} (a fixed path), which this user "
            "may not write: another user's run made it; remove it, or make it mode 1777 as /tmp is"
        )
    process = Process(
        "spark-operator",
        [
            str(operator),
            "controller",
            "start",
            "--enable-ui-service=false",
            "--health-probe-bind-address=0",
            "--metrics-bind-address=0",
            "--controller-threads=4",
            "--driver-pod-creation-grace-period=60s",
            "--zap-log-level=info",
        ],
        plane.base / "spark-operator.log",
        env={
            "KUBECONFIG": str(kubeconfig),
            # spark-submit's master URL is made of these, as in a pod.
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": port,
            "SPARK_HOME": str(Path(pyspark.__file__).parent),
            # spark-submit (fabric8) reads the same kubeconfig; a short-lived JVM needs no optimising JIT.
            "JAVA_TOOL_OPTIONS": os.environ.get("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1"),
        },
    )
    plane.processes.append(process)
    wait_for(
        "the Spark operator to start its SparkApplication controller",
        lambda: "Starting workers" in process.log.read_text(errors="replace"),
        90,
        watch=[process],
    )
    return process
