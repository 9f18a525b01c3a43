"""How feature values become pandas columns: one dtype per ValueType (provender.kernel.value_types.pandas_dtype),
used by every `to_df` (online lookups and training sets alike), so a feature has the same dtype offline and
online, with or without missing values.

| ValueType | pandas dtype | missing value |
|---|---|---|
| INT32, INT64 | `Int32`, `Int64` (nullable) | `pd.NA` |
| FLOAT, DOUBLE | `float32`, `float64` | `NaN` |
| BOOL | `boolean` (nullable) | `pd.NA` |
| STRING, BYTES | `object` (str, bytes) | `None` |
| lists | `object` (Python lists) | `None` |

Columns carried from an entity DataFrame keep that DataFrame's dtypes, time zones included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from provender.kernel.value_types import ValueType, arrow_to_pandas_dtype, pandas_dtype


def column(values: Sequence[Any], value_type: ValueType | None) -> pd.Series:
    """A column of Python values (None where missing) with the dtype of `value_type` (inferred when None)."""
    if value_type is None:
        return pd.Series(list(values), dtype="object")
    return pd.Series(list(values), dtype=pandas_dtype(value_type))


def restore_dtypes(frame: pd.DataFrame, dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """`frame` with the given columns back in the dtypes they had (time zones included: a timestamp read back
    in UTC is converted to the zone it came in, or made naive again)."""
    for name, dtype in dtypes.items():
        if name not in frame.columns or frame[name].dtype == dtype:
            continue
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(dtype):
            times = series if _is_time(series) else pd.to_datetime(series, utc=True)
            if times.dt.tz is None:
                times = times.dt.tz_localize("UTC")
            tz = getattr(dtype, "tz", None)
            frame[name] = (times.dt.tz_convert(tz) if tz is not None else times.dt.tz_convert(None)).astype(
                dtype
            )
            continue
        # A value the old dtype cannot hold (a null in an int column): keep what was read.
        with contextlib.suppress(TypeError, ValueError):
            frame[name] = series.astype(dtype)
    return frame


def _is_time(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series.dtype)


__all__ = ["arrow_to_pandas_dtype", "column", "pandas_dtype", "restore_dtypes"]
