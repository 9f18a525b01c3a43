"""OnlineLookup's statuses against the kernel's one-value statement of the rules (kernel/online/status.py), on
generated stored bytes: the vectorized fast path (every value present and of its type) and the per-value path
must agree with it; and the statement itself against the rules as docs/protocol.md words them."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provender.kernel.errors import InvalidArgument
from provender.kernel.online.layout import (
    VALUE_TAG,
    KeyEncoder,
    decode_timestamp_ns,
    encode_timestamp_ns,
    encode_value,
    feature_field,
    ts_field,
)
from provender.kernel.online.status import outside_max_age, status_of
from provender.kernel.value_types import ValueType
from provender.serving.lookup import (
    EntityRow,
    FieldStatus,
    OnlineLookup,
    OnlineRequest,
    _all_of_type,
    _tag_range,
    _type_checks,
)
from provender.serving.redis_store import Command
from provender.serving.spec_cache import SpecCache
from provender.serving.specs import ServingTable

SECOND = 1_000_000_000
NOW = 1_800_000_000 * SECOND
PROJECT = "p"
TABLES = {
    # two tables on one entity (one hash per row), one of them with a max_age; one on two entities
    "t": ServingTable(PROJECT, "t", ("e",), {"f": ValueType.FLOAT, "i": ValueType.INT64}, 60 * SECOND),
    "u": ServingTable(PROJECT, "u", ("e",), {"s": ValueType.STRING, "l": ValueType.INT64_LIST}, 0),
    "v": ServingTable(PROJECT, "v", ("e", "g"), {"d": ValueType.DOUBLE}, 0),
}
SAMPLES = {
    ValueType.FLOAT: 0.5,
    ValueType.INT64: 300,
    ValueType.STRING: "héllo",
    ValueType.INT64_LIST: [1, 2],
    ValueType.DOUBLE: 2.5,
}


class Source:
    def list_tables(self) -> list[ServingTable]:
        return list(TABLES.values())

    def get_table(self, project: str, name: str) -> ServingTable | None:
        return TABLES.get(name) if project == PROJECT else None

    def describe(self) -> str:
        return "test"


class Store:
    """Hashes in a dict; HMGET answers one entry per field, None when absent."""

    def __init__(self, hashes: dict[bytes, dict[bytes, bytes]]) -> None:
        self.hashes = hashes

    def hmget_many(self, commands: Sequence[Command]) -> list[list[bytes | None]]:
        return [[self.hashes.get(key, {}).get(f) for f in fields.fields] for key, fields in commands]


def lookup_of(hashes: dict[bytes, dict[bytes, bytes]]) -> OnlineLookup:
    specs = SpecCache(Source())
    specs.refresh()
    return OnlineLookup(specs, Store(hashes), now_ns=lambda: NOW)  # type: ignore[arg-type]


def entity_values(e: int, g: int) -> dict[str, bytes]:
    return {"e": encode_value(e, ValueType.INT64), "g": encode_value(f"g{g}", ValueType.STRING)}


def expected_status(raw: bytes | None, vt: ValueType, outside: bool) -> tuple[int, bytes]:
    """The kernel's rule for one value, and the value a response carries with it."""
    status = status_of(raw, vt, outside)
    return status, raw if status == FieldStatus.PRESENT and raw is not None else b""


stored = st.one_of(
    st.none(),  # absent
    st.sampled_from(sorted(SAMPLES)).map(lambda vt: encode_value(SAMPLES[vt], vt)),  # canonical, some type
    st.just(b""),  # an unset Value
    st.binary(max_size=6),  # anything
    st.sampled_from(list(VALUE_TAG.values())).flatmap(lambda t: st.binary(max_size=4).map(lambda b: t + b)),
)
REFS = [("t", "f"), ("t", "i"), ("u", "s"), ("u", "l"), ("v", "d")]


@st.composite
def cases(draw):
    refs = draw(st.lists(st.sampled_from(REFS), min_size=1, max_size=5, unique=True))
    n_rows = draw(st.integers(1, 5))
    common = draw(st.booleans())  # every value canonical and fresh: the fast path
    hashes: dict[bytes, dict[bytes, bytes]] = {}
    rows = []
    for _ in range(n_rows):
        e, g = draw(st.integers(0, 3)), draw(st.integers(0, 1))
        values = entity_values(e, g)
        stamp = draw(st.sampled_from([0, NOW - 30 * SECOND, NOW + 5 * SECOND]))
        rows.append(EntityRow(values, stamp))
        for table in {t for t, _ in refs}:
            spec = TABLES[table]
            key = KeyEncoder(PROJECT, spec.entities).encode([values[n] for n in spec.entities])
            h = hashes.setdefault(key, {})
            for name, vt in spec.features.items():
                raw = encode_value(SAMPLES[vt], vt) if common else draw(stored)
                if raw is not None:
                    h[feature_field(table, name)] = raw
            if spec.max_age_ns:
                age = 10 * SECOND if common else draw(st.sampled_from([None, 10, 60, 61, 90, 3600]))
                if age is not None:
                    h[ts_field(table)] = encode_timestamp_ns(NOW - age * SECOND)
    return refs, rows, hashes


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases())
def test_statuses_follow_the_rules(case) -> None:
    refs, rows, hashes = case
    result = lookup_of(hashes).lookup(OnlineRequest(PROJECT, refs, rows))
    want_values, want_statuses = [], []
    for row in rows:
        for table, name in refs:
            spec = TABLES[table]
            key = KeyEncoder(PROJECT, spec.entities).encode([row.fields[n] for n in spec.entities])
            h = hashes.get(key, {})
            ts = h.get(ts_field(table))
            written = None if ts is None else decode_timestamp_ns(ts)
            outside = outside_max_age(row.timestamp_ns or NOW, written, spec.max_age_ns)
            status, value = expected_status(h.get(feature_field(table, name)), spec.features[name], outside)
            want_statuses.append(int(status))
            want_values.append(value)
    assert result.statuses == want_statuses
    assert result.values == want_values
    assert result.all_present == all(s == FieldStatus.PRESENT for s in want_statuses)


