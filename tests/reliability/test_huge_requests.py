"""Requests too large for one call are refused before the work, with the limit and the batch size to use, and
large requests cannot take Serving from small ones: at most --large-request-slots of them are worked on at once.

Serving runs with small limits so that "too large" is cheap to build here; the defaults only move the line."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import CollectorRegistry

from provender.kernel.value_types import ValueType
from provender.proto.feast.serving import ServingService_pb2_grpc
from provender.proto.provender.serving import ColumnarServing_pb2 as columnar_pb2
from provender.proto.provender.serving import ColumnarServing_pb2_grpc
from provender.serving.app import ServingSettings, start_serving
from tests.factories import feature, table
from tests.integration.serving.online_store import as_rows, request, seed_one_driver, write_row

MAX_VALUES = 2_000
LARGE = 100


@pytest.fixture
def serving(core_server, core_stub, redis_server, redis) -> Iterator[grpc.Channel]:
    seed_one_driver(
        core_stub, redis, table("profiles", features=(feature("bio", ValueType.STRING),), max_age_seconds=0)
    )
    write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "profiles",
        {"bio": ("x" * 2**20, ValueType.STRING)},
    )
    settings = ServingSettings(
        redis_url=redis_server.url, core_url=core_server.url, port=0, host="127.0.0.1", max_workers=4,
        max_values_per_request=MAX_VALUES, large_request_values=LARGE, large_request_slots=1,
    )  # fmt: skip
    app = start_serving(settings, registry=CollectorRegistry())
    channel = grpc.insecure_channel(
        f"127.0.0.1:{app.port}", options=[("grpc.max_receive_message_length", -1)]
    )
    yield channel
    channel.close()
    app.stop(grace=1)


def _trips(channel: grpc.Channel, rows: int) -> object:
    stub = ServingService_pb2_grpc.ServingServiceStub(channel)
    return stub.GetOnlineFeaturesV2(
        request("", ["driver_hourly:trips"], [{"driver_id": 1}] * rows), timeout=30
    )


def test_too_many_values_are_refused_with_the_batch_size(serving) -> None:
    assert len(_trips(serving, MAX_VALUES).field_values) == MAX_VALUES
    with pytest.raises(grpc.RpcError) as e:
        _trips(serving, MAX_VALUES + 1)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = e.value.details()
    assert details.startswith("entity_rows: ") and f"{MAX_VALUES + 1} values" in details
    assert "--max-values-per-request" in details and f"batches of at most {MAX_VALUES}" in details


def test_columnar_requests_are_held_to_the_same_limit(serving) -> None:
    stub = ColumnarServing_pb2_grpc.ColumnarServingServiceStub(serving)
    column = columnar_pb2.EntityColumn(name="driver_id")
    column.values.int64_list_val.val.extend([1] * (MAX_VALUES + 1))
    req = columnar_pb2.GetOnlineFeaturesColumnarRequest(entities=[column])
    req.features.add(feature_table="driver_hourly", name="trips")
    with pytest.raises(grpc.RpcError) as e:
        stub.GetOnlineFeaturesColumnar(req, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith("entities[0].values: ")


def test_a_response_too_large_to_send_is_refused_before_it_is_built(serving) -> None:
    """100 rows of a 1 MiB value: about 100 MiB, over the 64 MiB a response may hold."""
    stub = ServingService_pb2_grpc.ServingServiceStub(serving)
    with pytest.raises(grpc.RpcError) as e:
        stub.GetOnlineFeaturesV2(request("", ["profiles:bio"], [{"driver_id": 1}] * 100), timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "MiB a response may hold" in e.value.details() and "batches of at most" in e.value.details()
    rows = as_rows(
        stub.GetOnlineFeaturesV2(request("", ["profiles:bio"], [{"driver_id": 1}] * 20), timeout=30)
    )
    assert rows[0]["profiles:bio"] == ("x" * 2**20, "PRESENT")


def test_large_requests_leave_workers_for_small_ones(serving) -> None:
    """Eight callers sending large requests back to back on a 4-worker Serving: small lookups are all answered
    (each within its 2 s deadline) while only one large request is worked on at a time."""
    stop = threading.Event()
    large_errors: list[BaseException] = []

    def large_caller() -> None:
        while not stop.is_set():
            try:
                assert len(_trips(serving, MAX_VALUES).field_values) == MAX_VALUES
            except grpc.RpcError as e:  # waited too long for a slot: told to retry, never a wrong answer
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    large_errors.append(e)
            except BaseException as e:
                large_errors.append(e)

    callers = [threading.Thread(target=large_caller) for _ in range(8)]
    for caller in callers:
        caller.start()
    try:
        stub = ServingService_pb2_grpc.ServingServiceStub(serving)
        for _ in range(100):
            response = stub.GetOnlineFeaturesV2(
                request("", ["driver_hourly:trips"], [{"driver_id": 1}]), timeout=2
            )
            assert as_rows(response)[0]["driver_hourly:trips"] == (5, "PRESENT")
    finally:
        stop.set()
        for caller in callers:
            caller.join(timeout=60)
    assert not large_errors, large_errors[:3]
