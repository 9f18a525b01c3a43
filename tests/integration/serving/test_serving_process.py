"""`provender serving` as users run it: its own process, configured by PROVENDER_* variables and flags, /metrics
over HTTP, and a graceful stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from provender.local.ports import free_port
from provender.proto.feast.serving import ServingService_pb2_grpc
from tests.integration.serving.online_store import as_rows, request, seed_one_driver


def test_process_serves_exports_metrics_and_stops_on_sigterm(
    core_server, core_stub, redis_server, redis
) -> None:
    seed_one_driver(core_stub, redis)
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "PROVENDER_CORE_URL": core_server.url, "PROVENDER_REDIS_URL": redis_server.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "provender.serving.main", "--host", "127.0.0.1", "--port", str(port),
         "--metrics-port", str(metrics_port), "--log-level", "WARNING"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 20
        while True:
            try:
                if (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    break
            except grpc.RpcError:
                pass
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "serving did not become SERVING"
            time.sleep(0.1)
        stub = ServingService_pb2_grpc.ServingServiceStub(channel)
        rows = as_rows(stub.GetOnlineFeaturesV2(request("", ["driver_hourly:trips"], [{"driver_id": 1}])))
        assert rows[0]["driver_hourly:trips"] == (5, "PRESENT")
        channel.close()
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        )
        for name in ("provender_grpc_request_duration_seconds_bucket", "provender_serving_entity_rows_bucket",
                     "provender_serving_features_bucket", "provender_serving_spec_cache_age_seconds",
                     "provender_serving_redis_up 1.0"):  # fmt: skip
            assert name in metrics, name
        # --host 127.0.0.1 holds for /metrics too: another local address is refused.
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.2:{metrics_port}/metrics", timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_redis_url_is_refused_at_start(core_server) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "provender.serving.main", "--port", "0", "--host", "127.0.0.1",
         "--core-url", core_server.url, "--redis-url", "http://nope"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "redis_url" in proc.stderr and "rediss://" in proc.stderr
