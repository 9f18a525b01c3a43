"""The one place where Provender errors become gRPC status codes, and where every call is measured.

Servicers raise `provender.errors.ProvenderError` subclasses; this interceptor turns each into the status
its `code` names, with its message. Anything else is a bug: it is logged with its stack trace and the caller
gets INTERNAL with a short message and no trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from provender.errors import ProvenderError
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
    """Maps errors to status codes and records per-method latency and counts."""

    def __init__(self, metrics: RpcMetrics | None = None) -> None:
        self._metrics = metrics

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method
        if method.startswith(HEALTH_PREFIX) or method.startswith(REFLECTION_PREFIX):
            return handler
        service, name = _split(method)
        inner = handler.unary_unary
        metrics = self._metrics

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return inner(request, context)
            except ProvenderError as e:
                code = status_code_of(e)
                context.abort(code, e.message)
            except NotImplementedError:
                # The generated base servicer raises this for a method the server does not implement.
                code = grpc.StatusCode.UNIMPLEMENTED
                context.abort(code, f"{service}/{name} is not implemented by this server")
            except Exception as e:
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in %s", method, extra={"rpc": method})
                context.abort(code, f"internal error in {name} ({type(e).__name__}); see the server log")
            finally:
                if metrics is not None:
                    metrics.observe(service, name, code.name, time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
