"""Online lookups: validate a request, read every row of every table in one Redis round trip, decide statuses.

The status rules are stated one value at a time in provender.kernel.online.status (docs/protocol.md): absent or
of another type → NOT_FOUND; older than the table's max_age → OUTSIDE_MAX_AGE; unset → NULL_VALUE; else PRESENT.
Here they are applied to a whole request at once: a fast path for the common case (every value there, canonical
and fresh), then value by value with the kernel's `status_of` for stored bytes that are not canonical.
Values that are not returned are empty Values (b""). Stored bytes are never decoded unless they are not in
canonical form (the type check is a prefix check of the oneof tag).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import NamedTuple

from provender.kernel.errors import InvalidArgument
from provender.kernel.names import MAX_NAME_LENGTH, NAME_RULE, is_valid_name
from provender.kernel.online.layout import (
    VALUE_TAG,
    KeyEncoder,
    decode_timestamp_ns,
    feature_field,
    ts_field,
)
from provender.kernel.online.status import FieldStatus, status_of
from provender.kernel.value_types import ValueType
from provender.serving.metrics import ServingMetrics
from provender.serving.redis_store import Command, FieldSet, RedisStore
from provender.serving.spec_cache import SpecCache
from provender.serving.specs import DEFAULT_PROJECT, ServingTable

PRESENT = int(FieldStatus.PRESENT)
NULL_VALUE = int(FieldStatus.NULL_VALUE)
NOT_FOUND = int(FieldStatus.NOT_FOUND)
OUTSIDE_MAX_AGE = int(FieldStatus.OUTSIDE_MAX_AGE)
MAX_CACHED_PLANS = 4096
MAX_CACHED_TIMESTAMPS = 4096
_timestamp_of = operator.itemgetter(1)  # EntityRow.timestamp_ns


class EntityRow(NamedTuple):
    """Entity name → serialized feast.types.Value; `timestamp_ns` is the max_age reference (0: now)."""

    fields: dict[str, bytes]
    timestamp_ns: int = 0


@dataclass(frozen=True, slots=True)
class OnlineRequest:
    project: str
    features: Sequence[tuple[str, str]]  # (feature table, feature)
    rows: Sequence[EntityRow]


@dataclass(frozen=True, slots=True)
class ResolvedFeature:
    table: str
    name: str
    label: str  # "table:feature", the key in responses
    value_type: ValueType


@dataclass(slots=True)
class OnlineResult:
    """Values and statuses row-major: feature f of row r is at index r * len(features) + f."""

    project: str
    features: list[ResolvedFeature]
    rows: Sequence[EntityRow]
    values: list[bytes]
    statuses: list[int]
    all_present: bool = False  # every status is PRESENT (the response writers' fast path)


@dataclass(slots=True)
class _Group:
    """The tables of one request that share an entity set, hence one Redis hash per row."""

    encoder: KeyEncoder
    fields: list[bytes]
    table: str  # a table of the group, named in error messages
    field_set: FieldSet | None = None


# Where a feature's value is in the Redis replies: (group, field index, expected Value tag, type, table index).
_Slot = tuple[int, int, bytes, ValueType, int]


@dataclass(slots=True)
class _Plan:
    features: list[ResolvedFeature]
    groups: list[_Group]
    slots: list[_Slot]
    tables: list[ServingTable]
    # (table index, group, field of _ts, max_age ns) of the tables with a max_age
    aged: list[tuple[int, int, int, int]]
    # Fast path when every feature is read from one hash per row: the features' values picked from a reply,
    # in order, and the type checks of their values: (features, lowest, highest) with features None for all,
    # where a value starts with its type's tag exactly when lowest <= value < highest (see _tag_range).
    single_group_values: Callable[[list], tuple] | None = None
    type_checks: list[tuple[list[int] | None, bytes, bytes]] | None = None


class OnlineLookup:
    def __init__(
        self,
        specs: SpecCache,
        store: RedisStore,
        metrics: ServingMetrics | None = None,
        on_redis_failure: Callable[[], None] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._specs = specs
        self._store = store
        self._metrics = metrics
        self._on_redis_failure = on_redis_failure
        self._now_ns = now_ns
        self._plans: dict[tuple[str, tuple[tuple[str, str], ...]], _Plan] = {}
        self._per_api: dict[str, tuple] = {}  # api -> (rows histogram, features histogram) children
        # Decoded `_ts:` values: rows written by one ingestion run share their event time.
        self._times: dict[bytes, int] = {}

    def lookup(self, request: OnlineRequest, api: str = "feast") -> OnlineResult:
        rows = request.rows
        if not request.features:
            raise InvalidArgument("features", [], "at least one feature reference 'table:feature'")
        if not rows:
            raise InvalidArgument("entity_rows", [], "at least one entity row")
        project = request.project or DEFAULT_PROJECT
        plan = self._cached_plan(project, request.features)
        commands = self._commands(plan, rows)
        try:
            replies = self._store.hmget_many(commands)
        except Exception:
            if self._on_redis_failure is not None:
                self._on_redis_failure()
            raise
        values, statuses, all_present = self._statuses(plan, rows, replies)
        if self._metrics is not None:
            self._record(plan, project, api, len(rows), statuses, all_present)
        return OnlineResult(project, plan.features, rows, values, statuses, all_present)

    # planning ---------------------------------------------------------------------------------------------

    def _cached_plan(self, project: str, refs: Sequence[tuple[str, str]]) -> _Plan:
        """Plans are kept per (project, feature list) while the specs they were made from are current."""
        key = (project, tuple(refs))
        plan = self._plans.get(key)
        if plan is not None and all(self._specs.is_current(t) for t in plan.tables):
            return plan
        plan = self._plan(project, refs)
        if len(self._plans) >= MAX_CACHED_PLANS:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _plan(self, project: str, refs: Sequence[tuple[str, str]]) -> _Plan:
        if not is_valid_name(project):
            raise InvalidArgument("project", project, f"{NAME_RULE}, at most {MAX_NAME_LENGTH} long")
        features: list[ResolvedFeature] = []
        seen: set[tuple[str, str]] = set()
        table_index: dict[str, int] = {}
        tables: list[ServingTable] = []
        group_index: dict[tuple[str, ...], int] = {}
        groups: list[_Group] = []
        slots: list[_Slot] = []
        for i, (table, name) in enumerate(refs):
            if not table or not name:
                raise InvalidArgument(
                    f"features[{i}]",
                    f"{table}:{name}",
                    "a feature table name and a feature name, both non-empty",
                )
            if not (is_valid_name(table) and is_valid_name(name)):  # no table has it: no call to Core
                raise InvalidArgument(
                    f"features[{i}]",
                    f"{table}:{name}",
                    f"a feature table name and a feature name, each {NAME_RULE}, at most {MAX_NAME_LENGTH} long",
                )
            if (table, name) in seen:
                continue
            seen.add((table, name))
            spec = self._specs.table_with_feature(project, table, name)
            if not spec.entities:
                raise InvalidArgument(f"features[{i}]", f"{table}:{name}", "a feature table with entities")
            ti = table_index.get(table)
            if ti is None:
                ti = table_index[table] = len(tables)
                tables.append(spec)
            gi = group_index.get(spec.entities)
            if gi is None:
                gi = group_index[spec.entities] = len(groups)
                groups.append(_Group(KeyEncoder(project, spec.entities), [], table))
            group = groups[gi]
            vt = spec.features[name]
            tag = VALUE_TAG.get(vt, b"\xff\xff")  # INVALID: no stored value matches
            slots.append((gi, len(group.fields), tag, vt, ti))
            group.fields.append(feature_field(table, name))
            features.append(ResolvedFeature(table, name, f"{table}:{name}", vt))
        aged: list[tuple[int, int, int, int]] = []
        for ti, spec in enumerate(tables):
            if spec.max_age_ns > 0:
                group = groups[group_index[spec.entities]]
                aged.append((ti, group_index[spec.entities], len(group.fields), spec.max_age_ns))
                group.fields.append(ts_field(spec.name))
        for group in groups:
            group.field_set = FieldSet(group.fields)
        plan = _Plan(features, groups, slots, tables, aged)
        if len(groups) == 1:
            positions = [fi for _, fi, _, _, _ in slots]
            if len(positions) == 1:
                only = positions[0]
                plan.single_group_values = lambda reply: (reply[only],)
            else:
                plan.single_group_values = operator.itemgetter(*positions)
            plan.type_checks = _type_checks([tag for _, _, tag, _, _ in slots])
        return plan

    @staticmethod
    def _commands(plan: _Plan, rows: Sequence[EntityRow]) -> list[Command]:
        """One HMGET per row and group, row-major (the reply of group g of row r is at r * len(groups) + g)."""
        groups = plan.groups
        dicts = [row.fields for row in rows]
        keys = [_keys(group, dicts) for group in groups]
        if None in keys:
            _raise_first_bad_entity(groups, dicts)
        if len(groups) == 1:
            return list(zip(keys[0], repeat(groups[0].field_set)))
        field_sets = [group.field_set for group in groups]
        return [
            command
            for row_keys in zip(*keys, strict=True)
            for command in zip(row_keys, field_sets, strict=True)
        ]

    # statuses ---------------------------------------------------------------------------------------------

    def _statuses(
        self, plan: _Plan, rows: Sequence[EntityRow], replies: list[list[bytes | None]]
    ) -> tuple[list[bytes], list[int], bool]:
        """Values and statuses row-major, and whether every status is PRESENT."""
        now = self._now_ns()
        single = plan.single_group_values
        if single is not None and plan.type_checks is not None:
            # The common case, checked for all rows at once at C speed: one hash per row, every value there,
            # canonical, of its type, and no row outside its max_age.
            found = list(chain.from_iterable(map(single, replies)))
            if _all_of_type(found, len(plan.features), plan.type_checks) and not (
                plan.aged and self._any_outside(plan, rows, replies, now)
            ):
                return found, [PRESENT] * len(found), True
        n_groups = len(plan.groups)
        slots = plan.slots
        aged = plan.aged
        outside = [False] * len(plan.tables)
        values: list[bytes] = []
        statuses: list[int] = []
        add_value = values.append
        add_status = statuses.append
        time_of = self._time_of
        for r, row in enumerate(rows):
            base = r * n_groups
            if aged:
                ref = row.timestamp_ns or now
                for ti, gi, fi, max_age in aged:  # kernel.online.status.outside_max_age, inline
                    outside[ti] = ref - time_of(replies[base + gi][fi]) > max_age
            for gi, fi, tag, vt, ti in slots:
                raw = replies[base + gi][fi]
                if raw is None:
                    add_status(NOT_FOUND)
                    add_value(b"")
                elif raw.startswith(tag):  # canonical bytes of the right type
                    if outside[ti]:
                        add_status(OUTSIDE_MAX_AGE)
                        add_value(b"")
                    else:
                        add_status(PRESENT)
                        add_value(raw)
                else:
                    status = int(status_of(raw, vt, outside[ti]))
                    add_status(status)
                    add_value(raw if status == PRESENT else b"")
        return values, statuses, statuses.count(PRESENT) == len(statuses)

    def _any_outside(
        self, plan: _Plan, rows: Sequence[EntityRow], replies: list[list[bytes | None]], now: int
    ) -> bool:
        """Whether any row of any table with a max_age is older than it (single-group plans)."""
        with_reference = any(map(_timestamp_of, rows))
        times = self._times
        for _, _, fi, max_age in plan.aged:
            raw = [reply[fi] for reply in replies]
            written = list(map(times.get, raw))
            if None in written:
                written = list(map(self._time_of, raw))
            if with_reference:
                if any((row.timestamp_ns or now) - t > max_age for row, t in zip(rows, written, strict=True)):
                    return True
            elif now - min(written) > max_age:
                return True
        return False

    def _time_of(self, raw: bytes | None) -> int:
        """Unix ns of a stored `_ts:` value (absent: the epoch), decoded once per distinct value."""
        if raw is None:
            return 0
        ns = self._times.get(raw)
        if ns is None:
            ns = decode_timestamp_ns(raw)
            if len(self._times) >= MAX_CACHED_TIMESTAMPS:
                self._times.clear()
            self._times[raw] = ns
        return ns

    def _record(
        self, plan: _Plan, project: str, api: str, n_rows: int, statuses: list[int], all_present: bool
    ) -> None:
        metrics = self._metrics
        assert metrics is not None
        per_api = self._per_api.get(api)
        if per_api is None:
            per_api = self._per_api[api] = (metrics.entity_rows.labels(api), metrics.features.labels(api))
        per_api[0].observe(n_rows)
        per_api[1].observe(len(plan.features))
        if all_present or (NOT_FOUND not in statuses and OUTSIDE_MAX_AGE not in statuses):
            return
        n_features = len(plan.features)
        not_found: dict[str, int] = {}
        outside: dict[str, int] = {}
        for i, status in enumerate(statuses):
            if status == NOT_FOUND:
                table = plan.features[i % n_features].table
                not_found[table] = not_found.get(table, 0) + 1
            elif status == OUTSIDE_MAX_AGE:
                table = plan.features[i % n_features].table
                outside[table] = outside.get(table, 0) + 1
        for table, n in not_found.items():
            metrics.not_found.labels(project, table).inc(n)
        for table, n in outside.items():
            metrics.outside_max_age.labels(project, table).inc(n)


def _tag_range(tag: bytes) -> tuple[bytes, bytes] | None:
    """(tag, the first bytes after every string that starts with tag): v.startswith(tag) exactly when
    tag <= v < end. None when the tag ends in 0xff (no such end of the same length)."""
    if not tag or tag[-1] == 0xFF:
        return None
    return tag, tag[:-1] + bytes([tag[-1] + 1])


def _type_checks(tags: list[bytes]) -> list[tuple[list[int] | None, bytes, bytes]] | None:
    """The checks of _all_of_type for features of these expected tags (None: no fast check possible)."""
    by_tag: dict[bytes, list[int]] = {}
    for f, tag in enumerate(tags):
        by_tag.setdefault(tag, []).append(f)
    checks: list[tuple[list[int] | None, bytes, bytes]] = []
    for tag, features in by_tag.items():
        bounds = _tag_range(tag)
        if bounds is None:
            return None
        checks.append((None if len(by_tag) == 1 else features, *bounds))
    return checks


def _all_of_type(
    values: list[bytes | None], n_features: int, checks: list[tuple[list[int] | None, bytes, bytes]]
) -> bool:
    """Whether every value (row-major, n_features per row) is present and starts with its feature's tag;
    two C-speed passes (min, max) per column instead of a startswith call per value."""
    try:
        for features, lowest, highest in checks:
            columns = [values] if features is None else [values[f::n_features] for f in features]
            for column in columns:
                if min(column) < lowest or max(column) >= highest:
                    return False
    except TypeError:  # a None (absent) cannot be compared with bytes
        return False
    return True


def _keys(group: _Group, rows: Sequence[dict[str, bytes]]) -> list[bytes] | None:
    """The group's Redis key of every row (entity name → serialized Value); None when a row lacks an entity
    value or has an unset one."""
    columns = [list(map(dict.get, rows, repeat(name))) for name in group.encoder.names]
    for column in columns:
        if None in column or b"" in column:
            return None
    return list(map(group.encoder.encode, zip(*columns, strict=True)))


def _raise_first_bad_entity(groups: Sequence[_Group], rows: Sequence[dict[str, bytes]]) -> None:
    """Raise InvalidArgument for the first missing or unset entity value, row by row, group by group."""
    for r, fields in enumerate(rows):
        for group in groups:
            for name in group.encoder.names:
                value = fields.get(name)
                if not value:
                    _raise_bad_entity(r, name, value, group, sorted(fields))


def _raise_bad_entity(row: int, name: str, value: bytes | None, group: _Group, given: list[str]) -> None:
    if value is None:
        raise InvalidArgument(
            f"entity_rows[{row}] entity names",
            given,
            f"a value for entity {name!r} (feature table {group.table!r} is keyed by "
            f"{', '.join(group.encoder.names)})",
        )
    raise InvalidArgument(
        f"entity_rows[{row}].fields[{name!r}]", "an unset Value", f"a value of entity {name!r}'s type"
    )
