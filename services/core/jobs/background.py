"""Core's background work: reconciling job records with the launcher, running due schedules, and keeping one
stream job per streamed table (when stream control is on). Every replica runs the loop; only the leader ticks
(jobs/leader.py), and it checks it still leads before each part of a tick and before each schedule."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from provender.core.jobs.controller import JobController
from provender.core.jobs.schedules import Schedules
from provender.core.jobs.streams import StreamControl

log = logging.getLogger(__name__)


def _always() -> bool:
    return True


class BackgroundLoop:
    """One daemon thread that, while `leading()` says this replica leads, reconciles active jobs, runs due
    schedules and the stream control loop every `interval` seconds. Without `leading` it always ticks (one Core
    alone, tests)."""

    def __init__(
        self,
        controller: JobController,
        schedules: Schedules,
        interval: float = 5.0,
        streams: StreamControl | None = None,
        leading: Callable[[], bool] | None = None,
    ) -> None:
        self.controller = controller
        self.schedules = schedules
        self.streams = streams
        self.interval = interval
        self.leading = leading or _always
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobs-background", daemon=True)

    def start(self) -> BackgroundLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.interval + 5)

    def wake(self) -> None:
        """Tick now rather than at the end of the interval (a replica that just gained the lead)."""
        self._wake.set()

    def tick(self) -> bool:
        """One round of background work, each part only while this replica leads; whether it ran to the end."""
        if not self.leading():
            return False
        self.controller.reconcile_all()
        if not self.leading():
            return False
        self.schedules.run_due(leading=self.leading)
        if self.streams is not None:
            if not self.leading():
                return False
            self.streams.tick()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                # Postgres away, a launcher hiccup: keep going, the next tick retries.
                log.exception("background tick failed")
            self._wake.wait(self.interval)
            self._wake.clear()
