"""What one lookup may ask of Serving: at most `max_values` values (entity rows x features) per request, a response
of at most `max_response_bytes`, and at most `large_slots` large requests (more than `large_values` values) worked
on at once, so that a few big batch callers cannot take every worker from the small online ones. The limits are
Serving's flags (--max-values-per-request, ...) and docs/operations.md says how to size them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from provender.kernel.errors import InvalidArgument, ResourceExhausted
from provender.server.inline import before_blocking

LARGE_WAIT_SECONDS = 10.0  # the longest a large request waits for a slot before it is refused


class RequestLimits:
    def __init__(
        self, max_values: int, max_response_bytes: int, large_values: int = 10_000, large_slots: int = 2
    ) -> None:
        self.max_values = max_values
        self.max_response_bytes = max_response_bytes
        self.large_values = large_values
        self._large = threading.BoundedSemaphore(max(1, large_slots))

    @contextlib.contextmanager
    def admit(self, rows: int, features: int, rows_field: str) -> Iterator[None]:
        """Hold the request while it is worked on: refused when it asks for too many values, made to wait for a
        slot when it is large."""
        values = rows * features
        if values > self.max_values:
            per_batch = max(1, self.max_values // max(1, features))
            raise InvalidArgument(
                rows_field,
                f"{rows} rows x {features} features = {values} values",
                f"at most {self.max_values} values per request (--max-values-per-request): send the rows in "
                f"batches of at most {per_batch}",
            )
        if values <= self.large_values:
            yield
            return
        before_blocking()  # large: worked on a worker thread, after waiting for a slot
        if not self._large.acquire(timeout=LARGE_WAIT_SECONDS):
            raise ResourceExhausted(
                f"too many large requests at once (over {self.large_values} values each): retry, or send "
                "smaller batches"
            )
        try:
            yield
        finally:
            self._large.release()

    def check_response(self, estimated_bytes: int, rows: int) -> None:
        """Before a response is built: refuse one larger than a response may be."""
        if estimated_bytes > self.max_response_bytes:
            per_batch = max(1, rows * self.max_response_bytes // estimated_bytes // 2)
            raise ResourceExhausted(
                f"the response to these {rows} rows would be about {estimated_bytes / 2**20:.0f} MiB, over the "
                f"{self.max_response_bytes / 2**20:.0f} MiB a response may hold: send the rows in batches of at "
                f"most about {per_batch}"
            )
