"""Lookup results as protobuf wire bytes, with the stored Value bytes copied in as they are (no decode, no
re-encode): `feast.serving.GetOnlineFeaturesResponse` and `provender.serving.GetOnlineFeaturesColumnarResponse`.

Everything that does not depend on a stored value (map keys, status entries, empty values) is encoded once per
feature label and reused. The output parses with the generated classes; tests check that it equals what they
would build.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from provender.kernel.wire.protobuf import SMALL_VARINTS as _SMALL
from provender.kernel.wire.protobuf import field_tag, tag
from provender.kernel.wire.protobuf import length_prefix as _len
from provender.kernel.wire.protobuf import varint as _varint
from provender.proto.feast.serving import ServingService_pb2 as serving_pb
from provender.proto.provender.serving import ColumnarServing_pb2 as columnar_pb
from provender.serving.lookup import EntityRow, FieldStatus, OnlineResult, ResolvedFeature


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _len(len(payload)) + payload


# Tags, from the descriptors: GetOnlineFeaturesResponse.field_values; FieldValues' map entries `fields` and
# `statuses` and their key/value; the columnar response's row_count and features; FeatureColumn's fields.
_FIELD_VALUES = serving_pb.GetOnlineFeaturesResponse.FieldValues
_ROW = field_tag(serving_pb.GetOnlineFeaturesResponse, "field_values")
_FIELDS_ENTRY = field_tag(_FIELD_VALUES, "fields")
_STATUSES_ENTRY = field_tag(_FIELD_VALUES, "statuses")
_ENTRY = _FIELD_VALUES.DESCRIPTOR.fields_by_name["fields"].message_type.fields_by_name
_STATUS_ENTRY = _FIELD_VALUES.DESCRIPTOR.fields_by_name["statuses"].message_type.fields_by_name
_ENTRY_KEY = tag(_ENTRY["key"])
_ENTRY_VALUE = tag(_ENTRY["value"])
_STATUS_VALUE = tag(_STATUS_ENTRY["value"])
_ROW_COUNT = field_tag(columnar_pb.GetOnlineFeaturesColumnarResponse, "row_count")
_COLUMN = field_tag(columnar_pb.GetOnlineFeaturesColumnarResponse, "features")
_COLUMN_NAME = field_tag(columnar_pb.FeatureColumn, "name")
_COLUMN_TYPE = field_tag(columnar_pb.FeatureColumn, "value_type")
_COLUMN_VALUE = field_tag(columnar_pb.FeatureColumn, "values")
_COLUMN_STATUSES = field_tag(columnar_pb.FeatureColumn, "statuses")  # packed

_STATUSES = tuple(FieldStatus)


class _Key:
    """Everything about one map key ("table:feature" or an entity name) that does not depend on its value:
    the `statuses` entry (FieldValues field 2) of each status, the `fields` entry with an empty Value, and
    the head of a `fields` entry for each value length seen so far."""

    __slots__ = ("empty_entry", "heads", "key", "label", "present", "status_entries")

    def __init__(self, label: str) -> None:
        self.label = label
        self.key = _ld(_ENTRY_KEY, label.encode())
        self.empty_entry = _ld(_FIELDS_ENTRY, self.key + _ENTRY_VALUE + _len(0))
        self.status_entries = tuple(
            _ld(_STATUSES_ENTRY, self.key + _STATUS_VALUE + _varint(int(s))) for s in _STATUSES
        )
        self.present = self.status_entries[int(FieldStatus.PRESENT)]
        self.heads: dict[int, bytes] = {}

    def head(self, n: int) -> bytes:
        """The bytes of a `fields` entry that come before a value of n bytes."""
        head = self.heads.get(n)
        if head is None:
            inner = self.key + _ENTRY_VALUE + _len(n)
            head = self.heads[n] = _FIELDS_ENTRY + _len(len(inner) + n) + inner
        return head


@lru_cache(maxsize=65536)
def _key(label: str) -> _Key:
    return _Key(label)


_PRESENT = int(FieldStatus.PRESENT)
MAX_CACHED_FEATURE_LISTS = 4096
# id(feature list) -> (the list, its keys): a lookup plan's feature list is the same object call after call.
# The list is held so that its id cannot be reused while it is cached.
_feature_keys: dict[int, tuple[list[ResolvedFeature], list[_Key]]] = {}


def _keys_of(features: list[ResolvedFeature]) -> list[_Key]:
    hit = _feature_keys.get(id(features))
    if hit is not None and hit[0] is features:
        return hit[1]
    keys = [_key(f.label) for f in features]
    if len(_feature_keys) >= MAX_CACHED_FEATURE_LISTS:
        _feature_keys.clear()
    _feature_keys[id(features)] = (features, keys)
    return keys


def online_response(result: OnlineResult) -> bytes:
    """Serialized feast.serving.GetOnlineFeaturesResponse: one FieldValues per row, entity fields echoed
    with PRESENT, features under "table:feature"."""
    keys = _keys_of(result.features)
    n_rows = len(result.rows)
    if result.all_present:
        feature_parts = _present_rows(keys, result.values, n_rows)
    else:
        feature_parts = _mixed_rows(keys, result.values, result.statuses, n_rows)
    out: list[bytes] = []
    for entities, features in zip(_entity_parts(result.rows), feature_parts, strict=True):
        out += (_ROW, _len(len(entities) + len(features)), entities, features)
    return b"".join(out)


def _entity_parts(rows: Sequence[EntityRow]) -> list[bytes]:
    """Per row, the `fields` and `statuses` entries echoing its entity values with PRESENT."""
    out: list[bytes] = []
    for row in rows:
        parts: list[bytes] = []
        for name, value in row.fields.items():
            k = _key(name)
            parts += (k.head(len(value)), value, k.present)
        out.append(b"".join(parts))
    return out


def _present_rows(keys: list[_Key], values: list[bytes], n_rows: int) -> list[bytes]:
    """Per row, the entries of its features when every one is PRESENT."""
    n = len(keys)
    lengths = list(map(len, values))
    if n_rows > 1:
        # Values of fixed-width types (FLOAT, DOUBLE, BOOL, ...) have the same lengths in every row: one
        # %-template for the rows, every byte around the values written once.
        try:
            all_lengths = bytes(lengths)
        except ValueError:  # a value of 256 bytes or more
            all_lengths = None
        signature = all_lengths[:n] if all_lengths is not None else None
        if signature is not None and all_lengths == signature * n_rows:
            template = _row_template(tuple(k.label for k in keys), signature)
            return [template % tuple(values[lo : lo + n]) for lo in range(0, n * n_rows, n)]
    # Heads, values and status entries interleaved with slice assignments over the whole response.
    heads = list(map(dict.get, [k.heads for k in keys] * n_rows, lengths))
    if None in heads:  # a value length not seen yet for its key
        heads = [k.head(v) for k, v in zip(keys * n_rows, lengths, strict=True)]
    block: list[bytes] = [b""] * (3 * len(values))
    block[0::3] = heads
    block[1::3] = values
    block[2::3] = [k.present for k in keys] * n_rows
    step = 3 * n
    join = b"".join
    return [join(block[lo : lo + step]) for lo in range(0, len(block), step)]


@lru_cache(maxsize=1024)
def _row_template(labels: tuple[str, ...], lengths: bytes) -> bytes:
    """A bytes %-template of one row's feature entries, all PRESENT, for values of these lengths (%b each)."""
    parts: list[bytes] = []
    for label, n in zip(labels, lengths, strict=True):
        k = _key(label)
        parts += (k.head(n).replace(b"%", b"%%"), b"%b", k.present.replace(b"%", b"%%"))
    return b"".join(parts)


