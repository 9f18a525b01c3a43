"""`provender local` when its ports are taken: by another platform, or by a program that is not ours.

Nothing here needs 6565/6566 to be free: the case about the default ports runs only when they are free at the
start (it holds them with a first platform), and says why when it is skipped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from provender.local.ports import free_port, is_free
from tests.e2e.local_cli import ROOT, brought_down, provender, recorded

DEFAULTS = (6565, 6566)
ALL_UP = ["postgres=up", "redis=up", "kafka=up", "core=up", "serving=up"]


def lines(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    while (second := free_port()) == first:
        pass
    return first, second


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def wait_free(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not is_free(port):
        assert time.monotonic() < deadline, f"port {port} still held"
        time.sleep(0.1)


def kill_recorded(home: Path, part: str) -> int:
    """SIGKILL the part's process, as a crash would, and wait until its port is free."""
    state = recorded(home)
    pid = state["pids"][part]
    os.kill(pid, signal.SIGKILL)
    wait_free(state[f"{part}_port"])
    return pid


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A platform that holds 6565/6566 when they are free, else two other ports (passed explicitly)."""
    home = tmp_path_factory.mktemp("first") / "platform"
    on_defaults = all(is_free(p) for p in DEFAULTS)
    core, serving = DEFAULTS if on_defaults else two_free_ports()
    with brought_down(home):
        up = provender("local", "up", "--dir", str(home), "--core-port", str(core), "--serving-port", str(serving),
                       "--json")  # fmt: skip
        assert up.returncode == 0, up.stderr
        yield home, json.loads(up.stdout), on_defaults


def test_explicit_ports_held_by_another_platform_are_an_error(first, tmp_path):
    home, urls, _ = first
    core, serving = port_of(urls["core"]), port_of(urls["serving"])
    second = tmp_path / "second"
    with brought_down(second):
        up = provender("local", "up", "--dir", str(second), "--core-port", str(core), "--serving-port", "0")
        assert up.returncode == 1 and up.stdout == ""
        assert f"Core's port {core} (--core-port {core}) is in use by the Core of the provender local platform in {home}" in up.stderr  # fmt: skip
        assert f"`provender local down --dir {home}`" in up.stderr and "pass --core-port 0" in up.stderr

        up = provender(
            "local", "up", "--dir", str(second), "--core-port", "0", "--serving-port", str(serving)
        )
        assert up.returncode == 1
        assert f"Serving's port {serving} (--serving-port {serving}) is in use by the Serving" in up.stderr
        assert "pass --serving-port 0" in up.stderr

        # Nothing of the second platform was started, and the first goes on as it was.
        assert provender("local", "status", "--dir", str(second)).returncode == 3
    status = provender("local", "status", "--dir", str(home))
    assert status.returncode == 0 and status.stdout.split() == ALL_UP


def test_default_ports_held_by_another_platform_move_to_free_ones(first, tmp_path):
    home, urls, on_defaults = first
    if not on_defaults:
        pytest.skip("6565/6566 were in use by another program when this module started, so no platform of ours holds them")  # fmt: skip
    second = tmp_path / "second"
    with brought_down(second):
        up = provender("local", "up", "--dir", str(second), "--json")
        assert up.returncode == 0, up.stderr
        mine = json.loads(up.stdout)
        core, serving = port_of(mine["core"]), port_of(mine["serving"])
        assert not {core, serving} & set(DEFAULTS)
        said = [line for line in up.stderr.splitlines() if "default port" in line]
        assert len(said) == 1, up.stderr  # one line on stderr says what moved where
        assert (
            f"Core's default port 6565 is in use by the Core of the provender local platform in {home}"
            in said[0]
        )
        assert f"Core is on {core} instead" in said[0] and f"Serving is on {serving} instead" in said[0]

        status = provender("local", "status", "--dir", str(second))
        assert status.returncode == 0 and status.stdout.split() == ALL_UP
        # Its Core is its own: what is applied through it is not in the first platform's registry.
        applied = provender(
            "apply", "-f", str(ROOT / "examples" / "feature_store.yaml"), "--core-url", mine["core"]
        )
        assert applied.returncode == 0, applied.stderr
        assert "rider_id" in provender("entities", "list", "--core-url", mine["core"]).stdout
        assert "rider_id" not in provender("entities", "list", "--core-url", urls["core"]).stdout

        again = provender("local", "up", "--dir", str(second), "--json")  # keeps its ports, says nothing more
        assert (
            again.returncode == 0 and json.loads(again.stdout) == mine and "default port" not in again.stderr
        )


def health_server(port: int) -> grpc.Server:
    """A stranger: another program answering gRPC health checks on `port`."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    server.start()
    return server


