"""Redis stopped under Serving: UNAVAILABLE fast with a message naming Redis, health NOT_SERVING, and full
recovery without a restart when Redis comes back."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from provender.kernel.value_types import ValueType
from provender.local.redis import EmbeddedRedis
from provender.proto.feast.serving import ServingService_pb2_grpc
from tests.factories import entity, table
from tests.integration.serving.online_store import apply, as_rows, request, write_row

ROW = {"driver_id": (1, ValueType.INT64)}
FEATURES = {"conv_rate": (0.5, ValueType.FLOAT), "trips": (3, ValueType.INT64)}


@pytest.fixture
def own_redis(redis_dir) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(redis_dir / f"down-{time.monotonic_ns()}").start()
    yield server
    server.stop()


def health_status(channel: grpc.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service="feast.serving.ServingService"), timeout=2).status


def test_redis_down_and_back(own_redis, start_serving_at, channel_to, core_stub) -> None:
    apply(core_stub, "default", [entity("driver_id")], [table("driver_hourly", max_age_seconds=0)])
    client = own_redis.client()
    write_row(client, "default", ROW, "driver_hourly", FEATURES)
    app = start_serving_at(own_redis.url)
    channel = channel_to(app)
    stub = ServingService_pb2_grpc.ServingServiceStub(channel)
    req = request("", ["driver_hourly:conv_rate", "driver_hourly:trips"], [{"driver_id": 1}])
    assert as_rows(stub.GetOnlineFeaturesV2(req))[0]["driver_hourly:trips"] == (3, "PRESENT")

    own_redis.stop()
    for _ in range(5):
        start = time.perf_counter()
        with pytest.raises(grpc.RpcError) as e:
            stub.GetOnlineFeaturesV2(req, timeout=5)
        elapsed = time.perf_counter() - start
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Redis" in e.value.details() and str(own_redis.port) in e.value.details()
        assert elapsed < 0.1, f"UNAVAILABLE after {elapsed * 1000:.0f} ms"
    assert health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert (
        app.registry.get_sample_value("provender_serving_redis_errors_total", {"error": "ConnectionError"})
        >= 5
    )

    own_redis.start()
    write_row(client, "default", ROW, "driver_hourly", FEATURES)  # nothing persisted: write again
    back = time.monotonic()
    deadline = back + 2.0
    while True:
        try:
            rows = as_rows(stub.GetOnlineFeaturesV2(req, timeout=1))
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() < deadline, "Serving did not recover within 2 s of Redis coming back"
            time.sleep(0.02)
    assert rows[0]["driver_hourly:conv_rate"] == (0.5, "PRESENT")
    while health_status(channel) != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline, "health did not return to SERVING within 2 s"
        time.sleep(0.02)
    client.close()


def test_redis_stopped_under_load_never_hangs(own_redis, start_serving_at, channel_to, core_stub) -> None:
    apply(core_stub, "default", [entity("driver_id")], [table("driver_hourly", max_age_seconds=0)])
    client = own_redis.client()
    write_row(client, "default", ROW, "driver_hourly", FEATURES)
    app = start_serving_at(own_redis.url)
    stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(app))
    req = request("", ["driver_hourly:conv_rate"], [{"driver_id": 1}] * 10)
    stub.GetOnlineFeaturesV2(req)
    stop = threading.Event()
    slow_failures: list[float] = []
    unexpected: list[str] = []
    counts = {"ok": 0, "unavailable": 0}
    lock = threading.Lock()

    def hammer() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                stub.GetOnlineFeaturesV2(req, timeout=5)
                with lock:
                    counts["ok"] += 1
            except grpc.RpcError as e:
                elapsed = time.perf_counter() - start
                with lock:
                    if e.code() != grpc.StatusCode.UNAVAILABLE:
                        unexpected.append(f"{e.code().name}: {e.details()}")
                    else:
                        counts["unavailable"] += 1
                        if elapsed >= 0.1:
                            slow_failures.append(elapsed)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    own_redis.stop()
    time.sleep(0.5)
    own_redis.start()
    write_row(client, "default", ROW, "driver_hourly", FEATURES)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert not unexpected, unexpected[:3]
    assert counts["unavailable"] > 0 and counts["ok"] > 0, counts
    assert not slow_failures, f"{len(slow_failures)} UNAVAILABLE answers took >= 100 ms: {slow_failures[:5]}"
    rows = as_rows(stub.GetOnlineFeaturesV2(req))
    assert all(r["driver_hourly:conv_rate"] == (0.5, "PRESENT") for r in rows)
    client.close()


def test_hung_redis_times_out_with_the_configured_timeout(
    own_redis, start_serving_at, channel_to, core_stub
) -> None:
    apply(core_stub, "default", [entity("driver_id")], [table("driver_hourly", max_age_seconds=0)])
    client = own_redis.client()
    write_row(client, "default", ROW, "driver_hourly", FEATURES)
    app = start_serving_at(own_redis.url, redis_timeout_ms=80)
    stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(app))
    req = request("", ["driver_hourly:trips"], [{"driver_id": 1}])
    stub.GetOnlineFeaturesV2(req)
    os.kill(own_redis.pid, signal.SIGSTOP)  # alive but not answering
    try:
        start = time.perf_counter()
        with pytest.raises(grpc.RpcError) as e:
            stub.GetOnlineFeaturesV2(req, timeout=5)
        elapsed = time.perf_counter() - start
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "Redis" in e.value.details()
    assert elapsed < 0.2, f"UNAVAILABLE after {elapsed * 1000:.0f} ms with an 80 ms Redis timeout"
    deadline = time.monotonic() + 2
    while True:
        try:
            assert as_rows(stub.GetOnlineFeaturesV2(req))[0]["driver_hourly:trips"] == (3, "PRESENT")
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    client.close()


def test_a_redis_error_reply_is_unavailable_never_absent(
    own_redis, start_serving_at, channel_to, core_stub
) -> None:
    """Redis busy with a long script answers every other client `-BUSY ...` (as a restarted Redis loading its data
    answers `-LOADING ...`): lookups are UNAVAILABLE naming the reply, never values read as NOT_FOUND."""
    apply(core_stub, "default", [entity("driver_id")], [table("driver_hourly", max_age_seconds=0)])
    client = own_redis.client()
    write_row(client, "default", ROW, "driver_hourly", FEATURES)
    client.config_set("lua-time-limit", 100)  # BUSY replies after 100 ms of a script (busy-reply-threshold)
    app = start_serving_at(own_redis.url)
    stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(app))
    req = request("", ["driver_hourly:trips"], [{"driver_id": 1}])
    assert as_rows(stub.GetOnlineFeaturesV2(req))[0]["driver_hourly:trips"] == (3, "PRESENT")
    script = threading.Thread(target=lambda: _run_until_killed(own_redis), daemon=True)
    script.start()
    try:
        time.sleep(0.5)
        with pytest.raises(grpc.RpcError) as e:
            stub.GetOnlineFeaturesV2(req, timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
        assert "BUSY" in e.value.details()
    finally:
        own_redis.client().script_kill()
        script.join(timeout=10)
    deadline = time.monotonic() + 5
    while True:
        try:
            assert as_rows(stub.GetOnlineFeaturesV2(req, timeout=2))[0]["driver_hourly:trips"] == (
                3,
                "PRESENT",
            )
            break
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, err.details()
            time.sleep(0.05)


def _run_until_killed(server: EmbeddedRedis) -> None:
    import redis

    with contextlib.suppress(redis.ResponseError):  # "Script killed by user with SCRIPT KILL..."
        server.client().eval("while true do end", 0)
