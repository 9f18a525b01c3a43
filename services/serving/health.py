"""Redis health as Serving reports it: NOT_SERVING from the first failed Redis call until a PING succeeds again.

A background thread pings Redis (every `healthy_interval` seconds while healthy, every `unhealthy_interval` while
not), so Serving recovers on its own, without a restart, as soon as Redis is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from provender.kernel.errors import Unavailable

log = logging.getLogger(__name__)


class RedisHealth:
    def __init__(
        self,
        ping: Callable[[], None],
        on_change: Callable[[bool], None],
        healthy_interval: float = 1.0,
        unhealthy_interval: float = 0.05,
    ) -> None:
        self._ping = ping
        self._on_change = on_change
        self._healthy_interval = healthy_interval
        self._unhealthy_interval = unhealthy_interval
        self._healthy = True
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def healthy(self) -> bool:
        return self._healthy

    def start(self) -> RedisHealth:
        self.check()
        self._thread = threading.Thread(target=self._run, name="redis-health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def report_failure(self) -> None:
        """A request just failed on Redis: go NOT_SERVING now and start probing for the way back."""
        self._set(False)
        self._wake.set()

    def check(self) -> bool:
        try:
            self._ping()
        except Unavailable as e:
            if self._healthy:
                log.warning("Redis is unavailable: %s", e)
            self._set(False)
            return False
        self._set(True)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._healthy_interval if self._healthy else self._unhealthy_interval)
            self._wake.clear()
            if not self._stop.is_set():
                self.check()

    def _set(self, healthy: bool) -> None:
        with self._lock:
            if healthy == self._healthy:
                return
            self._healthy = healthy
            self._on_change(healthy)  # under the lock, so that the last change is the one reported
        if healthy:
            log.info("Redis is available again")
