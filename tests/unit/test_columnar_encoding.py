"""The columnar encoders build exactly the bytes of redis_layout's scalar encoding, for every value type."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from provender.kernel.online import columns as ce
from provender.kernel.online import layout as rl
from provender.kernel.value_types import VALID_TYPES, ValueType

INT32_EDGES = [0, 1, -1, 127, 128, 300, 16383, 16384, 2**31 - 1, -(2**31)]
INT64_EDGES = [*INT32_EDGES, 2**32, 2**53 + 1, 2**63 - 1, -(2**63)]
SCALARS: dict[ValueType, list] = {
    ValueType.BYTES: [b"", b"\x00", b"abc", bytes(range(256)) * 2, None],
    ValueType.STRING: ["", "a", "héllo wörld ✓", "x" * 200, "y" * 20000, None],
    ValueType.INT32: [*INT32_EDGES, None],
    ValueType.INT64: [*INT64_EDGES, None],
    ValueType.DOUBLE: [0.0, -0.0, 1.5, -2.25, 1e308, 5e-324, float("inf"), float("-inf"), None],
    ValueType.FLOAT: [0.0, -0.0, 1.5, -2.25, 3.4e38, 1e-45, float("inf"), None],
    ValueType.BOOL: [True, False, None],
}


def _values(vt: ValueType) -> list:
    if not vt.is_list:
        return SCALARS[vt]
    elems = [v for v in SCALARS[vt.element_type] if v is not None]
    return [[], elems[:1], elems, list(reversed(elems)) * 3, None, elems[-2:]]


@pytest.mark.parametrize("vt", VALID_TYPES, ids=lambda t: t.name)
def test_values_equal_redis_layout_bytes(vt: ValueType) -> None:
    values = _values(vt)
    got = ce.encode_values(pa.array(values, type=ce.ARROW_TYPE[vt]), vt).to_pylist()
    expected = [None if v is None else rl.encode_value(v, vt) for v in values]
    assert got == expected


def test_all_fourteen_types_are_covered() -> None:
    assert len(VALID_TYPES) == 14
    assert set(ce.ARROW_TYPE) == set(VALID_TYPES)


def test_float_column_from_doubles_is_cast_to_float32_like_protobuf() -> None:
    got = ce.encode_values(pa.array([0.1, 1 / 3]), ValueType.FLOAT).to_pylist()
    assert got == [rl.encode_value(0.1, ValueType.FLOAT), rl.encode_value(1 / 3, ValueType.FLOAT)]


def test_sliced_and_chunked_columns() -> None:
    values = pa.array(["a", "bb", None, "dddd", "eeeee"])
    got = ce.encode_values(values.slice(1, 3), ValueType.STRING).to_pylist()
    assert got == [rl.encode_value("bb", ValueType.STRING), None, rl.encode_value("dddd", ValueType.STRING)]
    lists = pa.array([[1, 2], [3], None, [4, 5, 6]], type=pa.list_(pa.int64())).slice(1, 3)
    assert ce.encode_values(lists, ValueType.INT64_LIST).to_pylist() == [
        rl.encode_value([3], ValueType.INT64_LIST),
        None,
        rl.encode_value([4, 5, 6], ValueType.INT64_LIST),
    ]
    chunked = pa.chunked_array([[1, 2], [3]], type=pa.int64())
    assert ce.encode_values(chunked, ValueType.INT64).to_pylist() == [
        rl.encode_value(v, ValueType.INT64) for v in (1, 2, 3)
    ]


def test_list_with_null_element_is_rejected() -> None:
    with pytest.raises(ValueError, match="INT64_LIST value cannot hold null elements"):
        ce.encode_values(pa.array([[1, None]], type=pa.list_(pa.int64())), ValueType.INT64_LIST)


@pytest.mark.parametrize("vt", VALID_TYPES, ids=lambda t: t.name)
def test_single_entity_keys_equal_redis_layout(vt: ValueType) -> None:
    values = [v for v in _values(vt) if v is not None]
    keys = ce.encode_keys("proj", {"e": pa.array(values, type=ce.ARROW_TYPE[vt])}, {"e": vt}).to_pylist()
    encoder = rl.KeyEncoder("proj", ["e"])
    assert keys == [encoder.encode([rl.encode_value(v, vt)]) for v in values]


def test_multi_entity_keys_sort_names_like_redis_layout() -> None:
    customers = ["c1", "c" * 300, ""]
    drivers = [7, -1, 2**40]
    keys = ce.encode_keys(
        "default",
        {"driver": pa.array(drivers, pa.int64()), "customer": pa.array(customers)},
        {"driver": ValueType.INT64, "customer": ValueType.STRING},
    ).to_pylist()
    expected = [
        rl.entity_key(
            "default",
            {"driver": rl.encode_value(d, ValueType.INT64), "customer": rl.encode_value(c, ValueType.STRING)},
        )
        for c, d in zip(customers, drivers, strict=True)
    ]
    assert keys == expected


def test_null_entity_is_rejected_naming_it() -> None:
    with pytest.raises(ValueError, match="entity 'driver'"):
        ce.encode_keys("p", {"driver": pa.array([1, None])}, {"driver": ValueType.INT64})


def test_timestamps_equal_redis_layout() -> None:
    ns = np.array(
        [
            0,
            1,
            999_999_999,
            1_000_000_000,
            1_763_596_800_123_456_789,
            -1,
            -1_000_000_000,
            -1_500_000_000,
            2**62,
        ],
        dtype=np.int64,
    )
    assert ce.encode_timestamps_ns(ns).to_pylist() == [rl.encode_timestamp_ns(int(v)) for v in ns]


def test_expire_at_rounds_up_the_expiry_of_redis_layout() -> None:
    ns = np.array([1_000_000_000, 1_000_000_001, 1_999_999_999], dtype=np.int64)
    got = ce.expire_at_seconds(ns, 60).tolist()
    assert got == [-(-rl.expiry_ns(int(v), 60) // 1_000_000_000) for v in ns] == [61, 62, 62]
    assert ce.expire_at_seconds(ns, 0).tolist() == [0, 0, 0]


def test_varints_of_random_integers_match_protobuf() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(-(2**63), 2**63 - 1, size=2000, dtype=np.int64)
    got = ce.concat(redis_layout_tag(), ce.varints(values)).to_pylist()
    assert got == [rl.encode_value(int(v), ValueType.INT64) for v in values]


def redis_layout_tag() -> bytes:
    return rl.VALUE_TAG[ValueType.INT64]
