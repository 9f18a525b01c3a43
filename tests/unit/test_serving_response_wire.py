"""The hand-assembled response bytes parse into exactly the messages the generated classes would build."""

from __future__ import annotations

from provender.kernel.online.layout import encode_value
from provender.kernel.value_types import ValueType, to_value
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2
from provender.proto.feast.types import Value_pb2
from provender.proto.provender.serving import ColumnarServing_pb2 as columnar_pb2
from provender.serving.lookup import EntityRow, FieldStatus, OnlineResult, ResolvedFeature
from provender.serving.response_wire import columnar_response, online_response

FEATURES = [
    ResolvedFeature("t", "a", "t:a", ValueType.FLOAT),
    ResolvedFeature("t", "b", "t:b", ValueType.STRING_LIST),
    ResolvedFeature("u" * 200, "c", "u" * 200 + ":c", ValueType.BYTES),  # a key longer than 127 bytes
]
LONG = b"x" * 20000  # a value longer than 16383 bytes: a 3-byte length
ROWS = [
    EntityRow(
        {"driver_id": encode_value(1, ValueType.INT64), "customer": encode_value("c", ValueType.STRING)}
    ),
    EntityRow(
        {"driver_id": encode_value(2, ValueType.INT64), "customer": encode_value("d", ValueType.STRING)}
    ),
]
VALUES = [
    encode_value(0.5, ValueType.FLOAT), encode_value(["x", "y"], ValueType.STRING_LIST), encode_value(LONG, ValueType.BYTES),
    b"", b"", b"",
]  # fmt: skip
STATUSES = [
    FieldStatus.PRESENT, FieldStatus.PRESENT, FieldStatus.PRESENT,
    FieldStatus.NOT_FOUND, FieldStatus.OUTSIDE_MAX_AGE, FieldStatus.NULL_VALUE,
]  # fmt: skip
RESULT = OnlineResult("default", FEATURES, ROWS, VALUES, [int(s) for s in STATUSES])


def test_online_response_equals_the_generated_message() -> None:
    expected = serving_pb2.GetOnlineFeaturesResponse()
    for r, row in enumerate(ROWS):
        fv = expected.field_values.add()
        for name, raw in row.fields.items():
            fv.fields[name].CopyFrom(Value_pb2.Value.FromString(raw))
            fv.statuses[name] = serving_pb2.GetOnlineFeaturesResponse.PRESENT
        for f, feature in enumerate(FEATURES):
            i = r * len(FEATURES) + f
            fv.fields[feature.label].CopyFrom(Value_pb2.Value.FromString(VALUES[i]))
            fv.statuses[feature.label] = int(STATUSES[i])
    got = serving_pb2.GetOnlineFeaturesResponse.FromString(online_response(RESULT))
    assert got == expected
    assert got.field_values[0].fields["u" * 200 + ":c"].bytes_val == LONG
    assert got.field_values[1].fields["t:a"] == Value_pb2.Value()


def test_columnar_response_equals_the_generated_message() -> None:
    expected = columnar_pb2.GetOnlineFeaturesColumnarResponse(row_count=2)
    for f, feature in enumerate(FEATURES):
        column = expected.features.add(name=feature.label, value_type=int(feature.value_type))
        for r in range(len(ROWS)):
            i = r * len(FEATURES) + f
            column.values.add().CopyFrom(Value_pb2.Value.FromString(VALUES[i]))
            column.statuses.append(int(STATUSES[i]))
    got = columnar_pb2.GetOnlineFeaturesColumnarResponse.FromString(columnar_response(RESULT))
    assert got == expected
    assert got.features[0].values[0] == to_value(0.5, ValueType.FLOAT)


def expected_online(rows: list[EntityRow], features: list[ResolvedFeature], values: list[bytes]):
    expected = serving_pb2.GetOnlineFeaturesResponse()
    for r, row in enumerate(rows):
        fv = expected.field_values.add()
        for name, raw in row.fields.items():
            fv.fields[name].CopyFrom(Value_pb2.Value.FromString(raw))
            fv.statuses[name] = serving_pb2.GetOnlineFeaturesResponse.PRESENT
        for f, feature in enumerate(features):
            fv.fields[feature.label].CopyFrom(Value_pb2.Value.FromString(values[r * len(features) + f]))
            fv.statuses[feature.label] = serving_pb2.GetOnlineFeaturesResponse.PRESENT
    return expected


def all_present(features: list[ResolvedFeature], rows: list[EntityRow], values: list[bytes]) -> bytes:
    result = OnlineResult("p", features, rows, values, [int(FieldStatus.PRESENT)] * len(values), True)
    out = online_response(result)
    # The same bytes as the general path writes (all_present only selects the faster writer).
    assert out == online_response(OnlineResult("p", features, rows, values, result.statuses, False))
    return out


def test_all_present_rows_of_fixed_width_values_use_one_template() -> None:
    features = [ResolvedFeature("t%s", f"f{i}", f"t%s:f{i}", ValueType.FLOAT) for i in range(3)]
    features.append(ResolvedFeature("t", "d", "t:d", ValueType.DOUBLE))
    rows = [EntityRow({"driver_id": encode_value(i * 1000, ValueType.INT64)}) for i in range(4)]
    values = []
    for i in range(4):
        values += [encode_value(i + f / 4, ValueType.FLOAT) for f in range(3)]
        values.append(encode_value(i * 1.5, ValueType.DOUBLE))
    out = all_present(features, rows, values)
    assert serving_pb2.GetOnlineFeaturesResponse.FromString(out) == expected_online(rows, features, values)


def test_all_present_rows_of_varying_lengths() -> None:
    features = [
        ResolvedFeature("t", "n", "t:n", ValueType.INT64),
        ResolvedFeature("t", "s", "t:s", ValueType.STRING),
        ResolvedFeature("t", "b", "t:b", ValueType.BYTES),
    ]
    rows = [EntityRow({"e": encode_value(i, ValueType.INT64)}) for i in range(3)]
    values = [
        encode_value(1, ValueType.INT64), encode_value("a", ValueType.STRING), encode_value(b"x" * 300, ValueType.BYTES),
        encode_value(2**40, ValueType.INT64), encode_value("", ValueType.STRING), encode_value(LONG, ValueType.BYTES),
        encode_value(-1, ValueType.INT64), encode_value("é" * 70, ValueType.STRING), encode_value(b"", ValueType.BYTES),
    ]  # fmt: skip
    for n_rows in (1, 2, 3):
        out = all_present(features, rows[:n_rows], values[: 3 * n_rows])
        got = serving_pb2.GetOnlineFeaturesResponse.FromString(out)
        assert got == expected_online(rows[:n_rows], features, values[: 3 * n_rows])


def test_all_present_rows_with_one_length_signature_but_long_values() -> None:
    features = [ResolvedFeature("t", "b", "t:b", ValueType.BYTES)]
    rows = [EntityRow({"e": encode_value(i, ValueType.INT64)}) for i in range(2)]
    values = [encode_value(b"y" * 254, ValueType.BYTES)] * 2  # 257 bytes each: no length signature
    out = all_present(features, rows, values)
    assert serving_pb2.GetOnlineFeaturesResponse.FromString(out) == expected_online(rows, features, values)
