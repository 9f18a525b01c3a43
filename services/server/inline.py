"""Calls that run on the server's event loop (a server may run a method's small requests there: no thread hop, the
cost of a call as on grpc's thread-pool server) and how they leave it: code about to wait on anything but the
fast store (a call to another service, a lock another thread may hold for long, a wait for capacity) calls
`before_blocking()` first. On the loop, that raises Offload, and the interceptor runs the call again, from the
start, on a worker thread; elsewhere it does nothing. So the loop, which also answers health checks and receives
every request, is never held by a slow wait."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_on_loop: ContextVar[bool] = ContextVar("provender_on_loop", default=False)


class Offload(BaseException):
    """Raised by before_blocking() on the event loop; caught by the interceptor, which moves the call."""


def before_blocking() -> None:
    if _on_loop.get():
        raise Offload


@contextlib.contextmanager
def on_loop() -> Iterator[None]:
    """Mark the work done inside as running on the event loop."""
    token = _on_loop.set(True)
    try:
        yield
    finally:
        _on_loop.reset(token)
