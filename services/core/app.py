"""Assembling Core: database, migrations, registry, servicers and the gRPC server."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from provender.core import core_servicer
from provender.core.registry.database import Database, make_engine, migrate
from provender.core.registry.service import Registry
from provender.server.metrics import RpcMetrics
from provender.server.runner import RunningServer, start_server

log = logging.getLogger(__name__)


@dataclass
class CoreSettings:
    postgres_url: str
    port: int = 6565
    host: str = "0.0.0.0"
    migrate: bool = True


_METRICS: RpcMetrics | None = None


def _metrics() -> RpcMetrics:
    # prometheus_client's registry is process-wide: create the collectors once per process.
    global _METRICS
    if _METRICS is None:
        _METRICS = RpcMetrics()
    return _METRICS


def start_core(settings: CoreSettings) -> RunningServer:
    """Migrate the database (unless told not to) and start serving; returns the running server."""
    engine = make_engine(settings.postgres_url)
    if settings.migrate:
        revision = migrate(engine)
        log.info("registry schema at revision %s", revision, extra={"revision": revision})
    registry = Registry(Database(engine))
    running = start_server(
        [core_servicer.register(core_servicer.CoreServicer(registry))],
        port=settings.port,
        host=settings.host,
        metrics=_metrics(),
    )
    running.on_stop.append(engine.dispose)
    log.info("core listening", extra={"port": running.port})
    return running
