"""A Redis that serves TLS (`--tls-port`) with a certificate of a private CA: Serving reads it with rediss:// and
the CA given the standard way, SSL_CERT_FILE; not trusting that CA, it reports Redis unavailable."""

from __future__ import annotations

import time

import grpc
import pytest
import redis as redis_py

from provender.kernel.value_types import ValueType
from provender.local.ports import free_port
from provender.local.redis import EmbeddedRedis
from provender.proto.feast.serving import ServingService_pb2_grpc
from tests.factories import entity, table
from tests.integration.serving.online_store import apply, as_rows, request, write_row
from tests.tls import TestCA


@pytest.fixture
def tls_redis(redis_dir):
    ca = TestCA(redis_dir / f"ca-{time.monotonic_ns()}")
    pair = ca.issue("redis")
    tls_port = free_port()
    server = EmbeddedRedis(
        redis_dir / f"tls-{time.monotonic_ns()}",
        extra_args=[
            "--tls-port", str(tls_port), "--tls-cert-file", str(pair.cert), "--tls-key-file", str(pair.key),
            "--tls-ca-cert-file", str(ca.path), "--tls-auth-clients", "no",
        ],
    ).start()  # fmt: skip
    yield ca, tls_port
    server.stop()


def test_serving_reads_a_redis_over_tls(tls_redis, start_serving_at, channel_to, core_stub, monkeypatch):
    ca, port = tls_redis
    apply(core_stub, "default", [entity("driver_id")], [table("driver_hourly", max_age_seconds=0)])
    client = redis_py.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(ca.path))
    write_row(
        client,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"trips": (6, ValueType.INT64)},
    )
    client.close()

    untrusting = start_serving_at(f"rediss://127.0.0.1:{port}")  # the system's CAs only
    with pytest.raises(grpc.RpcError) as e:
        ServingService_pb2_grpc.ServingServiceStub(channel_to(untrusting)).GetOnlineFeaturesV2(
            request("", ["driver_hourly:trips"], [{"driver_id": 1}])
        )
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "Redis" in e.value.details()

    monkeypatch.setenv("SSL_CERT_FILE", str(ca.path))
    good = start_serving_at(f"rediss://127.0.0.1:{port}")
    stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(good))
    rows = as_rows(stub.GetOnlineFeaturesV2(request("", ["driver_hourly:trips"], [{"driver_id": 1}])))
    assert rows[0]["driver_hourly:trips"] == (6, "PRESENT")