def test_status_and_up_see_a_stranger_on_a_recorded_port(tmp_path):
    home = tmp_path / "platform"
    core, serving = two_free_ports()
    with brought_down(home):
        up = provender(
            "local", "up", "--dir", str(home), "--core-port", str(core), "--serving-port", str(serving)
        )
        assert up.returncode == 0, up.stderr
        crashed = kill_recorded(home, "core")

        stranger = health_server(core)
        try:
            status = provender("local", "status", "--dir", str(home))
            assert status.returncode == 1
            said = lines(status.stdout)
            assert said["core"].startswith(
                f"down (port {core} answered by another process, pid {os.getpid()}"
            )
            assert said["serving"] == "up" and said["redis"] == "up"
            # `up` does not adopt the stranger, and cannot start Core on a port it holds.
            again = provender("local", "up", "--dir", str(home))
            assert again.returncode == 1
            assert f"Core's port {core} (recorded in {home / 'local.json'}) is in use by another process" in again.stderr  # fmt: skip
            assert f"`provender local down --dir {home}`" in again.stderr
        finally:
            stranger.stop(0)

        with socket.create_server(("127.0.0.1", core)):  # a program that listens but speaks no gRPC
            status = provender("local", "status", "--dir", str(home))
            assert status.returncode == 1
            assert lines(status.stdout)["core"].startswith(f"down (port {core} held by another process")

        # Once the port is free again, `up` restarts the dead part on it.
        again = provender("local", "up", "--dir", str(home))
        assert again.returncode == 0, again.stderr
        assert lines(again.stdout)["core"] == f"127.0.0.1:{core}"
        assert recorded(home)["pids"]["core"] != crashed
        status = provender("local", "status", "--dir", str(home))
        assert status.returncode == 0 and status.stdout.split() == ALL_UP


def test_a_recorded_pid_now_another_programs_is_neither_up_nor_stopped(tmp_path):
    """After a crash the system may give Core's pid to another program: `status` does not count it as Core,
    and `down` leaves it alone."""
    home = tmp_path / "platform"
    core, serving = two_free_ports()
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        with brought_down(home):
            up = provender("local", "up", "--dir", str(home), "--core-port", str(core), "--serving-port", str(serving))  # fmt: skip
            assert up.returncode == 0, up.stderr
            kill_recorded(home, "core")
            state = recorded(home)
            state["pids"]["core"] = stranger.pid
            (home / "local.json").write_text(json.dumps(state))

            status = provender("local", "status", "--dir", str(home))
            assert status.returncode == 1 and lines(status.stdout)["core"] == "down"
            down = provender("local", "down", "--dir", str(home))
            assert down.returncode == 0 and "stopped=yes" in down.stdout
            assert stranger.poll() is None  # still running
            assert provender("local", "status", "--dir", str(home)).returncode == 3
    finally:
        stranger.kill()
        stranger.wait()


def test_a_core_that_cannot_bind_is_reported_though_a_stranger_answers_its_port(tmp_path):
    """The race the port check before starting cannot close (the port taken between the check and the bind): the
    child's exit and its log are what `up` reports, not the stranger's health answers. Staged on `up`'s wait with
    a child that fails as Core does when its port is taken."""
    from provender.local.identity import tagged_env
    from provender.local.platform import LocalPlatform, LocalPlatformError, LocalState
    from provender.local.processes import spawn

    core, serving = two_free_ports()
    platform = LocalPlatform(tmp_path, core_port=core, serving_port=serving)
    state = LocalState(core_port=core, serving_port=serving, redis_port=free_port(), postgres_port=0)
    failing = f"import time; time.sleep(1); print('RuntimeError: Failed to bind to address 127.0.0.1:{core}'); exit(1)"
    stranger = health_server(core)
    try:
        state.pids["core"] = spawn(
            [sys.executable, "-c", failing], tmp_path / "logs" / "core.log", tagged_env(tmp_path)
        )
        with pytest.raises(LocalPlatformError) as raised:
            platform._wait(state, "core", timeout=30)
    finally:
        stranger.stop(0)
    assert "Core exited while starting" in str(raised.value)
    assert f"Failed to bind to address 127.0.0.1:{core}" in str(raised.value)
