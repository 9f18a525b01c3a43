"""Simulated nodes: kwok watches the nodes annotated `kwok.x-k8s.io/node: fake` and plays their kubelet, moving
the pods bound to them through the phases kwok-stages.yaml describes (no containers run)."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from tests.k8s.cluster import ControlPlane
from tests.k8s.parts import Process, program, wait_for

STAGES = Path(__file__).resolve().parent / "kwok-stages.yaml"
NODE = "kwok-node-0"
ANNOTATION = "kwok.x-k8s.io/node"


def start_kwok(plane: ControlPlane) -> Process:
    kwok = Process(
        "kwok",
        [
            str(program("kwok", "kwok")),
            f"--kubeconfig={plane.admin_kubeconfig}",
            f"--config={STAGES}",
            f"--manage-nodes-with-annotation-selector={ANNOTATION}=fake",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.0.0.10",
            "--node-lease-duration-seconds=40",
        ],
        plane.base / "kwok.log",
    )
    plane.processes.append(kwok)
    core = client.CoreV1Api(plane.api_client())
    node = client.V1Node(
        metadata=client.V1ObjectMeta(
            name=NODE,
            annotations={ANNOTATION: "fake"},
            labels={"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "type": "kwok"},
        ),
        spec=client.V1NodeSpec(),
    )
    core.create_node(node)

    def ready() -> bool:
        conditions = core.read_node(NODE).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    wait_for(f"kwok to make {NODE} Ready", ready, 60, watch=[kwok])
    return kwok
