"""The one place where Provender errors become gRPC status codes, and where every call is measured.

Servicers raise `provender.kernel.errors.ProvenderError` subclasses; this interceptor turns each into the status
its `code` names, with its message. Anything else is a bug: it is logged with its stack trace and the caller
gets INTERNAL with a short message and no trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from provender.kernel.errors import ProvenderError
from provender.server.metrics import RpcMetrics

log = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIX = "/grpc.reflection."


def status_code_of(error: ProvenderError) -> grpc.StatusCode:
    return grpc.StatusCode[error.code.value]


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


class ServerInterceptor(grpc.ServerInterceptor):
    """Maps errors to status codes and records per-method latency and counts.

    The wrapped handler of each method is built once and reused: grpc asks the interceptor on every call, and
    the servers' handlers do not change once they are started.
    """

    def __init__(self, metrics: RpcMetrics | None = None) -> None:
        self._metrics = metrics
        self._handlers: dict[str, Any] = {}

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        method = details.method
        handler = self._handlers.get(method)
        if handler is None:
            handler = continuation(details)
            if handler is not None:  # unknown methods are not kept: clients may send any name
                handler = self._handlers[method] = self._wrap(method, handler)
        return handler

    def _wrap(self, method: str, handler: Any) -> Any:
        if handler.unary_unary is None:
            return handler
        if method.startswith(HEALTH_PREFIX) or method.startswith(REFLECTION_PREFIX):
            return handler
        service, name = _split(method)
        inner = handler.unary_unary
        observe = self._metrics.for_method(service, name) if self._metrics is not None else None
        perf_counter = time.perf_counter
        ok = grpc.StatusCode.OK.name

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            start = perf_counter()
            code = ok
            try:
                return inner(request, context)
            except ProvenderError as e:
                status = status_code_of(e)
                code = status.name
                context.abort(status, e.message)
            except NotImplementedError:
                # The generated base servicer raises this for a method the server does not implement.
                code = grpc.StatusCode.UNIMPLEMENTED.name
                context.abort(
                    grpc.StatusCode.UNIMPLEMENTED, f"{service}/{name} is not implemented by this server"
                )
            except Exception as e:
                code = grpc.StatusCode.INTERNAL.name
                log.exception("unhandled error in %s", method, extra={"rpc": method})
                context.abort(
                    grpc.StatusCode.INTERNAL,
                    f"internal error in {name} ({type(e).__name__}); see the server log",
                )
            finally:
                if observe is not None:
                    observe(code, perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
