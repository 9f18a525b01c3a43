"""The value-type mapping agrees with the generated protos and with docs/protocol.md."""

from __future__ import annotations

import pytest

from provender.kernel.value_types import (
    VALID_TYPES,
    VALUE_FIELD,
    ValueType,
    from_value,
    python_value_type,
    to_value,
    value_type_of,
)
from provender.proto.feast.types import Value_pb2


def test_enum_matches_the_wire_enum():
    wire = Value_pb2.ValueType.Enum
    assert {t.name: t.value for t in ValueType} == dict(wire.items())


def test_oneof_numbers_equal_type_numbers():
    fields = Value_pb2.Value.DESCRIPTOR.fields_by_name
    for vt, field in VALUE_FIELD.items():
        assert fields[field].number == vt.value
    assert set(VALUE_FIELD) == set(VALID_TYPES) and len(VALID_TYPES) == 14


@pytest.mark.parametrize(
    ("vt", "py"),
    [
        (ValueType.BYTES, b"\x00\xff"),
        (ValueType.STRING, "ü"),
        (ValueType.INT32, -(2**31)),
        (ValueType.INT64, 2**62),
        (ValueType.DOUBLE, 0.1),
        (ValueType.FLOAT, 0.5),
        (ValueType.BOOL, False),
        (ValueType.BYTES_LIST, [b"a", b""]),
        (ValueType.STRING_LIST, ["a", "b"]),
        (ValueType.INT32_LIST, [1, -2]),
        (ValueType.INT64_LIST, [2**40]),
        (ValueType.DOUBLE_LIST, [1.5]),
        (ValueType.FLOAT_LIST, [0.25, 2.0]),
        (ValueType.BOOL_LIST, [True, False]),
    ],
)
def test_round_trip_every_type(vt, py):
    value = to_value(py, vt)
    assert value_type_of(value) is vt
    assert from_value(value) == py
    assert Value_pb2.Value.FromString(value.SerializeToString()) == value


def test_null_and_python_inference():
    assert value_type_of(Value_pb2.Value()) is None
    assert from_value(to_value(None)) is None
    assert [python_value_type(x) for x in (1, 1.0, "s", True, b"b")] == [
        ValueType.INT64,
        ValueType.DOUBLE,
        ValueType.STRING,
        ValueType.BOOL,
        ValueType.BYTES,
    ]
    with pytest.raises(TypeError, match="use int, float, str, bool or bytes"):
        python_value_type(object())


def test_parse_names_and_numbers():
    assert ValueType.parse("int64") is ValueType.INT64
    assert ValueType.parse(16) is ValueType.FLOAT_LIST
    assert ValueType.FLOAT_LIST.element_type is ValueType.FLOAT and ValueType.FLOAT_LIST.is_list
    with pytest.raises(ValueError, match="expected one of BYTES"):
        ValueType.parse("decimal")
