"""One dtype rule for every to_df: online lookups and training sets give a feature the same pandas dtype, with
or without missing values, and columns carried from an entity DataFrame come back as they went in."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provender.dtypes import arrow_to_pandas_dtype, column, pandas_dtype, restore_dtypes
from provender.kernel.value_types import VALID_TYPES, ValueType, arrow_type, to_value
from provender.online import OnlineResponse
from provender.proto.feast.serving import ServingService_pb2 as pb

SCALARS = [t for t in VALID_TYPES if not t.is_list]


@pytest.mark.parametrize("value_type", VALID_TYPES, ids=lambda t: t.name)
def test_offline_and_online_give_a_type_the_same_dtype(value_type):
    """The parquet column a training set reads (arrow_type of the feature) and an online column agree."""
    offline = pa.table({"f": pa.array([None], type=arrow_type(value_type))}).to_pandas(
        types_mapper=arrow_to_pandas_dtype
    )["f"]
    assert (
        offline.dtype
        == column([None], value_type).dtype
        == pd.Series([], dtype=pandas_dtype(value_type)).dtype
    )


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=1, max_size=20))
def test_int64_values_stay_integers_whatever_is_missing(values):
    series = column(values, ValueType.INT64)
    assert series.dtype == pd.Int64Dtype()
    assert [None if pd.isna(v) else int(v) for v in series] == values


def test_online_response_without_any_value_keeps_the_declared_dtype():
    row = pb.GetOnlineFeaturesResponse.FieldValues()
    row.fields["driver_id"].CopyFrom(to_value(7, ValueType.INT64))
    row.fields["t:trips"].CopyFrom(to_value(None))
    row.fields["t:rate"].CopyFrom(to_value(None))
    row.statuses["t:trips"] = pb.GetOnlineFeaturesResponse.NOT_FOUND
    row.statuses["t:rate"] = pb.GetOnlineFeaturesResponse.NOT_FOUND
    answer = pb.GetOnlineFeaturesResponse(field_values=[row])
    frame = OnlineResponse.from_rows(
        answer, types={"t:trips": ValueType.INT32, "t:rate": ValueType.FLOAT}
    ).to_df()
    assert frame.dtypes.to_dict() == {
        "driver_id": pd.Int64Dtype(),
        "t:trips": pd.Int32Dtype(),
        "t:rate": "float32",
    }


@pytest.mark.parametrize("zone", [None, "UTC", "America/New_York", "Asia/Kolkata"])
def test_restore_gives_back_the_time_zone_and_unit_it_came_in(zone):
    times = pd.Series(pd.to_datetime(["2026-11-30 10:00:00.123456", "2026-12-01 23:59:59.000001"]))
    original = times.dt.tz_localize(zone) if zone else times
    as_utc = pd.DataFrame({"t": original.dt.tz_convert("UTC") if zone else times.dt.tz_localize("UTC")})
    as_naive_utc = pd.DataFrame({"t": as_utc["t"].dt.tz_convert(None)})
    for read_back in (as_utc, as_naive_utc):
        restored = restore_dtypes(read_back.copy(), {"t": original.dtype})
        pd.testing.assert_series_equal(restored["t"], original.rename("t"))


def test_restore_keeps_what_was_read_when_the_old_dtype_cannot_hold_it():
    frame = pd.DataFrame({"id": pd.array([1, None], dtype="Int64"), "n": pd.array([1, 2], dtype="Int64")})
    restored = restore_dtypes(frame, {"id": "int64", "n": "int64", "absent": "int64"})
    assert restored.dtypes.to_dict() == {"id": pd.Int64Dtype(), "n": "int64"}
