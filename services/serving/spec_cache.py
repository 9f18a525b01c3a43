"""Feature table specs cached from Core, so that Core is never on the request path of a known table.

A background thread reloads every table of every project every `refresh_seconds`, and sooner when the source has a
revision (Core's registry revision, polled every `poll_seconds`) that changed: a new table, a changed max_age or a
deleted table reaches lookups within about `poll_seconds` plus one reload. A table the cache does not
know is looked up in Core once; if Core does not know it either, the miss itself is cached for
`miss_ttl_seconds`, so a client asking again and again for a wrong name does not reach Core each time. The same
holds for a feature missing from a known table (it may have been added since the last reload). Cached misses are
answered without waiting for another lookup in progress, and at most `max_misses` are kept (the oldest go first):
a flood of made-up names costs Core one call each and Serving a bounded amount of memory. Names that no table can
have never get this far (provender.serving.lookup refuses them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from provender.kernel.errors import NotFound, Unavailable
from provender.server.inline import before_blocking
from provender.serving.specs import ServingTable

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (project, table)


class SpecSource(Protocol):
    """Where specs come from (Core over gRPC in production)."""

    def list_tables(self) -> list[ServingTable]:
        """Every table of every project; raises provender.kernel.errors.Unavailable when the source is unreachable."""
        ...

    def get_table(self, project: str, name: str) -> ServingTable | None:
        """One table, or None when it does not exist; raises Unavailable when the source is unreachable."""
        ...

    def describe(self) -> str: ...

    def revision(self) -> int | None:
        """A number that changes whenever a table changes; None when the source has none (then only the periodic
        reload sees changes)."""
        ...


def _listed(names: list[str], most: int = 20) -> str:
    """Names for a message: the first `most`, and how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


class SpecCache:
    def __init__(
        self,
        source: SpecSource,
        refresh_seconds: float = 10.0,
        miss_ttl_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_misses: int = 10_000,
        poll_seconds: float = 0.0,
    ) -> None:
        """`poll_seconds`: how often the source's revision is read (0: never; only the periodic reload)."""
        self._source = source
        self._refresh_seconds = refresh_seconds
        self._miss_ttl = refresh_seconds if miss_ttl_seconds is None else miss_ttl_seconds
        self._clock = clock
        self._tables: dict[Key, ServingTable] = {}
        self._misses: OrderedDict[Key, float] = (
            OrderedDict()
        )  # key -> when the cached miss expires, oldest first
        self._max_misses = max_misses
        self._poll_seconds = poll_seconds
        self._revision: int | None = None
        self._refetched: dict[Key, float] = {}  # key -> when a missing feature made us fetch it last
        self._lookup_lock = threading.Lock()
        self._refreshed_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> SpecCache:
        """Load once (a failure is logged, not raised: Serving may start before Core) and keep reloading."""
        self._try_refresh()
        self._thread = threading.Thread(target=self._run, name="spec-cache-refresh", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        polling = self._poll_seconds > 0 and getattr(self._source, "revision", None) is not None
        wait = min(self._poll_seconds, self._refresh_seconds) if polling else self._refresh_seconds
        last = self._clock()
        while not self._stop.wait(wait):
            revision = self._read_revision() if polling else None
            changed = revision is not None and revision != self._revision
            due = changed or self._clock() - last >= self._refresh_seconds
            if due and self._try_refresh(revision):
                last = self._clock()

    def _read_revision(self) -> int | None:
        try:
            return self._source.revision()
        except Unavailable:
            return None  # the periodic reload says why, if Core stays away
        except Exception:
            log.exception("error while reading the registry's revision")
            return None

    def _try_refresh(self, revision: int | None = None) -> bool:
        try:
            self.refresh()
        except Unavailable as e:
            log.warning("cannot reload feature table specs: %s", e)
            return False
        except Exception:
            log.exception("error while reloading feature table specs")
            return False
        if revision is not None:
            self._revision = revision  # read before the reload: a write after it is seen at the next poll
        return True

    def refresh(self) -> None:
        """Reload every table now."""
        tables = {(t.project, t.name): t for t in self._source.list_tables()}
        self._tables = tables
        self._refreshed_at = self._clock()

    # reads -----------------------------------------------------------------------------------------------

    def age_seconds(self) -> float:
        """Seconds since the last successful full reload (-1 before the first one)."""
        return -1.0 if self._refreshed_at is None else self._clock() - self._refreshed_at

    def __len__(self) -> int:
        return len(self._tables)

    def table(self, project: str, name: str) -> ServingTable:
        """The spec of a table; looks it up in Core only when the cache has never seen it."""
        key = (project, name)
        spec = self._tables.get(key)
        if spec is not None:
            return spec
        return self._lookup(key)

    def is_current(self, spec: ServingTable) -> bool:
        """Whether `spec` is still the cached spec of its table (reloads replace them)."""
        return self._tables.get((spec.project, spec.name)) is spec

    def table_with_feature(self, project: str, name: str, feature: str) -> ServingTable:
        """The spec of a table that must have `feature`: fetches the table again (once per miss TTL) when the
        cached spec lacks it; NotFound names the feature and the features the table has."""
        spec = self.table(project, name)
        if feature in spec.features:
            return spec
        key = (project, name)
        now = self._clock()
        before_blocking()  # the lock may be held by a call to Core
        with self._lookup_lock:
            spec = self._tables.get(key, spec)
            if feature not in spec.features and self._refetched.get(key, float("-inf")) <= now:
                self._refetched[key] = now + self._miss_ttl
                fresh = self._fetch(key)
                if fresh is not None:
                    self._tables[key] = spec = fresh
        if feature in spec.features:
            return spec
        raise NotFound(
            "feature",
            f"{name}:{feature}",
            project,
            hint=f"feature table {name!r} has {_listed(sorted(spec.features)) or 'no features'}",
        )

    def _lookup(self, key: Key) -> ServingTable:
        project, name = key
        until = self._misses.get(key)
        if until is not None and until > self._clock():  # a known miss: no lock, no call
            raise NotFound("feature table", name, project)
        before_blocking()  # a call to Core, or a lock held by one
        with self._lookup_lock:
            spec = self._tables.get(key)
            if spec is not None:
                return spec
            until = self._misses.get(key)
            if until is None or until <= self._clock():
                spec = self._fetch(key)
                if spec is not None:
                    self._tables[key] = spec
                    self._misses.pop(key, None)
                    return spec
                self._misses[key] = self._clock() + self._miss_ttl
                self._misses.move_to_end(key)
                while len(self._misses) > self._max_misses:
                    self._misses.popitem(last=False)
        raise NotFound("feature table", name, project)

    def _fetch(self, key: Key) -> ServingTable | None:
        project, name = key
        try:
            return self._source.get_table(project, name)
        except Unavailable as e:
            raise Unavailable(
                f"feature table {name!r} of project {project!r} is not in Serving's cache and Core at "
                f"{self._source.describe()} cannot be reached: {e}"
            ) from e
