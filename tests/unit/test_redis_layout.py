"""Golden bytes of the online-store layout, built by hand from docs/protocol.md and compared byte for byte."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2

from provender.kernel.online import layout as rl
from provender.kernel.value_types import ValueType, to_value
from provender.proto.feast.storage import Redis_pb2
from provender.proto.feast.types import Value_pb2


def ld(field_number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, by hand (payloads here are < 128 bytes)."""
    assert len(payload) < 128
    return bytes([field_number << 3 | 2, len(payload)]) + payload


@pytest.mark.parametrize(
    ("table", "feature", "hex_"),
    [
        ("driver_hourly", "conv_rate", "10dfb4c4"),
        ("transactions", "daily_transactions", "dc43d999"),
        ("drivers", "unique_drivers", "75fd9c98"),
    ],
)
def test_feature_field_matches_protocol_test_vectors(table: str, feature: str, hex_: str) -> None:
    assert rl.feature_field(table, feature).hex() == hex_


def test_ts_and_ex_fields_are_literal_ascii() -> None:
    assert rl.ts_field("driver_hourly") == b"_ts:driver_hourly"
    assert rl.ex_field("driver_hourly") == b"_ex:driver_hourly"


def test_key_of_one_int64_entity_by_hand() -> None:
    # RedisKeyV2{project="default", entity_names=["driver_id"], entity_values=[Value{int64_val=1001}]}
    value = b"\x20" + bytes([1001 & 0x7F | 0x80, 1001 >> 7])  # int64_val = 4, varint
    expected = ld(1, b"default") + ld(2, b"driver_id") + ld(3, value)
    assert rl.entity_key("default", {"driver_id": to_value(1001, ValueType.INT64)}) == expected
    assert rl.entity_key("default", {"driver_id": value}) == expected


def test_key_sorts_entity_names_and_keeps_values_in_the_same_order() -> None:
    customer = b"\x12" + bytes([3]) + b"c42"  # string_val = 2
    driver = b"\x18" + bytes([7])  # int32_val = 3
    expected = ld(1, b"p1") + ld(2, b"customer") + ld(2, b"driver") + ld(3, customer) + ld(3, driver)
    got = rl.entity_key(
        "p1", {"driver": to_value(7, ValueType.INT32), "customer": to_value("c42", ValueType.STRING)}
    )
    assert got == expected
    proto = Redis_pb2.RedisKeyV2(
        project="p1",
        entity_names=["customer", "driver"],
        entity_values=[to_value("c42", ValueType.STRING), to_value(7, ValueType.INT32)],
    )
    assert got == proto.SerializeToString()


def test_key_encoder_handles_long_values() -> None:
    long = to_value("x" * 300, ValueType.STRING).SerializeToString()
    enc = rl.KeyEncoder("default", ["id"])
    proto = Redis_pb2.RedisKeyV2(
        project="default", entity_names=["id"], entity_values=[Value_pb2.Value.FromString(long)]
    )
    assert enc.encode([long]) == proto.SerializeToString()


def test_int32_and_int64_entities_give_different_keys() -> None:
    a = rl.entity_key("default", {"id": to_value(5, ValueType.INT32)})
    b = rl.entity_key("default", {"id": to_value(5, ValueType.INT64)})
    assert a != b


def test_key_encoder_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        rl.KeyEncoder("default", ["a", "a"])


