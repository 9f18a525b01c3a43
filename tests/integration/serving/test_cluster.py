"""Serving on a real 3-master Redis Cluster on loopback, given as a seed list."""

from __future__ import annotations

import time

import grpc
import pytest

from provender.kernel.redis_url import parse_redis_url
from provender.kernel.value_types import ValueType
from provender.local.redis import EmbeddedRedisCluster
from provender.proto.feast.serving import ServingService_pb2_grpc
from tests.factories import entity, feature, table
from tests.integration.serving.online_store import apply, as_rows, request, write_row


def tables(core_stub) -> None:
    apply(
        core_stub,
        "default",
        [entity("driver_id"), entity("customer_id", ValueType.STRING)],
        [
            table("driver_hourly", max_age_seconds=3600),
            table("customer", entities=("customer_id",), features=(feature("age", ValueType.INT32),)),
        ],
    )


def test_lookups_spread_over_every_node(
    redis_cluster, cluster_client, start_serving_at, channel_to, core_stub
):
    assert parse_redis_url(redis_cluster.seeds).cluster
    tables(core_stub)
    for i in range(60):
        write_row(
            cluster_client, "default", {"driver_id": (i, ValueType.INT64)}, "driver_hourly",
            {"conv_rate": (i / 10, ValueType.FLOAT), "trips": (i, ValueType.INT64)}, max_age_seconds=3600,
        )  # fmt: skip
        write_row(
            cluster_client,
            "default",
            {"customer_id": (f"c{i}", ValueType.STRING)},
            "customer",
            {"age": (i, ValueType.INT32)},
        )
    per_node = [n.client().dbsize() for n in redis_cluster.nodes]
    assert all(n > 0 for n in per_node), per_node  # the keys really are spread
    app = start_serving_at(redis_cluster.seeds)
    stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(app))
    rows = [{"driver_id": i, "customer_id": f"c{i}"} for i in range(70)]
    got = as_rows(
        stub.GetOnlineFeaturesV2(
            request("", ["driver_hourly:trips", "customer:age", "driver_hourly:conv_rate"], rows)
        )
    )
    for i, row in enumerate(got):
        if i < 60:
            assert row["driver_hourly:trips"] == (i, "PRESENT")
            assert row["customer:age"] == (i, "PRESENT")
            assert row["driver_hourly:conv_rate"] == (pytest.approx(i / 10), "PRESENT")
        else:
            assert row["driver_hourly:trips"] == (None, "NOT_FOUND")
            assert row["customer:age"] == (None, "NOT_FOUND")


def test_cluster_node_down_and_back(redis_dir, start_serving_at, channel_to, core_stub) -> None:
    cluster = EmbeddedRedisCluster(redis_dir / f"cluster-down-{time.monotonic_ns()}", masters=3).start()
    try:
        tables(core_stub)
        app = start_serving_at(f"redis://{cluster.seeds}")
        stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(app))
        req = request("", ["driver_hourly:trips"], [{"driver_id": i} for i in range(30)])
        assert len(stub.GetOnlineFeaturesV2(req).field_values) == 30
        cluster.nodes[1].stop()
        start = time.perf_counter()
        with pytest.raises(grpc.RpcError) as e:
            stub.GetOnlineFeaturesV2(req, timeout=5)
        elapsed = time.perf_counter() - start
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Redis" in e.value.details()
        assert elapsed < 0.1, f"UNAVAILABLE after {elapsed * 1000:.0f} ms"
        cluster.nodes[1].start()
        deadline = time.monotonic() + 5
        while True:
            try:
                assert len(stub.GetOnlineFeaturesV2(req, timeout=2).field_values) == 30
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
                assert time.monotonic() < deadline, f"no recovery after the node came back: {err.details()}"
                time.sleep(0.05)
    finally:
        cluster.stop()