def test_a_fresh_canonical_request_takes_the_fast_path() -> None:
    values = entity_values(1, 0)
    key = KeyEncoder(PROJECT, ["e"]).encode([values["e"]])
    hashes = {
        key: {
            feature_field("t", "f"): encode_value(0.5, ValueType.FLOAT),
            feature_field("t", "i"): encode_value(7, ValueType.INT64),
            ts_field("t"): encode_timestamp_ns(NOW - SECOND),
        }
    }
    result = lookup_of(hashes).lookup(
        OnlineRequest(PROJECT, [("t", "f"), ("t", "i")], [EntityRow(values)] * 3)
    )
    assert result.all_present and result.statuses == [FieldStatus.PRESENT] * 6


def test_missing_and_unset_entities_are_named_row_by_row() -> None:
    lookup = lookup_of({})
    good = entity_values(1, 0)
    rows = [EntityRow(good), EntityRow({"e": good["e"]}), EntityRow({**good, "e": b""})]
    with pytest.raises(InvalidArgument) as e:
        lookup.lookup(OnlineRequest(PROJECT, [("t", "f"), ("v", "d")], rows))
    assert "entity_rows[1]" in str(e.value) and "'g'" in str(e.value)
    with pytest.raises(InvalidArgument) as e:
        lookup.lookup(OnlineRequest(PROJECT, [("v", "d"), ("t", "f")], rows[::2]))
    assert "entity_rows[1].fields['e']" in str(e.value)


@given(st.binary(min_size=1, max_size=3), st.binary(max_size=5))
def test_tag_ranges_are_prefix_checks(tag: bytes, value: bytes) -> None:
    bounds = _tag_range(tag)
    if tag[-1] == 0xFF:
        assert bounds is None
        return
    assert bounds is not None
    lowest, highest = bounds
    assert (lowest <= value < highest) == value.startswith(tag)
    assert (lowest <= tag + value < highest) is True


def test_type_checks_by_tag() -> None:
    f, i = VALUE_TAG[ValueType.FLOAT], VALUE_TAG[ValueType.INT64]
    checks = _type_checks([f, i, f])
    assert checks is not None
    good = [f + b"abcd", i + b"\x01", f + b"efgh"] * 2
    assert _all_of_type(good, 3, checks)
    assert not _all_of_type([*good[:5], i + b"\x02"], 3, checks)
    assert not _all_of_type([*good[:5], None], 3, checks)
    assert _type_checks([b"\xff\xff"]) is None
    one = _type_checks([f, f])
    assert one is not None and one[0][0] is None  # one tag: a single check over every value
    assert not _all_of_type([None], 1, _type_checks([f]) or [])


def test_the_kernel_statement_reads_as_the_protocol_words_it() -> None:
    """docs/protocol.md's status table, row by row."""
    five = encode_value(5, ValueType.INT64)
    assert status_of(None, ValueType.INT64, False) == FieldStatus.NOT_FOUND  # absent
    assert status_of(b"\xff\xff", ValueType.INT64, False) == FieldStatus.NOT_FOUND  # not a Value
    assert status_of(encode_value("x", ValueType.STRING), ValueType.INT64, False) == FieldStatus.NOT_FOUND
    assert status_of(five, ValueType.INT64, True) == FieldStatus.OUTSIDE_MAX_AGE
    assert status_of(b"", ValueType.INT64, True) == FieldStatus.OUTSIDE_MAX_AGE  # unset but too old
    assert status_of(b"", ValueType.INT64, False) == FieldStatus.NULL_VALUE
    assert status_of(five, ValueType.INT64, False) == FieldStatus.PRESENT
    # max_age: strictly older than it expires; no max_age never does; no _ts: field is the epoch
    assert not outside_max_age(NOW, NOW - 60 * SECOND, 60 * SECOND)
    assert outside_max_age(NOW, NOW - 60 * SECOND - 1, 60 * SECOND)
    assert not outside_max_age(NOW, None, 0)
    assert outside_max_age(NOW, None, 3600 * SECOND)


@pytest.mark.parametrize(
    ("project", "ref", "field"),
    [
        ("default" * 40, ("t", "f"), "project"),
        (PROJECT, ("t" * 256, "f"), "features[0]"),
        (PROJECT, ("t", "f-x"), "features[0]"),
    ],
)
def test_names_no_table_can_have_are_refused_without_asking_core(project, ref, field) -> None:
    class Counting(Source):
        asked = 0

        def get_table(self, project: str, name: str) -> ServingTable | None:
            Counting.asked += 1
            return super().get_table(project, name)

    specs = SpecCache(Counting())
    lookup = OnlineLookup(specs, Store({}), now_ns=lambda: NOW)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=rf"^{re.escape(field)}: .* at most 255 long"):
        lookup.lookup(OnlineRequest(project, [ref], [EntityRow(entity_values(1, 0))]))
    assert Counting.asked == 0