def test_timestamp_bytes_by_hand() -> None:
    # Timestamp{seconds=1 (field 1, varint), nanos=5 (field 2, varint)}
    assert rl.encode_timestamp(1, 5) == b"\x08\x01\x10\x05"
    assert rl.encode_timestamp_ns(1_000_000_005) == b"\x08\x01\x10\x05"
    assert rl.decode_timestamp_ns(b"\x08\x01\x10\x05") == 1_000_000_005
    assert rl.decode_timestamp_ns(b"") == 0
    when = datetime(2021, 4, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    assert rl.encode_datetime(when) == ts.SerializeToString()
    assert rl.encode_datetime(when.replace(tzinfo=None)) == ts.SerializeToString()


SCALARS_BY_HAND = [
    (ValueType.BYTES, b"ab", b"\x0a\x02ab"),
    (ValueType.STRING, "hé", b"\x12\x03h\xc3\xa9"),
    (ValueType.INT32, -1, b"\x18" + b"\xff" * 9 + b"\x01"),
    (ValueType.INT64, 300, b"\x20\xac\x02"),
    (ValueType.DOUBLE, 1.5, b"\x29" + struct.pack("<d", 1.5)),
    (ValueType.FLOAT, 0.25, b"\x35" + struct.pack("<f", 0.25)),
    (ValueType.BOOL, True, b"\x38\x01"),
    (ValueType.BYTES_LIST, [b"a", b"bc"], b"\x5a\x07" + b"\x0a\x01a\x0a\x02bc"),
    (ValueType.STRING_LIST, ["x"], b"\x62\x03" + b"\x0a\x01x"),
    (ValueType.INT32_LIST, [1, 2], b"\x6a\x04" + b"\x0a\x02\x01\x02"),  # packed
    (ValueType.INT64_LIST, [3], b"\x72\x03" + b"\x0a\x01\x03"),
    (ValueType.DOUBLE_LIST, [2.0], b"\x7a\x0a" + b"\x0a\x08" + struct.pack("<d", 2.0)),
    (ValueType.FLOAT_LIST, [1.0, 2.0], b"\x82\x01\x0a" + b"\x0a\x08" + struct.pack("<ff", 1.0, 2.0)),
    (ValueType.BOOL_LIST, [True, False], b"\x8a\x01\x04" + b"\x0a\x02\x01\x00"),
]


@pytest.mark.parametrize(
    ("vt", "value", "expected"), SCALARS_BY_HAND, ids=[t[0].name for t in SCALARS_BY_HAND]
)
def test_value_encoding_of_all_14_types_by_hand(vt: ValueType, value: object, expected: bytes) -> None:
    assert rl.encode_value(value, vt) == expected
    assert rl.VALUE_TAG[vt] == expected[: len(rl.VALUE_TAG[vt])]
    assert rl.stored_value_type(expected) is vt
    decoded = rl.decode_value(expected)
    assert decoded.WhichOneof("val") is not None


def test_all_14_types_are_covered() -> None:
    assert {t[0] for t in SCALARS_BY_HAND} == set(rl.VALUE_TAG) and len(rl.VALUE_TAG) == 14


def test_null_value_is_empty_bytes_and_has_no_type() -> None:
    assert rl.encode_value(None, ValueType.INT64) == b""
    assert rl.stored_value_type(b"") is None


def test_zero_values_are_still_typed() -> None:
    # proto3 oneof members keep presence: int64_val=0 is written, so a zero is not a null.
    assert rl.encode_value(0, ValueType.INT64) == b"\x20\x00"
    assert rl.stored_value_type(b"\x20\x00") is ValueType.INT64


def test_table_row_fields_write_features_ts_and_ex() -> None:
    fields = rl.table_row_fields(
        "driver_hourly",
        {"conv_rate": (0.5, ValueType.FLOAT), "acc_rate": (None, ValueType.FLOAT)},
        event_time_ns=10 * 1_000_000_000,
        max_age_seconds=60,
    )
    assert fields == {
        bytes.fromhex("10dfb4c4"): b"\x35" + struct.pack("<f", 0.5),
        b"_ts:driver_hourly": b"\x08\x0a",
        b"_ex:driver_hourly": b"\x08\x46",
    }
    no_ex = rl.table_row_fields("t", {"f": (1, ValueType.INT64)}, event_time_ns=0)
    assert set(no_ex) == {rl.feature_field("t", "f"), b"_ts:t"}
    assert no_ex[b"_ts:t"] == b""  # the epoch is the default Timestamp: no fields set
