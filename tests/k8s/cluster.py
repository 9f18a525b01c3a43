"""A real Kubernetes control plane on loopback for the tests: etcd, kube-apiserver (RBAC on, service-account
tokens signed with a key generated here, clients authenticated by certificates of a test CA), kube-controller-
manager (Deployments, ReplicaSets, garbage collection, service accounts) and kube-scheduler, each started as its
own process from the programs tools/k8s/build.sh built, and stopped by `stop()`. No kubelet: kwok (kwok.py) plays
the nodes."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client, config

from provender.local.ports import free_port
from tests.k8s.parts import Process, program, wait_for
from tests.tls import TestCA

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service's address: in the server certificate
ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN = "provender-test-admin"


def kubeconfig(path: Path, server: str, ca: Path, user: dict[str, str], namespace: str = "default") -> Path:
    """Write a kubeconfig with one cluster, one user (client certificate or token) and one context."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "user", "user": user}],
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": "user", "namespace": namespace}}
        ],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    base: Path
    url: str = ""
    ca: Path = field(default=None)  # type: ignore[assignment]
    admin_kubeconfig: Path = field(default=None)  # type: ignore[assignment]
    version: str = ""
    processes: list[Process] = field(default_factory=list)

    # --- start and stop ---

    def start(self) -> ControlPlane:
        etcd_bin = program("etcd", "etcd")
        apiserver = program("control-plane", "kube-apiserver")
        controller_manager = program("control-plane", "kube-controller-manager")
        scheduler = program("control-plane", "kube-scheduler")
        pki = self.base / "pki"
        test_ca = TestCA(pki, "provender k8s test CA")
        self.ca = test_ca.path
        server = test_ca.issue("kube-apiserver", hosts=(SERVICE_IP, "kubernetes", "kubernetes.default.svc"))
        admin = test_ca.issue(ADMIN, organizations=("system:masters",))
        sa_key, sa_pub = self._service_account_key(pki)

        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = self._spawn(
            "etcd",
            [
                str(etcd_bin),
                "--name=test",
                f"--data-dir={self.base / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=test=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        wait_for("etcd to serve", lambda: requests.get(f"{etcd_url}/health", timeout=2).ok, 30, watch=[etcd])

        self.url = f"https://127.0.0.1:{api_port}"
        api = self._spawn(
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={self.base / 'apiserver-certs'}",
                f"--tls-cert-file={server.cert}",
                f"--tls-private-key-file={server.key}",
                f"--client-ca-file={self.ca}",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
            ],
        )
        admin_cert = (str(admin.cert), str(admin.key))
        wait_for(
            "kube-apiserver to be ready",
            lambda: requests.get(f"{self.url}/readyz", cert=admin_cert, verify=str(self.ca), timeout=3).ok,
            90,
            watch=[etcd, api],
        )
        self.admin_kubeconfig = kubeconfig(
            self.base / "admin.kubeconfig",
            self.url,
            self.ca,
            {"client-certificate": str(admin.cert), "client-key": str(admin.key)},
        )
        self.version = client.VersionApi(self.api_client()).get_code().git_version

        kubeconfig_flag = f"--kubeconfig={self.admin_kubeconfig}"
        self._spawn(
            "kube-controller-manager",
            [
                str(controller_manager),
                kubeconfig_flag,
                "--leader-elect=false",
                "--secure-port=0",
                f"--root-ca-file={self.ca}",
                f"--service-account-private-key-file={sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=false",
            ],
        )
        self._spawn(
            "kube-scheduler", [str(scheduler), kubeconfig_flag, "--leader-elect=false", "--secure-port=0"]
        )
        core = client.CoreV1Api(self.api_client())
        # The service-account controller has run once the default namespace has its `default` account.
        wait_for(
            "kube-controller-manager to create service accounts",
            lambda: core.read_namespaced_service_account("default", "default"),
            60,
            watch=self.processes,
        )
        return self

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        p = Process(name, argv, self.base / f"{name}.log", env)
        self.processes.append(p)
        return p

    @staticmethod
    def _service_account_key(folder: Path) -> tuple[Path, Path]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private, public = folder / "sa.key", folder / "sa.pub"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return private, public

    def check_alive(self) -> None:
        for p in self.processes:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited ({p.popen.returncode}):\n{p.tail()}")

    # --- clients ---

    def api_client(self, kubeconfig_path: Path | None = None) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(kubeconfig_path or self.admin_kubeconfig))

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token of the service account, from the API's TokenRequest (what a pod of it is given)."""
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(expiration_seconds=seconds)
        )
        made = client.CoreV1Api(self.api_client()).create_namespaced_service_account_token(
            name, namespace, request
        )
        return made.status.token

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """A kubeconfig that acts as the service account (its token), namespace `namespace`."""
        return kubeconfig(
            path, self.url, self.ca, {"token": self.service_account_token(namespace, name)}, namespace
        )

    def apply_crds(self, *files: Path) -> None:
        """Create the CustomResourceDefinitions in `files` and wait until the API serves them."""
        ext = client.ApiextensionsV1Api(self.api_client())
        names = []
        for f in files:
            for doc in yaml.load_all(f.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    ext.create_custom_resource_definition(doc)
                    names.append(doc["metadata"]["name"])

        def established() -> bool:
            for name in names:
                conditions = ext.read_custom_resource_definition(name).status.conditions or []
                if not any(c.type == "Established" and c.status == "True" for c in conditions):
                    return False
            return True

        wait_for(f"CRDs {', '.join(names)} to be established", established, 60)


def secret_value(api: client.ApiClient, namespace: str, name: str, key: str) -> str:
    data: dict[str, Any] = client.CoreV1Api(api).read_namespaced_secret(name, namespace).data or {}
    return base64.b64decode(data[key]).decode()
