"""Bad input, generated: every Serving RPC gets >= 200 generated requests (well-formed protobuf with odd
contents, and raw bytes); none may end in UNKNOWN or INTERNAL, carry a stack trace, or change Redis."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provender.kernel.value_types import VALUE_FIELD, ValueType, to_value
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2
from provender.proto.provender.serving import ColumnarServing_pb2 as columnar_pb2
from tests.factories import entity, feature, table
from tests.integration.serving.online_store import apply, write_row

ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
FUZZ = settings(max_examples=220, deadline=None, suppress_health_check=list(HealthCheck))

names = st.one_of(
    st.sampled_from(["driver_id", "customer_id", "driver_hourly", "conv_rate", "trips", ""]),
    st.text(max_size=12),
)
scalars = {
    ValueType.BYTES: st.binary(max_size=20),
    ValueType.STRING: st.text(max_size=20),
    ValueType.INT32: st.integers(-(2**31), 2**31 - 1),
    ValueType.INT64: st.integers(-(2**63), 2**63 - 1),
    ValueType.DOUBLE: st.floats(allow_nan=True),
    ValueType.FLOAT: st.floats(width=32, allow_nan=True),
    ValueType.BOOL: st.booleans(),
}


@st.composite
def values(draw):
    vt = draw(st.sampled_from([*VALUE_FIELD, None]))
    if vt is None:
        return to_value(None)
    element = scalars[vt.element_type]
    return to_value(draw(st.lists(element, max_size=4)) if vt.is_list else draw(element), vt)


@st.composite
def online_requests(draw):
    req = serving_pb2.GetOnlineFeaturesRequestV2(
        project=draw(st.sampled_from(["", "default", "p1"]) | st.text(max_size=8))
    )
    for _ in range(draw(st.integers(0, 4))):
        table_name = draw(st.sampled_from(["driver_hourly", "customer"]) | names)
        req.features.add(
            feature_table=table_name, name=draw(st.sampled_from(["conv_rate", "trips", "age"]) | names)
        )
    for _ in range(draw(st.integers(0, 4))):
        row = req.entity_rows.add()
        for _ in range(draw(st.integers(0, 3))):
            row.fields[draw(names)].CopyFrom(draw(values()))
        if draw(st.booleans()):
            row.timestamp.seconds = draw(st.integers(-(2**40), 2**40))
            row.timestamp.nanos = draw(st.integers(-(2**31), 2**31 - 1))
    return req.SerializeToString()


@st.composite
def columnar_requests(draw):
    req = columnar_pb2.GetOnlineFeaturesColumnarRequest(
        project=draw(st.sampled_from(["", "default"]) | st.text(max_size=8))
    )
    for _ in range(draw(st.integers(0, 3))):
        req.features.add(
            feature_table=draw(st.sampled_from(["driver_hourly"]) | names),
            name=draw(st.sampled_from(["trips"]) | names),
        )
    for _ in range(draw(st.integers(0, 3))):
        req.entities.add(name=draw(names), values=draw(values()))
    for _ in range(draw(st.integers(0, 3))):
        req.reference_times.add(seconds=draw(st.integers(-(2**40), 2**40)))
    return req.SerializeToString()


raw_bytes = st.binary(max_size=64)


def snapshot(redis) -> dict:
    return {key: redis.hgetall(key) for key in redis.scan_iter()}


@pytest.fixture
def rpc(serving, channel_to, core_stub, redis):
    apply(
        core_stub, "default", [entity("driver_id"), entity("customer_id", ValueType.STRING)],
        [table("driver_hourly", max_age_seconds=60), table("customer", entities=("customer_id",), features=(feature("age", ValueType.INT32),))],
    )  # fmt: skip
    write_row(
        redis,
        "default",
        {"driver_id": (1, ValueType.INT64)},
        "driver_hourly",
        {"trips": (3, ValueType.INT64)},
    )
    channel = channel_to(serving)
    before = snapshot(redis)

    def call(method: str, payload: bytes) -> None:
        stub = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            stub(payload, timeout=10)
        except grpc.RpcError as e:
            assert e.code() in ALLOWED, f"{method} answered {e.code().name}: {e.details()}"
            assert "Traceback" not in (e.details() or "") and 'File "' not in (e.details() or "")

    yield call
    assert snapshot(redis) == before


def test_fuzz_get_online_features_v2(rpc) -> None:
    @FUZZ
    @given(st.one_of(online_requests(), raw_bytes))
    def run(payload: bytes) -> None:
        rpc("/feast.serving.ServingService/GetOnlineFeaturesV2", payload)

    run()


def test_fuzz_columnar(rpc) -> None:
    @FUZZ
    @given(st.one_of(columnar_requests(), raw_bytes))
    def run(payload: bytes) -> None:
        rpc("/provender.serving.ColumnarServingService/GetOnlineFeaturesColumnar", payload)

    run()


def test_fuzz_get_feast_serving_info(rpc) -> None:
    @FUZZ
    @given(raw_bytes)
    def run(payload: bytes) -> None:
        rpc("/feast.serving.ServingService/GetFeastServingInfo", payload)

    run()
