"""`provender core` as a user runs it: a process with health, reflection, /metrics, JSON logs and a clean SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from provender.local.ports import free_port
from provender.proto.feast.core import CoreService_pb2 as pb
from provender.proto.feast.core import CoreService_pb2_grpc
from tests import factories as f


def wait_serving(channel: grpc.Channel, timeout: float = 30) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (
                stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                == health_pb2.HealthCheckResponse.SERVING
            ):
                return
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("core did not become healthy")
        time.sleep(0.2)


@pytest.fixture
def core_process(database_url):
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provender.cli",
            "core",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--metrics-port",
            str(metrics_port),
        ],
        env={**__import__("os").environ, "PROVENDER_POSTGRES_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        wait_serving(channel)
        yield proc, channel, metrics_port
    finally:
        channel.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_health_reflection_metrics_and_graceful_stop(core_process):
    proc, channel, metrics_port = core_process
    stub = CoreService_pb2_grpc.CoreServiceStub(channel)

    health = health_pb2_grpc.HealthStub(channel)
    named = health.Check(health_pb2.HealthCheckRequest(service="feast.core.CoreService"))
    assert named.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(
        reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    services = {s.name for s in answer.list_services_response.service}
    assert {"feast.core.CoreService", "grpc.health.v1.Health"} <= services

    stub.ApplyEntity(pb.ApplyEntityRequest(spec=f.entity()))
    with pytest.raises(grpc.RpcError):
        stub.GetEntity(pb.GetEntityRequest(name="ghost"))

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    ok = 'provender_grpc_requests_total{grpc_code="OK",grpc_method="ApplyEntity",grpc_service="feast.core.CoreService"} 1.0'
    missing = 'provender_grpc_requests_total{grpc_code="NOT_FOUND",grpc_method="GetEntity",grpc_service="feast.core.CoreService"} 1.0'
    assert ok in metrics and missing in metrics
    assert (
        'provender_grpc_request_duration_seconds_bucket{grpc_code="OK",grpc_method="ApplyEntity"' in metrics
    )

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
    messages = [entry["msg"] for entry in logs]
    assert "core listening" in messages and "stopped" in messages
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in logs)


def test_missing_postgres_url_is_a_clear_error():
    run = subprocess.run(
        [sys.executable, "-m", "provender.cli", "core", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in __import__("os").environ.items() if k != "PROVENDER_POSTGRES_URL"},
    )
    assert run.returncode == 2
    assert "--postgres-url" in run.stderr and "PROVENDER_POSTGRES_URL" in run.stderr


def test_unreachable_postgres_is_a_clear_error():
    port = free_port()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "provender.cli",
            "core",
            "--port",
            "0",
            "--postgres-url",
            f"postgresql://nobody@127.0.0.1:{port}/x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "Postgres" in run.stderr and "Traceback" not in run.stderr


def test_a_port_in_use_is_one_line_naming_it(core_process, database_url):
    _, channel, _ = core_process
    taken = channel._channel.target().decode().rsplit(":", 1)[1]
    run = subprocess.run(
        [sys.executable, "-m", "provender.cli", "core", "--port", taken, "--host", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "PROVENDER_POSTGRES_URL": database_url},
    )
    assert run.returncode != 0
    assert f"cannot listen on 127.0.0.1:{taken}: the port is in use" in run.stderr
    assert "Traceback" not in run.stderr
