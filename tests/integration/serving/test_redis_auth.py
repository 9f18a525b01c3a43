"""A Redis with a password and a database number in --redis-url: the handshake (AUTH, SELECT) is done on
every new connection, and a wrong password is reported as Redis being unavailable, naming Redis."""

from __future__ import annotations

import time

import grpc
import pytest
import redis as redis_py

from provender.kernel.value_types import ValueType
from provender.local.redis import EmbeddedRedis
from provender.proto.feast.serving import ServingService_pb2_grpc
from tests.factories import entity, table
from tests.integration.serving.online_store import apply, as_rows, request, write_row


@pytest.fixture
def password_redis(redis_dir):
    server = EmbeddedRedis(
        redis_dir / f"auth-{time.monotonic_ns()}", extra_args=["--requirepass", "s3cret"]
    ).start()
    yield server
    server.stop()


def test_password_and_database(password_redis, start_serving_at, channel_to, core_stub) -> None:
    apply(core_stub, "default", [entity("driver_id")], [table("driver_hourly", max_age_seconds=0)])
    client = redis_py.Redis(host="127.0.0.1", port=password_redis.port, password="s3cret", db=2)
    write_row(
        client,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"trips": (6, ValueType.INT64)},
    )
    good = start_serving_at(f"redis://:s3cret@127.0.0.1:{password_redis.port}/2")
    stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(good))
    rows = as_rows(stub.GetOnlineFeaturesV2(request("", ["driver_hourly:trips"], [{"driver_id": 1}])))
    assert rows[0]["driver_hourly:trips"] == (6, "PRESENT")

    bad = start_serving_at(f"redis://:wrong@127.0.0.1:{password_redis.port}/2")
    with pytest.raises(grpc.RpcError) as e:
        ServingService_pb2_grpc.ServingServiceStub(channel_to(bad)).GetOnlineFeaturesV2(
            request("", ["driver_hourly:trips"], [{"driver_id": 1}])
        )
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Redis" in e.value.details() and "handshake" in e.value.details()
    client.close()
