"""Lookup results as protobuf wire bytes, with the stored Value bytes copied in as they are (no decode, no
re-encode): `feast.serving.GetOnlineFeaturesResponse` and `provender.serving.GetOnlineFeaturesColumnarResponse`.

Everything that does not depend on a stored value (map keys, status entries, empty values) is encoded once per
feature label and reused. The output parses with the generated classes; tests check that it equals what they
would build.
"""

from __future__ import annotations

from functools import lru_cache

from provender.jobs.redis_layout import SMALL_VARINTS as _SMALL
from provender.jobs.redis_layout import length_prefix as _len
from provender.jobs.redis_layout import varint as _varint
from provender.serving.lookup import FieldStatus, OnlineResult


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _len(len(payload)) + payload


# Tags (field number << 3 | wire type).
_T1_LEN = b"\x0a"  # field 1, length-delimited
_T2_LEN = b"\x12"  # field 2, length-delimited
_T2_VARINT = b"\x10"  # field 2, varint
_T3_LEN = b"\x1a"  # field 3, length-delimited
_T4_LEN = b"\x22"  # field 4, length-delimited (packed)
_T1_VARINT = b"\x08"  # field 1, varint

_STATUSES = tuple(FieldStatus)


class _Key:
    """Everything about one map key ("table:feature" or an entity name) that does not depend on its value:
    the `statuses` entry (FieldValues field 2) of each status, the `fields` entry with an empty Value, and
    the head of a `fields` entry for each value length seen so far."""

    __slots__ = ("empty_entry", "heads", "key", "present", "status_entries")

    def __init__(self, label: str) -> None:
        self.key = _ld(_T1_LEN, label.encode())
        self.empty_entry = _ld(_T1_LEN, self.key + b"\x12\x00")
        self.status_entries = tuple(_ld(_T2_LEN, self.key + _T2_VARINT + _varint(int(s))) for s in _STATUSES)
        self.present = self.status_entries[int(FieldStatus.PRESENT)]
        self.heads: dict[int, bytes] = {}

    def head(self, n: int) -> bytes:
        """The bytes of a `fields` entry that come before a value of n bytes."""
        head = self.heads.get(n)
        if head is None:
            inner = self.key + b"\x12" + _len(n)
            head = self.heads[n] = _T1_LEN + _len(len(inner) + n) + inner
        return head


@lru_cache(maxsize=65536)
def _key(label: str) -> _Key:
    return _Key(label)


_PRESENT = int(FieldStatus.PRESENT)


def online_response(result: OnlineResult) -> bytes:
    """Serialized feast.serving.GetOnlineFeaturesResponse: one FieldValues per row, entity fields echoed
    with PRESENT, features under "table:feature"."""
    keys = [_key(f.label) for f in result.features]
    n = len(keys)
    heads = [k.heads for k in keys]
    presents = [k.present for k in keys]
    present_row = [_PRESENT] * n
    values = result.values
    statuses = result.statuses
    out: list[bytes] = []
    add_row = out.append
    lo = 0
    for row in result.rows:
        parts: list[bytes] = []
        for name, value in row.fields.items():
            k = _key(name)
            parts += (k.head(len(value)), value, k.present)
        hi = lo + n
        if statuses[lo:hi] == present_row:
            # Every feature present: interleave heads, values and status entries with slice assignments.
            row_values = values[lo:hi]
            row_heads = list(map(dict.get, heads, map(len, row_values)))
            if None in row_heads:
                row_heads = [k.head(len(v)) for k, v in zip(keys, row_values, strict=True)]
            block: list[bytes] = [b""] * (3 * n)
            block[0::3] = row_heads
            block[1::3] = row_values
            block[2::3] = presents
            parts += block
        else:
            for i in range(lo, hi):
                k = keys[i - lo]
                status = statuses[i]
                if status == _PRESENT:
                    value = values[i]
                    parts += (k.head(len(value)), value, k.present)
                else:
                    parts += (k.empty_entry, k.status_entries[status])
        lo = hi
        body = b"".join(parts)
        add_row(_T1_LEN + _len(len(body)) + body)
    return b"".join(out)


def columnar_response(result: OnlineResult) -> bytes:
    """Serialized provender.serving.GetOnlineFeaturesColumnarResponse: a column per feature, request order."""
    n_rows = len(result.rows)
    n_features = len(result.features)
    values = result.values
    statuses = result.statuses
    out = [_T1_VARINT + _varint(n_rows)] if n_rows else []
    value_tags = [_T3_LEN] * n_rows
    for f, feature in enumerate(result.features):
        parts = [_ld(_T1_LEN, feature.label.encode())]
        if feature.value_type:
            parts.append(_T2_VARINT + _varint(int(feature.value_type)))
        column = values[f::n_features]
        lengths = list(map(len, column))
        if max(lengths) < len(_SMALL):
            block: list[bytes] = [b""] * (3 * n_rows)
            block[0::3] = value_tags
            block[1::3] = list(map(_SMALL.__getitem__, lengths))
            block[2::3] = column
            parts += block
        else:
            parts += [_T3_LEN + _len(len(v)) + v for v in column]
        parts.append(_ld(_T4_LEN, bytes(statuses[f::n_features])))  # every status is < 128: one byte each
        out.append(_ld(_T2_LEN, b"".join(parts)))
    return b"".join(out)
