"""provender.serving.ColumnarServingService: the same lookups as GetOnlineFeaturesV2, as columns."""

from __future__ import annotations

import grpc
import pytest

from provender.kernel.value_types import ValueType, from_value, to_value
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2
from provender.proto.provender.serving import ColumnarServing_pb2 as columnar_pb2
from tests.factories import entity, feature, table
from tests.integration.serving.online_store import apply, as_rows, request, write_row

SECOND = 1_000_000_000
STATUS = serving_pb2.GetOnlineFeaturesResponse.FieldStatus


def columnar_request(project, refs, columns: dict[str, tuple[list, ValueType]], times=None):
    req = columnar_pb2.GetOnlineFeaturesColumnarRequest(project=project)
    for ref in refs:
        t, _, n = ref.partition(":")
        req.features.add(feature_table=t, name=n)
    for name, (values, vt) in columns.items():
        req.entities.add(name=name, values=to_value(values, vt))
    for ns in times or []:
        req.reference_times.add().FromNanoseconds(ns)
    return req


def setup_tables(core_stub, redis) -> None:
    apply(
        core_stub,
        "default",
        [entity("driver_id"), entity("customer_id", ValueType.STRING)],
        [
            table("driver_hourly", max_age_seconds=60),
            table("customer", entities=("customer_id",), features=(feature("age", ValueType.INT32),)),
        ],
    )
    event = 1_700_000_000 * SECOND
    for i in range(5):
        write_row(
            redis, "default", {"driver_id": (i, ValueType.INT64)}, "driver_hourly",
            {"conv_rate": (i / 4, ValueType.FLOAT), "trips": (i, ValueType.INT64)},
            event_time_ns=event, max_age_seconds=60,
        )  # fmt: skip
        write_row(
            redis,
            "default",
            {"customer_id": (f"c{i}", ValueType.STRING)},
            "customer",
            {"age": (20 + i, ValueType.INT32)},
        )


def test_columns_match_the_feast_api(columnar_stub, serving_stub, core_stub, redis) -> None:
    setup_tables(core_stub, redis)
    refs = ["driver_hourly:conv_rate", "customer:age", "driver_hourly:trips", "customer:age"]
    drivers, customers = [0, 1, 2, 3, 9], ["c0", "c1", "zz", "c3", "c4"]
    event = 1_700_000_000 * SECOND
    times = [event, event, event, event + 61 * SECOND, event]
    got = columnar_stub.GetOnlineFeaturesColumnar(
        columnar_request(
            "",
            refs,
            {"driver_id": (drivers, ValueType.INT64_LIST), "customer_id": (customers, ValueType.STRING_LIST)},
            times,
        )
    )
    assert got.row_count == 5
    assert [c.name for c in got.features] == [
        "driver_hourly:conv_rate",
        "customer:age",
        "driver_hourly:trips",
    ]
    assert [c.value_type for c in got.features] == [ValueType.FLOAT, ValueType.INT32, ValueType.INT64]
    assert [STATUS.Name(s) for s in got.features[2].statuses] == [
        "PRESENT", "PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"
    ]  # fmt: skip
    assert [from_value(v) for v in got.features[2].values] == [0, 1, 2, None, None]
    assert [from_value(v) for v in got.features[1].values] == [20, 21, None, 23, 24]

    rows = [{"driver_id": d, "customer_id": c} for d, c in zip(drivers, customers, strict=True)]
    feast = as_rows(serving_stub.GetOnlineFeaturesV2(request("", refs, rows, timestamps=times)))
    for column in got.features:
        as_column = [
            (from_value(v), STATUS.Name(s)) for v, s in zip(column.values, column.statuses, strict=True)
        ]
        assert as_column == [r[column.name] for r in feast]


@pytest.mark.parametrize(
    ("columns", "times", "words"),
    [
        (
            {"driver_id": ([1, 2], ValueType.INT64_LIST), "customer_id": (["a"], ValueType.STRING_LIST)},
            None,
            ["entities[1].values", "2 values"],
        ),
        ({"driver_id": (7, ValueType.INT64)}, None, ["entities[0].values", "list Value"]),
        ({"driver_id": ([1, 2], ValueType.INT64_LIST)}, [5], ["reference_times", "2 rows"]),
        ({}, None, ["entities"]),
        ({"driver_id": ([], ValueType.INT64_LIST)}, None, ["entities[0].values", "at least one row"]),
    ],
)
def test_bad_columnar_requests(columnar_stub, core_stub, redis, columns, times, words) -> None:
    setup_tables(core_stub, redis)
    with pytest.raises(grpc.RpcError) as e:
        columnar_stub.GetOnlineFeaturesColumnar(columnar_request("", ["driver_hourly:trips"], columns, times))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for w in words:
        assert w in e.value.details()
