"""Assembling Serving: spec cache (from Core), Redis store and its health, lookup, servicers, gRPC server."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry

from provender.kernel import __version__
from provender.kernel.redis_url import parse_redis_url
from provender.server.authn import AuthSettings
from provender.server.metrics import RpcMetrics
from provender.server.runner import MAX_MESSAGE_BYTES, FrontDoorSettings, RunningServer, start_server
from provender.server.settings import setting
from provender.server.tls import TlsSettings, channel_credentials
from provender.serving.access import ServingAccess
from provender.serving.core_source import CoreSpecSource, TokenFile
from provender.serving.health import RedisHealth
from provender.serving.limits import RequestLimits
from provender.serving.lookup import OnlineLookup
from provender.serving.metrics import ServingMetrics
from provender.serving.redis_store import RedisStore
from provender.serving.servicer import (
    LOOKUP_METHODS,
    ServingServicer,
    columnar_registration,
    serving_registration,
)
from provender.serving.spec_cache import SpecCache, SpecSource

log = logging.getLogger(__name__)


@dataclass
class ServingSettings(TlsSettings, AuthSettings, FrontDoorSettings):
    """Every setting of Serving, declared once: the field is the flag, the PROVENDER_* variable and the help."""

    redis_url: str = setting(
        "redis://localhost:6379", flag="--redis-url", env="REDIS_URL",
        help="the online store: redis://[user:password@]host:port[/db], rediss://... for TLS, or a Redis Cluster "
        "seed list host:port,host:port",
    )  # fmt: skip
    core_url: str = setting(
        "localhost:6565", flag="--core-url", env="CORE_URL", help="Core's gRPC address, host:port"
    )
    core_tls: bool = setting(
        False,
        flag="--core-tls",
        env="CORE_TLS",
        group="tls",
        help="call Core over TLS, trusting the system's CAs (or --core-tls-ca); presents --tls-cert and --tls-key "
        "when given, for a Core that asks for client certificates",
    )
    core_tls_ca: str = setting(
        "",
        flag="--core-tls-ca",
        env="CORE_TLS_CA",
        group="tls",
        help="call Core over TLS, trusting this CA (PEM)",
    )
    core_token_file: str = setting(
        "",
        flag="--core-token-file",
        env="CORE_TOKEN_FILE",
        group="auth",
        help="a file holding the bearer token Serving presents to Core (re-read when it changes), for a Core with "
        "authentication on",
    )
    port: int = setting(6566, flag="--port", env="SERVING_PORT", help="gRPC port")
    host: str = setting("0.0.0.0", flag="--host", env="SERVING_HOST", help="address to listen on")
    metrics_port: int = setting(
        0,
        flag="--metrics-port",
        env="METRICS_PORT",
        help="serve Prometheus /metrics on this HTTP port, on the --host address; 0: off",
    )
    spec_refresh_seconds: float = setting(
        10.0, flag="--spec-refresh-seconds", env="SPEC_REFRESH_SECONDS",
        help="how often every feature table spec is reloaded from Core (changes arrive sooner: --spec-poll-seconds)",
    )  # fmt: skip
    spec_poll_seconds: float = setting(
        0.5,
        flag="--spec-poll-seconds",
        env="SPEC_POLL_SECONDS",
        help="how often Core's registry revision is read; a change reloads the specs at once (0: only the periodic "
        "reload)",
    )
    redis_timeout_ms: float = setting(
        500.0, flag="--redis-timeout-ms", env="REDIS_TIMEOUT_MS", help="longest wait for a Redis reply"
    )
    auth_refresh_seconds: float = setting(
        5.0,
        flag="--auth-refresh-seconds",
        env="AUTH_REFRESH_SECONDS",
        group="auth",
        help="how often the access bindings are copied from Core (a grant or revoke reaches lookups within this)",
    )
    max_workers: int = setting(16, flag="--workers", env="SERVING_WORKERS", help="gRPC worker threads")
    inline_request_bytes: int = setting(
        16384,
        flag="--inline-request-bytes",
        env="INLINE_REQUEST_BYTES",
        group="limits",
        help="lookups of at most this many bytes run on the server's event loop while Redis is healthy (no thread "
        "hop); larger ones, and any that would wait on Core, on --workers threads. 0: all on worker threads",
    )
    max_values_per_request: int = setting(
        500_000,
        flag="--max-values-per-request",
        env="MAX_VALUES_PER_REQUEST",
        group="limits",
        help="entity rows x features one lookup may ask for; larger requests are refused with the batch size to use",
    )
    large_request_values: int = setting(
        10_000,
        flag="--large-request-values",
        env="LARGE_REQUEST_VALUES",
        group="limits",
        help="a lookup of more values than this is large: only --large-request-slots of them are worked on at once",
    )
    large_request_slots: int = setting(
        2,
        flag="--large-request-slots",
        env="LARGE_REQUEST_SLOTS",
        group="limits",
        help="large lookups worked on at once (the other workers stay free for small ones)",
    )
    log_level: str = setting(
        "INFO", flag="--log-level", env="LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR"
    )
    redis_connect_timeout: float = 0.05  # seconds; not a flag


@dataclass
class ServingApp:
    running: RunningServer
    specs: SpecCache
    store: RedisStore
    health: RedisHealth
    lookup: OnlineLookup
    metrics: ServingMetrics
    registry: CollectorRegistry

    @property
    def port(self) -> int:
        return self.running.port

    def stop(self, grace: float = 5.0) -> None:
        self.running.stop(grace)


def start_serving(
    settings: ServingSettings,
    registry: CollectorRegistry = REGISTRY,
    spec_source: SpecSource | None = None,
) -> ServingApp:
    """Start Serving; `registry` takes the Prometheus collectors (one registry per server in a process),
    `spec_source` replaces Core as the source of feature table specs."""
    target = parse_redis_url(settings.redis_url)
    metrics = ServingMetrics(registry)
    store = RedisStore(
        target,
        connect_timeout=settings.redis_connect_timeout,
        timeout=settings.redis_timeout_ms / 1000.0,
        on_error=lambda kind: metrics.redis_errors.labels(kind).inc(),
    )
    tls = settings.server_tls()  # checked before anything starts
    core_credentials = (
        channel_credentials(settings.core_tls_ca, settings.tls_cert, settings.tls_key)
        if settings.core_tls or settings.core_tls_ca
        else None
    )
    authenticator = settings.authenticator()
    token = TokenFile(settings.core_token_file) if settings.core_token_file else None
    core = CoreSpecSource(settings.core_url, credentials=core_credentials, token=token)
    source = spec_source if spec_source is not None else core
    specs = SpecCache(
        source, refresh_seconds=settings.spec_refresh_seconds, poll_seconds=settings.spec_poll_seconds
    )
    metrics.watch_spec_cache(specs.age_seconds, specs.__len__)
    health_state: dict[str, RunningServer] = {}

    def on_health(healthy: bool) -> None:
        metrics.redis_up.set(1 if healthy else 0)
        if running := health_state.get("server"):
            running.set_serving(healthy)

    health = RedisHealth(store.ping, on_health)
    lookup = OnlineLookup(specs, store, metrics, on_redis_failure=health.report_failure)
    access = (
        ServingAccess(core.list_access_bindings, settings.auth_refresh_seconds).start()
        if authenticator is not None
        else None
    )
    limits = RequestLimits(
        settings.max_values_per_request,
        MAX_MESSAGE_BYTES,
        large_values=settings.large_request_values,
        large_slots=settings.large_request_slots,
    )
    servicer = (
        ServingServicer(lookup, __version__, limits, require_reader=access.require_reader)
        if access is not None
        else ServingServicer(lookup, __version__, limits)
    )

    def small(request: bytes) -> bool:
        return len(request) <= settings.inline_request_bytes and health.healthy

    running = start_server(
        [serving_registration(servicer), columnar_registration(servicer)],
        port=settings.port,
        host=settings.host,
        metrics=RpcMetrics(registry),
        max_workers=settings.max_workers,
        tls=tls,
        authenticator=authenticator,
        access=access,
        limits=settings.front_door(),
        inline={method: small for method in LOOKUP_METHODS},
    )
    health_state["server"] = running
    metrics.redis_up.set(1)
    specs.start()
    health.start()
    running.set_serving(health.healthy)
    running.on_stop.extend([health.stop, specs.stop, store.close, core.close])
    if access is not None:
        running.on_stop.insert(0, access.stop)
    log.info(
        "serving listening",
        extra={
            "port": running.port,
            "redis": store.describe(),
            "core": source.describe(),
            "tables": len(specs),
            "authentication": "on" if authenticator is not None else "off",
        },
    )
    return ServingApp(running, specs, store, health, lookup, metrics, registry)
