"""The spec cache: known tables never reach the source, unknown ones reach it once per miss TTL."""

from __future__ import annotations

import pytest

from provender.kernel.errors import NotFound, Unavailable
from provender.kernel.value_types import ValueType
from provender.serving.spec_cache import SpecCache
from provender.serving.specs import ServingTable


def spec(name: str, project: str = "default", **features: ValueType) -> ServingTable:
    return ServingTable(project, name, ("driver_id",), features or {"f": ValueType.FLOAT}, 0)


class InMemorySource:
    """Tables in a dict, counting calls, optionally unreachable."""

    def __init__(self, *tables: ServingTable) -> None:
        self.tables = {(t.project, t.name): t for t in tables}
        self.gets: list[tuple[str, str]] = []
        self.lists = 0
        self.down = False

    def list_tables(self) -> list[ServingTable]:
        if self.down:
            raise Unavailable("connection refused")
        self.lists += 1
        return list(self.tables.values())

    def get_table(self, project: str, name: str) -> ServingTable | None:
        if self.down:
            raise Unavailable("connection refused")
        self.gets.append((project, name))
        return self.tables.get((project, name))

    def describe(self) -> str:
        return "core.test:6565"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_known_tables_are_served_from_the_cache() -> None:
    source = InMemorySource(spec("a"), spec("a", project="p2"))
    cache = SpecCache(source, refresh_seconds=3600)
    cache.refresh()
    for _ in range(3):
        assert cache.table("default", "a").project == "default"
        assert cache.table("p2", "a").project == "p2"
    assert source.gets == [] and source.lists == 1


def test_unknown_table_is_looked_up_once_per_miss_ttl() -> None:
    clock = Clock()
    source = InMemorySource()
    cache = SpecCache(source, refresh_seconds=3600, miss_ttl_seconds=5, clock=clock)
    for _ in range(3):
        with pytest.raises(NotFound, match="feature table 'x' does not exist in project 'default'"):
            cache.table("default", "x")
    assert source.gets == [("default", "x")]
    source.tables[("default", "x")] = spec("x")
    clock.now += 6
    assert cache.table("default", "x").name == "x"
    assert cache.table("default", "x").name == "x"
    assert source.gets == [("default", "x")] * 2


def test_missing_feature_refetches_the_table_once() -> None:
    clock = Clock()
    source = InMemorySource(spec("a", f=ValueType.FLOAT))
    cache = SpecCache(source, refresh_seconds=3600, miss_ttl_seconds=5, clock=clock)
    cache.refresh()
    with pytest.raises(NotFound, match=r"feature 'a:g' .*has f"):
        cache.table_with_feature("default", "a", "g")
    with pytest.raises(NotFound):
        cache.table_with_feature("default", "a", "g")
    assert source.gets == [("default", "a")]
    source.tables[("default", "a")] = spec("a", f=ValueType.FLOAT, g=ValueType.INT64)
    clock.now += 6
    assert cache.table_with_feature("default", "a", "g").features["g"] is ValueType.INT64


def test_source_down_keeps_known_tables_and_names_core_for_unknown_ones() -> None:
    source = InMemorySource(spec("a"))
    cache = SpecCache(source, refresh_seconds=3600)
    cache.refresh()
    source.down = True
    cache._try_refresh()  # a failed reload keeps what is cached
    assert cache.table("default", "a").name == "a"
    with pytest.raises(Unavailable, match=r"Core at core\.test:6565"):
        cache.table("default", "b")


def test_age_is_negative_before_the_first_reload() -> None:
    clock = Clock()
    cache = SpecCache(InMemorySource(spec("a")), clock=clock)
    assert cache.age_seconds() == -1
    cache.refresh()
    clock.now += 2.5
    assert cache.age_seconds() == 2.5


def test_a_flood_of_unknown_names_costs_one_call_each_and_bounded_memory() -> None:
    """Issue 15: 2,000 new long names a round raised Serving's memory by ~170 MB a round, never returned."""
    clock = Clock()
    source = InMemorySource()
    cache = SpecCache(source, refresh_seconds=3600, miss_ttl_seconds=60, clock=clock, max_misses=1_000)
    names = [f"t{i}_" + "x" * 200 for i in range(5_000)]
    for name in names:
        with pytest.raises(NotFound):
            cache.table("default", name)
    assert len(source.gets) == 5_000 and len(cache._misses) == 1_000  # the newest thousand are kept
    for name in names[-1_000:]:  # asked again within the TTL: answered from the cache
        with pytest.raises(NotFound):
            cache.table("default", name)
    assert len(source.gets) == 5_000
    with pytest.raises(NotFound):  # an evicted one is asked once more
        cache.table("default", names[0])
    assert len(source.gets) == 5_001 and len(cache._misses) == 1_000


def test_concurrent_lookups_of_one_unknown_name_cost_core_one_call() -> None:
    import threading

    class SlowSource(InMemorySource):
        def get_table(self, project: str, name: str) -> ServingTable | None:
            import time

            time.sleep(0.05)
            return super().get_table(project, name)

    source = SlowSource()
    cache = SpecCache(source, refresh_seconds=3600, miss_ttl_seconds=60)
    errors: list[Exception] = []

    def ask() -> None:
        try:
            cache.table("default", "ghost")
        except NotFound as e:
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 32 and source.gets == [("default", "ghost")]
