"""Core's background work: reconciling job records with the launcher, running due schedules, and keeping one
stream job per streamed table (when stream control is on)."""

from __future__ import annotations

import logging
import threading

from provender.core.jobs.controller import JobController
from provender.core.jobs.schedules import Schedules
from provender.core.jobs.streams import StreamControl

log = logging.getLogger(__name__)


class BackgroundLoop:
    """One daemon thread that reconciles active jobs, runs due schedules and the stream control loop every
    `interval` seconds."""

    def __init__(
        self,
        controller: JobController,
        schedules: Schedules,
        interval: float = 5.0,
        streams: StreamControl | None = None,
    ) -> None:
        self.controller = controller
        self.schedules = schedules
        self.streams = streams
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobs-background", daemon=True)

    def start(self) -> BackgroundLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def tick(self) -> None:
        self.controller.reconcile_all()
        self.schedules.run_due()
        if self.streams is not None:
            self.streams.tick()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                # Postgres away, a launcher hiccup: keep going, the next tick retries.
                log.exception("background tick failed")
            self._stop.wait(self.interval)