def _mixed_rows(keys: list[_Key], values: list[bytes], statuses: list[int], n_rows: int) -> list[bytes]:
    n = len(keys)
    out: list[bytes] = []
    for lo in range(0, n * n_rows, n):
        parts: list[bytes] = []
        for f, k in enumerate(keys):
            status = statuses[lo + f]
            if status == _PRESENT:
                value = values[lo + f]
                parts += (k.head(len(value)), value, k.present)
            else:
                parts += (k.empty_entry, k.status_entries[status])
        out.append(b"".join(parts))
    return out


def columnar_response(result: OnlineResult) -> bytes:
    """Serialized provender.serving.GetOnlineFeaturesColumnarResponse: a column per feature, request order."""
    n_rows = len(result.rows)
    n_features = len(result.features)
    values = result.values
    statuses = result.statuses
    out = [_ROW_COUNT + _varint(n_rows)] if n_rows else []
    value_tags = [_COLUMN_VALUE] * n_rows
    for f, feature in enumerate(result.features):
        parts = [_ld(_COLUMN_NAME, feature.label.encode())]
        if feature.value_type:
            parts.append(_COLUMN_TYPE + _varint(int(feature.value_type)))
        column = values[f::n_features]
        lengths = list(map(len, column))
        if max(lengths) < len(_SMALL):
            block: list[bytes] = [b""] * (3 * n_rows)
            block[0::3] = value_tags
            block[1::3] = list(map(_SMALL.__getitem__, lengths))
            block[2::3] = column
            parts += block
        else:
            parts += [_COLUMN_VALUE + _len(len(v)) + v for v in column]
        parts.append(
            _ld(_COLUMN_STATUSES, bytes(statuses[f::n_features]))
        )  # every status is < 128: one byte each
        out.append(_ld(_COLUMN, b"".join(parts)))
    return b"".join(out)


def estimated_size(result: OnlineResult) -> int:
    """About how many bytes the feast response of `result` takes (the columnar one takes fewer), without
    building it: its values exactly, the bytes around them per row, and the first row's entity values for
    every row."""
    rows = result.rows
    if not rows:
        return 0
    per_row = sum(len(k.empty_entry) + len(k.present) + 10 for k in _keys_of(result.features))
    per_row += sum(len(_key(n).empty_entry) + len(v) + 20 for n, v in rows[0].fields.items())
    return sum(map(len, result.values)) + len(rows) * per_row
