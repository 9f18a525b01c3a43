"""Building, running and stopping a gRPC server: health, reflection, interceptor, graceful SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from provender.server.authn import Authenticator
from provender.server.interceptor import AccessRules, AuditSubject, ServerInterceptor
from provender.server.metrics import RpcMetrics
from provender.server.tls import ServerTls

log = logging.getLogger(__name__)

# A registration adds one servicer to the server and returns the full service name it registered.
Registration = Callable[[grpc.Server], str]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    services: list[str]
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.services]:
            self.health.set(name, status)

    def stop(self, grace: float = 10.0) -> None:
        """Stop taking calls, let running calls finish for up to `grace` seconds, then run the stop hooks."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.set_serving(False)
        self.server.stop(grace).wait()
        for hook in self.on_stop:
            try:
                hook()
            except Exception:
                log.exception("error while stopping")

    def wait(self) -> None:
        self.server.wait_for_termination()


def start_server(
    registrations: Iterable[Registration],
    port: int,
    host: str = "0.0.0.0",
    metrics: RpcMetrics | None = None,
    max_workers: int = 16,
    tls: ServerTls | None = None,
    audit: Mapping[str, AuditSubject] | None = None,
    authenticator: Authenticator | None = None,
    access: AccessRules | None = None,
) -> RunningServer:
    """Start a server with the given servicers plus grpc.health.v1 and server reflection; TLS with `tls`;
    callers authenticated by `authenticator` and checked by `access` (provender.server.interceptor)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[ServerInterceptor(metrics, audit, authenticator, access)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    services = [register(server) for register in registrations]
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    try:
        address = f"{host}:{port}"
        bound = (
            server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
        )
    except RuntimeError:  # newer grpcio raises where older ones returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}: the port is in use or the address is not local")
    server.start()
    running = RunningServer(server=server, port=bound, health=health_servicer, services=services)
    running.set_serving(True)
    return running


def run_until_signal(running: RunningServer, grace: float = 10.0) -> None:
    """Block until SIGTERM or SIGINT, then stop gracefully."""
    done = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    done.wait()
    running.stop(grace)
    log.info("stopped")
