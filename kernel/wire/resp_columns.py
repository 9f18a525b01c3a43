"""RESP a column at a time (pyarrow): the bulk strings of a whole binary column, and the decimal text of integers,
for building many commands without per-row Python."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from provender.kernel.wire.resp import CRLF


def decimal(values: np.ndarray) -> pa.Array:
    """Integers as their decimal text (the form RESP lengths, counts and numeric arguments take)."""
    return pa.array(values, pa.int64()).cast(pa.string()).cast(pa.binary())


def bulk_column(values: pa.Array) -> list[pa.Array | bytes]:
    """The parts of the RESP bulk strings of a binary column without nulls, to concatenate row by row (one
    constant header when every value has the same length, as fixed-width encodings do)."""
    lengths = pc.binary_length(values)
    bounds = pc.min_max(lengths)
    shortest, longest = bounds["min"].as_py(), bounds["max"].as_py()
    if shortest is not None and shortest == longest:
        return [b"$%d\r\n" % shortest, values, CRLF]
    return [b"$", lengths.cast(pa.string()).cast(pa.binary()), CRLF, values, CRLF]
