"""Building, running and stopping a gRPC server: health, reflection, interceptor, limits, graceful SIGTERM.

The server is grpc's asyncio server on an event loop of its own thread. Requests are received on the loop (a
client that stalls costs a few kilobytes, not a thread) and run on `max_workers` threads once complete (or on
the loop, for the small requests of methods given as `inline`);
health and reflection answer on the loop, so they answer while every worker is busy. The front door's limits
(FrontDoorSettings) bound what one client can hold: streams per connection, connections, the time to send a
request and to finish the TLS handshake.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health as health_sync
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from provender.server.authn import Authenticator
from provender.server.interceptor import AccessRules, AuditSubject, ServerInterceptor
from provender.server.metrics import RpcMetrics
from provender.server.settings import setting
from provender.server.tls import ServerTls

log = logging.getLogger(__name__)

# A registration adds one servicer to the server and returns the full service name it registered.
Registration = Callable[[grpc.Server], str]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass
class FrontDoorSettings:
    """What one client may hold of a server (docs/operations.md, "Limits")."""

    request_receive_seconds: float = setting(
        10.0,
        flag="--request-receive-seconds",
        env="REQUEST_RECEIVE_SECONDS",
        group="limits",
        help="longest wait for a request once its headers arrived; a client that stalls longer gets "
        "DEADLINE_EXCEEDED and its stream is closed",
    )
    max_streams_per_connection: int = setting(
        100,
        flag="--max-streams-per-connection",
        env="MAX_STREAMS_PER_CONNECTION",
        group="limits",
        help="concurrent calls one HTTP/2 connection may have open (further calls wait in the client)",
    )
    max_connections: int = setting(
        4096,
        flag="--max-connections",
        env="MAX_CONNECTIONS",
        group="limits",
        help="open client connections the server accepts; more are refused until some close",
    )
    handshake_seconds: float = setting(
        10.0,
        flag="--handshake-seconds",
        env="HANDSHAKE_SECONDS",
        group="limits",
        help="longest time a new connection may take to finish its HTTP/2 (and TLS) handshake",
    )

    def front_door(self) -> FrontDoorSettings:
        """These limits alone (the settings of a server are a subclass)."""
        return FrontDoorSettings(
            self.request_receive_seconds,
            self.max_streams_per_connection,
            self.max_connections,
            self.handshake_seconds,
        )


class _LoopThread:
    """An asyncio event loop running on a daemon thread of its own."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Any, timeout: float | None = None) -> Any:
        """Run `coroutine` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def soon(self, coroutine: Any, timeout: float | None = None) -> None:
        """Run `coroutine` on the loop: waited for from another thread, only scheduled from the loop's own (a call
        running there cannot wait for the loop)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        if threading.current_thread() is not self._thread:
            future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health_sync.aio.HealthServicer
    services: list[str]
    _loop: _LoopThread
    _executor: futures.ThreadPoolExecutor
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )

        async def set_all() -> None:
            for name in ["", *self.services]:
                await self.health.set(name, status)

        if not self._stopped.is_set():
            self._loop.soon(set_all(), timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        """Stop taking calls, let running calls finish for up to `grace` seconds, then run the stop hooks."""
        if self._stopped.is_set():
            return
        self.set_serving(False)
        self._stopped.set()
        try:
            self._loop.run(self.server.stop(grace), timeout=grace + 10)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._loop.close()
        for hook in self.on_stop:
            try:
                hook()
            except Exception:
                log.exception("error while stopping")

    def wait(self) -> None:
        self._stopped.wait()


def _options(limits: FrontDoorSettings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
        ("grpc.max_concurrent_streams", limits.max_streams_per_connection),
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
        ("grpc.server_handshake_timeout_ms", int(limits.handshake_seconds * 1000)),
    ]


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
    limits: FrontDoorSettings | None = None,
    inline: Mapping[str, Callable[[Any], bool]] | None = None,
) -> RunningServer:
    """Start a server with the given servicers plus grpc.health.v1 and server reflection; TLS with `tls`;
    callers authenticated by `authenticator` and checked by `access` (provender.server.interceptor); what one
    client may hold bounded by `limits`; `inline`: the methods whose small requests run on the event loop
    (provender.server.inline)."""
    limits = limits or FrontDoorSettings()
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc")
    interceptor = ServerInterceptor(
        executor,
        metrics,
        audit,
        authenticator,
        access,
        receive_seconds=limits.request_receive_seconds,
        inline=inline,
    )
    loop = _LoopThread("grpc-loop")

    async def build() -> tuple[grpc.aio.Server, health_sync.aio.HealthServicer, list[str], int]:
        server = grpc.aio.server(
            migration_thread_pool=executor, interceptors=[interceptor], options=_options(limits)
        )
        services = [register(server) for register in registrations]
        health_servicer = health_sync.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            server,
        )
        try:
            address = f"{host}:{port}"
            bound = (
                server.add_secure_port(address, tls.credentials())
                if tls
                else server.add_insecure_port(address)
            )
        except RuntimeError:  # newer grpcio raises where older ones returned 0
            bound = 0
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port}: the port is in use or the address is not local")
        await server.start()
        return server, health_servicer, services, bound

    try:
        server, health_servicer, services, bound = loop.run(build())
    except BaseException:
        loop.close()
        executor.shutdown(wait=False)
        raise
    running = RunningServer(server, bound, health_servicer, services, loop, executor)
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
