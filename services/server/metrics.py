"""Prometheus metrics common to every gRPC server, and the /metrics HTTP endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from provender.server.tls import ServerTls

# Buckets from 0.1 ms to 10 s: serving calls sit around a millisecond, registry writes around 10 ms.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class RpcMetrics:
    """Requests and latency per gRPC service, method and status code."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        labels = ("grpc_service", "grpc_method", "grpc_code")
        self.requests = Counter(
            "provender_grpc_requests",
            "gRPC requests handled, by service, method and status code.",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "provender_grpc_request_duration_seconds",
            "Time to handle a gRPC request, from receipt to response, by service, method and status code.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, service: str, method: str, code: str, seconds: float) -> None:
        self.requests.labels(service, method, code).inc()
        self.latency.labels(service, method, code).observe(seconds)

    def for_method(self, service: str, method: str) -> Callable[[str, float], None]:
        """`observe` for one method, `(code, seconds)`, its labelled children looked up once per code (the label
        lookup costs more than the observation on a sub-millisecond call)."""
        children: dict[str, tuple[Any, Any]] = {}

        def observe(code: str, seconds: float) -> None:
            pair = children.get(code)
            if pair is None:
                pair = children[code] = (
                    self.requests.labels(service, method, code),
                    self.latency.labels(service, method, code),
                )
            pair[0].inc()
            pair[1].observe(seconds)

        return observe


def serve_metrics(
    port: int, host: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY, tls: ServerTls | None = None
) -> None:
    """Expose /metrics over HTTP on a daemon thread (port 0 disables it); over HTTPS with `tls` (mutual TLS when
    it has a client CA)."""
    if not port:
        return
    if tls is None:
        start_http_server(port, addr=host, registry=registry)
        return
    start_http_server(
        port,
        addr=host,
        registry=registry,
        certfile=str(tls.cert),
        keyfile=str(tls.key),
        client_cafile=str(tls.client_ca) if tls.client_ca else None,
        client_auth_required=tls.client_ca is not None,
    )
