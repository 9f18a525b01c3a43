"""Fixtures of `make test-k8s`: one control plane for the session (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler), the Spark operator's CRDs in it, a kwok node, and the Spark operator, each started once when a
test first needs it. A part that tools/k8s/build.sh could not build skips the tests that need it, with the
build's reason (make test-k8s runs pytest with -rs, so the reasons are printed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.helm import chart as c
from tests.k8s.cluster import ControlPlane
from tests.k8s.nodes import start_kwok
from tests.k8s.parts import PartMissing, Process
from tests.k8s.spark_operator import POD_TEMPLATES, start_operator


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("k8s"))
    try:
        plane.start()
        # The Spark operator's CRDs, as our chart's tests know them (tests/helm/crds).
        plane.apply_crds(*sorted(c.CRD_DIR.glob("*.yaml")))
    except PartMissing as e:
        plane.stop()
        pytest.skip(str(e))
    except BaseException:
        plane.stop()
        raise
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kwok_node(control_plane: ControlPlane) -> Process:
    try:
        return start_kwok(control_plane)
    except PartMissing as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def spark_operator(control_plane: ControlPlane, kwok_node: Process) -> Iterator[Process]:
    before = set(POD_TEMPLATES.iterdir()) if POD_TEMPLATES.is_dir() else set()
    try:
        operator = start_operator(control_plane)
    except PartMissing as e:
        pytest.skip(str(e))
    yield operator
    operator.stop()
    # The submissions' pod templates it left (the folder may hold other runs' too).
    for left in (set(POD_TEMPLATES.iterdir()) if POD_TEMPLATES.is_dir() else set()) - before:
        shutil.rmtree(left, ignore_errors=True)
