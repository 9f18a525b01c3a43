"""Registry changes reach Serving within a second (issue 15: a new table, a max_age change or a deleted table
took 8-10 s): Serving polls Core's registry revision and reloads when it moves, however long its periodic
reload interval."""

from __future__ import annotations

import time

import grpc

from provender.kernel.value_types import ValueType
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.serving import ServingService_pb2_grpc
from tests.factories import entity, table
from tests.integration.serving.online_store import apply, as_rows, request, write_row


def _within(seconds: float, check) -> float:
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except grpc.RpcError:
            pass
        assert time.monotonic() - start < seconds, f"not seen within {seconds} s"
        time.sleep(0.02)


def test_a_changed_max_age_and_a_deleted_table_reach_serving_within_a_second(
    start_serving_at, redis_server, redis, core_stub, channel_to
) -> None:
    app = start_serving_at(redis_server.url, spec_refresh_seconds=600, spec_poll_seconds=0.2)
    stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(app))
    apply(core_stub, "default", [entity("driver_id")], [table("driver_hourly", max_age_seconds=0)])
    write_row(redis, "default", {"driver_id": (1, ValueType.INT64)}, "driver_hourly",
              {"trips": (5, ValueType.INT64)}, event_time_ns=time.time_ns() - 3600 * 10**9)  # fmt: skip
    lookup = request("default", ["driver_hourly:trips"], [{"driver_id": 1}])
    assert as_rows(stub.GetOnlineFeaturesV2(lookup))[0]["driver_hourly:trips"] == (5, "PRESENT")

    # max_age 60 s: the row, an hour old, is now OUTSIDE_MAX_AGE
    core_stub.ApplyFeatureTable(
        core_pb2.ApplyFeatureTableRequest(
            project="default", table_spec=table("driver_hourly", max_age_seconds=60)
        )
    )
    took = _within(
        2, lambda: as_rows(stub.GetOnlineFeaturesV2(lookup))[0]["driver_hourly:trips"][1] == "OUTSIDE_MAX_AGE"
    )
    assert took < 1.0, took

    core_stub.DeleteFeatureTable(core_pb2.DeleteFeatureTableRequest(project="default", name="driver_hourly"))

    def gone() -> bool:
        try:
            stub.GetOnlineFeaturesV2(lookup)
        except grpc.RpcError as e:
            return e.code() == grpc.StatusCode.NOT_FOUND
        return False

    took = _within(2, gone)
    assert took < 1.0, took


def test_a_table_asked_for_before_it_existed_is_served_within_a_second_of_its_apply(
    start_serving_at, redis_server, redis, core_stub, channel_to
) -> None:
    app = start_serving_at(redis_server.url, spec_refresh_seconds=600, spec_poll_seconds=0.2)
    stub = ServingService_pb2_grpc.ServingServiceStub(channel_to(app))
    lookup = request("default", ["later:trips"], [{"driver_id": 1}])
    try:
        stub.GetOnlineFeaturesV2(lookup)
        raise AssertionError("a table that does not exist was served")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND  # and the miss is cached (for the refresh interval)
    apply(core_stub, "default", [entity("driver_id")], [table("later")])
    took = _within(2, lambda: as_rows(stub.GetOnlineFeaturesV2(lookup))[0]["later:trips"][1] == "NOT_FOUND")
    assert took < 1.0, took
