"""Serving's access rules: a lookup needs the reader role in its project.

A lookup's request reaches the servicer as bytes (it parses them itself, on the hot path), so its project is
checked there, once parsed (`ServingAccess.require_reader`); the interceptor's rule for lookups is then only
that the caller is authenticated.

The bindings are Core's (provender.core.access), copied here and refreshed in the background every few seconds
(`--auth-refresh-seconds`), so a lookup never waits for Core: its check is a few dictionary lookups. Until the
first copy arrives lookups are refused UNAVAILABLE; when Core cannot be reached later, the last copy stays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from provender.kernel.errors import PermissionDenied, Unavailable
from provender.server.access import AccessPolicy, Binding, Role
from provender.server.interceptor import AccessCheck
from provender.server.principal import Principal, current
from provender.serving.specs import DEFAULT_PROJECT

log = logging.getLogger(__name__)

LOOKUPS = (
    "/feast.serving.ServingService/GetOnlineFeaturesV2",
    "/provender.serving.ColumnarServingService/GetOnlineFeaturesColumnar",
)
OPEN = ("/feast.serving.ServingService/GetFeastServingInfo",)


class ServingAccess:
    def __init__(self, bindings: Callable[[], list[Binding]], refresh_seconds: float = 5.0) -> None:
        """`bindings`: every binding, from Core (raises Unavailable when Core cannot answer)."""
        self._bindings = bindings
        self._refresh_seconds = refresh_seconds
        self._policy: AccessPolicy | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ServingAccess:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="access-refresh", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_seconds):
            self.refresh()

    def refresh(self) -> bool:
        try:
            self._policy = AccessPolicy(self._bindings())
            return True
        except Unavailable as e:
            log.warning("cannot reload access bindings from Core; keeping the last ones: %s", e)
        except Exception:
            log.exception("error while reloading access bindings")
        return False

    def policy(self) -> AccessPolicy:
        policy = self._policy
        if policy is None:
            raise Unavailable("Serving has not loaded the access bindings from Core yet; try again shortly")
        return policy

    def require_reader(self, project: str) -> None:
        """PermissionDenied unless the caller being served may read `project`."""
        principal = current()
        if principal is not None:
            self.policy().require(principal, project or DEFAULT_PROJECT, Role.READER)

    def __call__(self, method: str) -> AccessCheck | None:
        """The check of one method (provender.server.interceptor.AccessRules)."""
        if method in OPEN or method in LOOKUPS:  # a lookup's project: require_reader, from the servicer
            return None

        def refuse(request: Any, principal: Principal) -> None:
            raise PermissionDenied(f"{method} has no access rule in Serving; nobody may call it")

        return refuse
