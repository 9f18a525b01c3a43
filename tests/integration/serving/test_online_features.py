"""GetOnlineFeaturesV2 and GetFeastServingInfo on a real Redis and a real Core: every status, type mismatch,
max_age edges, several tables with different entity sets, project isolation, errors."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from provender.kernel.online.layout import entity_key, feature_field, ts_field
from provender.kernel.value_types import ValueType, to_value
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2
from tests.factories import entity, feature, table
from tests.integration.serving.online_store import apply, as_rows, request, write_row

SECOND = 1_000_000_000
ALL_TYPES = {
    "f_bytes": (b"\x00\xff", ValueType.BYTES),
    "f_string": ("héllo", ValueType.STRING),
    "f_int32": (-7, ValueType.INT32),
    "f_int64": (2**40, ValueType.INT64),
    "f_double": (2.5, ValueType.DOUBLE),
    "f_float": (0.25, ValueType.FLOAT),
    "f_bool": (False, ValueType.BOOL),
    "f_bytes_list": ([b"a", b""], ValueType.BYTES_LIST),
    "f_string_list": (["x", "y"], ValueType.STRING_LIST),
    "f_int32_list": ([1, -2], ValueType.INT32_LIST),
    "f_int64_list": ([3, 4], ValueType.INT64_LIST),
    "f_double_list": ([1.5], ValueType.DOUBLE_LIST),
    "f_float_list": ([0.5, 1.0], ValueType.FLOAT_LIST),
    "f_bool_list": ([True, False], ValueType.BOOL_LIST),
}


def driver_table(core_stub, project: str = "default", max_age_seconds: int = 0, name: str = "driver_hourly"):
    apply(
        core_stub,
        project,
        [entity("driver_id")],
        [
            table(
                name,
                features=(feature("conv_rate"), feature("trips", ValueType.INT64)),
                max_age_seconds=max_age_seconds,
            )
        ],
    )


def test_serving_info(serving_stub) -> None:
    info = serving_stub.GetFeastServingInfo(serving_pb2.GetFeastServingInfoRequest())
    assert info.type == serving_pb2.FEAST_SERVING_TYPE_ONLINE
    assert info.version


def test_health_is_serving(serving, channel_to) -> None:
    health = health_pb2_grpc.HealthStub(channel_to(serving))
    got = health.Check(health_pb2.HealthCheckRequest(service="feast.serving.ServingService"))
    assert got.status == health_pb2.HealthCheckResponse.SERVING


def test_every_type_is_returned_present_with_entities_echoed(serving_stub, core_stub, redis) -> None:
    apply(
        core_stub,
        "default",
        [entity("driver_id")],
        [table("all_types", features=tuple(feature(n, vt) for n, (_, vt) in ALL_TYPES.items()))],
    )
    write_row(redis, "default", {"driver_id": (5, ValueType.INT64)}, "all_types", ALL_TYPES)
    refs = [f"all_types:{n}" for n in ALL_TYPES]
    response = serving_stub.GetOnlineFeaturesV2(request("default", refs, [{"driver_id": 5}]))
    (row,) = as_rows(response)
    assert row.pop("driver_id") == (5, "PRESENT")
    assert row == {f"all_types:{n}": (v, "PRESENT") for n, (v, _) in ALL_TYPES.items()}
    # The values are the stored bytes, not re-encoded.
    key = entity_key("default", {"driver_id": to_value(5, ValueType.INT64)})
    stored = redis.hget(key, feature_field("all_types", "f_double_list"))
    assert response.field_values[0].fields["all_types:f_double_list"].SerializeToString() == stored


def test_absent_key_and_absent_feature_are_not_found(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub)
    write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"conv_rate": (0.5, ValueType.FLOAT)},
    )
    response = serving_stub.GetOnlineFeaturesV2(
        request("", ["driver_hourly:conv_rate", "driver_hourly:trips"], [{"driver_id": 1}, {"driver_id": 2}])
    )
    assert as_rows(response) == [
        {"driver_id": (1, "PRESENT"), "driver_hourly:conv_rate": (0.5, "PRESENT"), "driver_hourly:trips": (None, "NOT_FOUND")},
        {"driver_id": (2, "PRESENT"), "driver_hourly:conv_rate": (None, "NOT_FOUND"), "driver_hourly:trips": (None, "NOT_FOUND")},
    ]  # fmt: skip
    assert not response.field_values[1].fields["driver_hourly:trips"].WhichOneof("val")


def test_stored_value_of_another_type_is_not_found(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub)
    write_row(
        redis, "default", {"driver_id": (1, ValueType.INT64)}, "driver_hourly",
        {"conv_rate": (0.5, ValueType.DOUBLE), "trips": (3, ValueType.INT32)},
    )  # fmt: skip
    (row,) = as_rows(
        serving_stub.GetOnlineFeaturesV2(
            request("", ["driver_hourly:conv_rate", "driver_hourly:trips"], [{"driver_id": 1}])
        )
    )
    assert row["driver_hourly:conv_rate"] == (None, "NOT_FOUND")
    assert row["driver_hourly:trips"] == (None, "NOT_FOUND")


def test_stored_unset_value_is_null_value(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub)
    key = write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"trips": (3, ValueType.INT64)},
    )
    redis.hset(key, feature_field("driver_hourly", "conv_rate"), b"")
    (row,) = as_rows(
        serving_stub.GetOnlineFeaturesV2(
            request("", ["driver_hourly:conv_rate", "driver_hourly:trips"], [{"driver_id": 1}])
        )
    )
    assert row["driver_hourly:conv_rate"] == (None, "NULL_VALUE")
    assert row["driver_hourly:trips"] == (3, "PRESENT")


def test_non_canonical_stored_bytes_are_still_typed(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub)
    key = write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"trips": (3, ValueType.INT64)},
    )
    # An unknown field (99, varint 1) before int64_val=9: valid protobuf, not what our writer produces.
    redis.hset(key, feature_field("driver_hourly", "trips"), b"\x98\x06\x01\x20\x09")
    (row,) = as_rows(
        serving_stub.GetOnlineFeaturesV2(request("", ["driver_hourly:trips"], [{"driver_id": 1}]))
    )
    assert row["driver_hourly:trips"] == (9, "PRESENT")


def test_max_age_edges_against_the_row_timestamp(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub, max_age_seconds=60)
    event = 1_700_000_000 * SECOND
    write_row(
        redis, "default", {"driver_id": (1, ValueType.INT64)}, "driver_hourly",
        {"conv_rate": (0.5, ValueType.FLOAT)}, event_time_ns=event, max_age_seconds=60,
    )  # fmt: skip
    at = [event + 60 * SECOND, event + 60 * SECOND + 1000, event - 5 * SECOND, event, None]
    response = serving_stub.GetOnlineFeaturesV2(
        request("", ["driver_hourly:conv_rate"], [{"driver_id": 1}] * len(at), timestamps=at)
    )
    got = [row["driver_hourly:conv_rate"] for row in as_rows(response)]
    # exactly max_age old: fresh; 1 µs more: too old; event after the row time: fresh; unset time means now.
    assert got == [(0.5, "PRESENT"), (None, "OUTSIDE_MAX_AGE"), (0.5, "PRESENT"), (0.5, "PRESENT"),
                   (None, "OUTSIDE_MAX_AGE")]  # fmt: skip


def test_max_age_against_now_and_zero_max_age(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub, max_age_seconds=60)
    driver_table(core_stub, max_age_seconds=0, name="forever")
    old = time.time_ns() - 120 * SECOND
    fresh = time.time_ns() - 5 * SECOND
    for driver, event in ((1, old), (2, fresh)):
        for name in ("driver_hourly", "forever"):
            write_row(
                redis, "default", {"driver_id": (driver, ValueType.INT64)}, name,
                {"conv_rate": (0.5, ValueType.FLOAT)}, event_time_ns=event, max_age_seconds=60,
            )  # fmt: skip
    rows = as_rows(
        serving_stub.GetOnlineFeaturesV2(
            request(
                "", ["driver_hourly:conv_rate", "forever:conv_rate"], [{"driver_id": 1}, {"driver_id": 2}]
            )
        )
    )
    assert rows[0]["driver_hourly:conv_rate"] == (None, "OUTSIDE_MAX_AGE")
    assert rows[0]["forever:conv_rate"] == (0.5, "PRESENT")
    assert rows[1]["driver_hourly:conv_rate"] == (0.5, "PRESENT")


def test_max_age_wins_over_null_value_and_missing_ts_is_the_epoch(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub, max_age_seconds=60)
    key = write_row(
        redis, "default", {"driver_id": (1, ValueType.INT64)}, "driver_hourly",
        {"trips": (1, ValueType.INT64)}, event_time_ns=time.time_ns() - 3600 * SECOND,
    )  # fmt: skip
    redis.hset(key, feature_field("driver_hourly", "conv_rate"), b"")
    key2 = write_row(
        redis,
        "default",
        {"driver_id": (2, ValueType.INT64)},
        "driver_hourly",
        {"trips": (1, ValueType.INT64)},
    )
    redis.hdel(key2, ts_field("driver_hourly"))
    rows = as_rows(
        serving_stub.GetOnlineFeaturesV2(
            request(
                "", ["driver_hourly:conv_rate", "driver_hourly:trips"], [{"driver_id": 1}, {"driver_id": 2}]
            )
        )
    )
    assert rows[0]["driver_hourly:conv_rate"] == (None, "OUTSIDE_MAX_AGE")
    assert rows[1]["driver_hourly:trips"] == (None, "OUTSIDE_MAX_AGE")


def test_several_tables_with_different_entity_sets_in_one_request(serving_stub, core_stub, redis) -> None:
    apply(
        core_stub,
        "default",
        [entity("driver_id"), entity("customer_id", ValueType.STRING)],
        [
            table("driver_hourly", features=(feature("conv_rate"),), max_age_seconds=0),
            table("driver_daily", features=(feature("trips", ValueType.INT64),), max_age_seconds=0),
            table("customer", entities=("customer_id",), features=(feature("age", ValueType.INT32),)),
            table(
                "pair", entities=("driver_id", "customer_id"), features=(feature("rides", ValueType.INT64),)
            ),
        ],
    )
    d = {"driver_id": (7, ValueType.INT64)}
    c = {"customer_id": ("c1", ValueType.STRING)}
    write_row(redis, "default", d, "driver_hourly", {"conv_rate": (0.75, ValueType.FLOAT)})
    write_row(redis, "default", d, "driver_daily", {"trips": (12, ValueType.INT64)})
    write_row(redis, "default", c, "customer", {"age": (33, ValueType.INT32)})
    write_row(redis, "default", {**c, **d}, "pair", {"rides": (4, ValueType.INT64)})
    assert redis.dbsize() == 3  # the two driver tables share one hash
    refs = ["driver_hourly:conv_rate", "customer:age", "pair:rides", "driver_daily:trips"]
    rows = as_rows(
        serving_stub.GetOnlineFeaturesV2(
            request("", refs, [{"driver_id": 7, "customer_id": "c1"}, {"driver_id": 7, "customer_id": "c2"}])
        )
    )
    assert rows[0] == {
        "driver_id": (7, "PRESENT"), "customer_id": ("c1", "PRESENT"), "driver_hourly:conv_rate": (0.75, "PRESENT"),
        "customer:age": (33, "PRESENT"), "pair:rides": (4, "PRESENT"), "driver_daily:trips": (12, "PRESENT"),
    }  # fmt: skip
    assert rows[1]["customer:age"] == (None, "NOT_FOUND")
    assert rows[1]["pair:rides"] == (None, "NOT_FOUND")
    assert rows[1]["driver_hourly:conv_rate"] == (0.75, "PRESENT")


def test_projects_are_isolated(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub, project="p1")
    driver_table(core_stub, project="p2")
    write_row(
        redis,
        "p1",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"conv_rate": (0.5, ValueType.FLOAT)},
    )
    rows_p1 = as_rows(
        serving_stub.GetOnlineFeaturesV2(request("p1", ["driver_hourly:conv_rate"], [{"driver_id": 1}]))
    )
    rows_p2 = as_rows(
        serving_stub.GetOnlineFeaturesV2(request("p2", ["driver_hourly:conv_rate"], [{"driver_id": 1}]))
    )
    assert rows_p1[0]["driver_hourly:conv_rate"] == (0.5, "PRESENT")
    assert rows_p2[0]["driver_hourly:conv_rate"] == (None, "NOT_FOUND")
    with pytest.raises(grpc.RpcError) as e:
        serving_stub.GetOnlineFeaturesV2(request("", ["driver_hourly:conv_rate"], [{"driver_id": 1}]))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'driver_hourly'" in e.value.details() and "'default'" in e.value.details()


def test_int32_entity_looked_up_as_int64_misses(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub)
    write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT32)},
        "driver_hourly",
        {"conv_rate": (0.5, ValueType.FLOAT)},
    )
    rows = as_rows(
        serving_stub.GetOnlineFeaturesV2(
            request(
                "",
                ["driver_hourly:conv_rate"],
                [{"driver_id": 1}, {"driver_id": to_value(1, ValueType.INT32)}],
            )
        )
    )
    assert [r["driver_hourly:conv_rate"] for r in rows] == [(None, "NOT_FOUND"), (0.5, "PRESENT")]


def test_one_redis_round_trip_of_hmgets(serving_stub, core_stub, redis) -> None:
    apply(
        core_stub, "default", [entity("driver_id"), entity("customer_id", ValueType.STRING)],
        [table("driver_hourly"), table("customer", entities=("customer_id",), features=(feature("age", ValueType.INT32),))],
    )  # fmt: skip
    refs = ["driver_hourly:conv_rate", "customer:age", "driver_hourly:trips"]
    rows = [{"driver_id": i, "customer_id": f"c{i}"} for i in range(25)]
    serving_stub.GetOnlineFeaturesV2(request("", refs, rows[:1]))  # warm the spec cache
    before = redis.info("commandstats")
    serving_stub.GetOnlineFeaturesV2(request("", refs, rows))
    after = redis.info("commandstats")
    calls = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"] for k in after}
    assert calls.pop("cmdstat_hmget") == 50  # one per row and entity set, all in one pipeline
    assert calls.pop("cmdstat_info") == 1
    assert not any(calls.values()), calls


@pytest.mark.parametrize(
    ("refs", "rows", "code", "words"),
    [
        ([], [{"driver_id": 1}], "INVALID_ARGUMENT", ["features"]),
        (["driver_hourly:conv_rate"], [], "INVALID_ARGUMENT", ["entity_rows"]),
        (["driver_hourly:"], [{"driver_id": 1}], "INVALID_ARGUMENT", ["features[0]"]),
        ([":conv_rate"], [{"driver_id": 1}], "INVALID_ARGUMENT", ["features[0]"]),
        (
            ["driver_hourly:conv_rate"],
            [{"driver_id": 1}, {"other": 2}],
            "INVALID_ARGUMENT",
            # names the key the caller passed, and what the table is keyed by
            [
                "entity_rows[1] entity names: ['other'] is not valid",
                "a value for entity 'driver_id'",
                "driver_hourly",
            ],
        ),
        (
            ["driver_hourly:conv_rate"],
            [{"driver_id": serving_pb2.GetOnlineFeaturesRequestV2().entity_rows.add().fields["x"]}],
            "INVALID_ARGUMENT",
            ["entity_rows[0]", "unset"],
        ),
        (["nope:conv_rate"], [{"driver_id": 1}], "NOT_FOUND", ["feature table", "'nope'"]),
        (["driver_hourly:nope"], [{"driver_id": 1}], "NOT_FOUND", ["driver_hourly:nope", "conv_rate, trips"]),
    ],
)
def test_bad_requests(serving_stub, core_stub, refs, rows, code, words) -> None:
    driver_table(core_stub)
    with pytest.raises(grpc.RpcError) as e:
        serving_stub.GetOnlineFeaturesV2(request("", refs, rows))
    assert e.value.code().name == code
    for w in words:
        assert w in e.value.details()


def test_unknown_project_is_not_found(serving_stub, core_stub) -> None:
    driver_table(core_stub)
    with pytest.raises(grpc.RpcError) as e:
        serving_stub.GetOnlineFeaturesV2(
            request("elsewhere", ["driver_hourly:conv_rate"], [{"driver_id": 1}])
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'elsewhere'" in e.value.details()


def test_a_huge_unknown_name_is_not_found_with_a_short_message(serving_stub, core_stub) -> None:
    """A 40 kB table name and project are NOT_FOUND, not RESOURCE_EXHAUSTED: the message repeats only their
    start (gRPC drops details over ~16 kB)."""
    driver_table(core_stub)
    for project, ref in (("default", "t" * 40_000 + ":f"), ("p" * 40_000, "driver_hourly:conv_rate")):
        with pytest.raises(grpc.RpcError) as e:
            serving_stub.GetOnlineFeaturesV2(request(project, [ref], [{"driver_id": 1}]))
        assert e.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), e.value.code()
        assert len(e.value.details()) < 600 and "..." in e.value.details(), e.value.details()[:200]


def test_table_applied_after_start_is_looked_up_and_core_is_then_off_the_path(
    serving, serving_stub, core_server, core_stub, redis
) -> None:
    driver_table(core_stub)  # applied after Serving started: a cache miss
    write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"trips": (2, ValueType.INT64)},
    )
    req = request("", ["driver_hourly:trips"], [{"driver_id": 1}])
    assert as_rows(serving_stub.GetOnlineFeaturesV2(req))[0]["driver_hourly:trips"] == (2, "PRESENT")
    core_server.stop()
    for _ in range(3):
        assert as_rows(serving_stub.GetOnlineFeaturesV2(req))[0]["driver_hourly:trips"] == (2, "PRESENT")
    with pytest.raises(grpc.RpcError) as e:
        serving_stub.GetOnlineFeaturesV2(request("", ["other:x"], [{"driver_id": 1}]))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Core" in e.value.details()


def test_feature_added_to_a_cached_table_is_found(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub)
    req = request("", ["driver_hourly:trips"], [{"driver_id": 1}])
    serving_stub.GetOnlineFeaturesV2(req)  # cached without "speed"
    apply(core_stub, "default", [], [table("driver_hourly", features=(feature("conv_rate"), feature("trips", ValueType.INT64), feature("speed")), max_age_seconds=0)])  # fmt: skip
    write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"speed": (9.5, ValueType.FLOAT)},
    )
    rows = as_rows(serving_stub.GetOnlineFeaturesV2(request("", ["driver_hourly:speed"], [{"driver_id": 1}])))
    assert rows[0]["driver_hourly:speed"] == (9.5, "PRESENT")


def test_metrics_count_rows_features_and_statuses_per_table(serving, serving_stub, core_stub, redis) -> None:
    driver_table(core_stub, max_age_seconds=60)
    write_row(
        redis, "default", {"driver_id": (1, ValueType.INT64)}, "driver_hourly",
        {"conv_rate": (0.5, ValueType.FLOAT)}, event_time_ns=time.time_ns() - 3600 * SECOND, max_age_seconds=60,
    )  # fmt: skip
    serving_stub.GetOnlineFeaturesV2(
        request("", ["driver_hourly:conv_rate", "driver_hourly:trips"], [{"driver_id": 1}, {"driver_id": 2}])
    )
    value = serving.registry.get_sample_value
    labels = {"project": "default", "feature_table": "driver_hourly"}
    assert value("provender_serving_feature_not_found_total", labels) == 3  # trips of row 1, all of row 2
    assert value("provender_serving_feature_outside_max_age_total", labels) == 1
    assert value("provender_serving_entity_rows_sum", {"api": "feast"}) == 2
    assert value("provender_serving_features_sum", {"api": "feast"}) == 2
    assert value("provender_serving_spec_cache_age_seconds") >= 0
    rpc = {
        "grpc_service": "feast.serving.ServingService",
        "grpc_method": "GetOnlineFeaturesV2",
        "grpc_code": "OK",
    }
    assert value("provender_grpc_request_duration_seconds_count", rpc) == 1


def test_key_holding_something_else_than_a_hash_reads_as_absent(serving_stub, core_stub, redis) -> None:
    driver_table(core_stub)
    redis.set(entity_key("default", {"driver_id": to_value(1, ValueType.INT64)}), b"not a hash")
    write_row(
        redis,
        "default",
        {"driver_id": (2, ValueType.INT64)},
        "driver_hourly",
        {"trips": (4, ValueType.INT64)},
    )
    rows = as_rows(
        serving_stub.GetOnlineFeaturesV2(
            request("", ["driver_hourly:trips"], [{"driver_id": 1}, {"driver_id": 2}])
        )
    )
    assert [r["driver_hourly:trips"] for r in rows] == [(None, "NOT_FOUND"), (4, "PRESENT")]


def test_specs_reach_the_cache_in_the_background(
    serving, serving_stub, core_server, core_stub, redis
) -> None:
    driver_table(core_stub)
    deadline = time.monotonic() + 3
    while len(serving.specs) == 0:  # no request made: only the background reload can bring it
        assert time.monotonic() < deadline, "the table did not reach the spec cache in 3 s"
        time.sleep(0.05)
    assert 0 <= serving.registry.get_sample_value("provender_serving_spec_cache_age_seconds") < 3
    core_server.stop()  # Core gone before the first request: the table must come from the cache
    write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"trips": (8, ValueType.INT64)},
    )
    rows = as_rows(serving_stub.GetOnlineFeaturesV2(request("", ["driver_hourly:trips"], [{"driver_id": 1}])))
    assert rows[0]["driver_hourly:trips"] == (8, "PRESENT")
