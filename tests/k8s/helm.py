"""The real `helm` command (Helm v4, built from its Go module) against the test control plane, as an operator of
the platform runs it: install, upgrade, rollback, history and the manifest of a release."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.helm.chart import CHART
from tests.k8s.cluster import ControlPlane
from tests.k8s.parts import program


class Helm:
    def __init__(self, plane: ControlPlane) -> None:
        self.binary = program("helm", "helm")
        self.plane = plane
        home = plane.base / "helm"
        self.env = {
            "KUBECONFIG": str(plane.admin_kubeconfig),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "HOME": str(home),  # its API discovery cache goes to $HOME/.kube/cache
            "PATH": "/usr/bin:/bin",
        }
        self._values = 0

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            raise HelmFailed(f"helm {' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}")
        return done.stdout

    def restricted_namespace(self, namespace: str) -> None:
        """Create the namespace with Pod Security Admission enforcing the "restricted" profile, as a hardened
        cluster's namespaces are: a pod of the release that does not meet it is refused at creation."""
        from kubernetes import client

        labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
        client.CoreV1Api(self.plane.api_client()).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=labels))
        )

    def values_file(self, values: dict[str, Any]) -> Path:
        self._values += 1
        path = self.plane.base / f"values-{self._values}.yaml"
        path.write_text(yaml.safe_dump(values))
        return path

    def install(self, release: str, namespace: str, values: dict[str, Any] | None = None) -> str:
        return self.run(
            "install", release, str(CHART), "--namespace", namespace, "--create-namespace",
            "--values", str(self.values_file(values or {})),
        )  # fmt: skip

    def upgrade(self, release: str, namespace: str, values: dict[str, Any]) -> str:
        return self.run(
            "upgrade",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--values",
            str(self.values_file(values)),
        )

    def rollback(self, release: str, namespace: str, revision: int) -> str:
        return self.run("rollback", release, str(revision), "--namespace", namespace)

    def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        return json.loads(self.run("history", release, "--namespace", namespace, "--output", "json"))

    def manifest(self, release: str, namespace: str) -> list[dict[str, Any]]:
        text = self.run("get", "manifest", release, "--namespace", namespace)
        return [d for d in yaml.safe_load_all(text) if d]


class HelmFailed(AssertionError):
    pass


COMPONENT = "app.kubernetes.io/component"


def named(manifest: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    """The release's one object of `kind` labelled with `component` (core, serving, spark, postgres, ...)."""
    (found,) = [
        d
        for d in manifest
        if d["kind"] == kind and d["metadata"].get("labels", {}).get(COMPONENT) == component
    ]
    return found
