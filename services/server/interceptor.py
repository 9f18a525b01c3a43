"""The one place where Provender errors become gRPC status codes, where every call is measured, and where writes
are audited.

Servicers raise `provender.kernel.errors.ProvenderError` subclasses; this interceptor turns each into the status
its `code` names, with its message. Anything else is a bug: it is logged with its stack trace and the caller
gets INTERNAL with a short message and no trace. A method of the server's audit catalogue (Core's writes:
provender.core.audit) gets one JSON line on the `provender.audit` logger per call: who, project, object, outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from provender.kernel.errors import ProvenderError
from provender.server.metrics import RpcMetrics

log = logging.getLogger(__name__)
audit_log = logging.getLogger("provender.audit")

# What an audited call writes: its request -> (project, object). A server's audit catalogue maps full method
# names to one (Core's: provender.core.audit.WRITES).
AuditSubject = Callable[[Any], tuple[str, str]]

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIX = "/grpc.reflection."


def status_code_of(error: ProvenderError) -> grpc.StatusCode:
    return grpc.StatusCode[error.code.value]


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def principal(context: grpc.ServicerContext) -> str:
    """Who called: the client certificate's common name under mutual TLS, else the peer's address."""
    names = context.auth_context().get("x509_common_name")
    if names:
        return "cert:" + names[0].decode(errors="replace")
    return "peer:" + context.peer()


def _audit(rpc: str, subject: AuditSubject, request: Any, context: Any, code: str) -> None:
    try:
        project, what = subject(request)
    except Exception:  # a request of an unexpected shape: still audited, without its subject
        project, what = "", ""
    audit_log.info(
        "audit",
        extra={
            "rpc": rpc,
            "principal": principal(context),
            "project": project,
            "object": what,
            "outcome": code,
        },
    )


class ServerInterceptor(grpc.ServerInterceptor):
    """Maps errors to status codes and records per-method latency and counts.

    The wrapped handler of each method is built once and reused: grpc asks the interceptor on every call, and
    the servers' handlers do not change once they are started.
    """

    def __init__(
        self,
        metrics: RpcMetrics | None = None,
        audit: Mapping[str, AuditSubject] | None = None,
    ) -> None:
        """`audit`: full method name -> (request -> (project, object)) of the calls to audit."""
        self._metrics = metrics
        self._audit = dict(audit or {})
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
        subject = self._audit.get(method)
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
                if subject is not None:
                    _audit(name, subject, request, context, code)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
