"""The one place where Provender errors become gRPC status codes, where callers are authenticated and their
access checked, where every call is measured, where writes are audited, and where a request's body is awaited.

Servicers raise `provender.kernel.errors.ProvenderError` subclasses; this interceptor turns each into the status
its `code` names, with its message. Anything else is a bug: it is logged with its stack trace and the caller
gets INTERNAL with a short message and no trace. With an authenticator (provender.server.authn), every call
first needs a credential (UNAUTHENTICATED without one; health checks and reflection stay open unless told
otherwise), its principal is what `provender.server.principal.current()` returns while it is served, and the
server's access rules for the method (Core's and Serving's) are checked before the servicer runs. A method of the
server's audit catalogue (Core's writes) gets one JSON line on the `provender.audit` logger per call: who,
project, object, outcome.

The server is grpc's asyncio server (provender.server.runner): every unary method is received on the event loop,
within `receive_seconds` of its headers (a client that stalls gets DEADLINE_EXCEEDED and costs no thread), and
only a complete request takes a worker thread, where authentication, the access check and the servicer run
(or, for a method the server marks so, a small request runs on the loop itself: provender.server.inline).
Servicers are plain functions: they raise ProvenderError and never call `context.abort`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

import grpc

from provender.kernel.errors import DeadlineExceeded, InvalidArgument, ProvenderError
from provender.server.authn import Authenticator
from provender.server.inline import Offload, on_loop
from provender.server.metrics import RpcMetrics
from provender.server.principal import Principal, reset_current, set_current

log = logging.getLogger(__name__)
audit_log = logging.getLogger("provender.audit")

# What an audited call writes: its request -> (project, object). A server's audit catalogue maps full method
# names to one (Core's: provender.core.access.rules.CoreAccess.audited()).
AuditSubject = Callable[[Any], tuple[str, str]]
# The access check of one method: (request, principal) -> None, raising PermissionDenied (or NotFound, ...).
AccessCheck = Callable[[Any, Principal], None]
# A server's access rules: full method name -> its check (None: any authenticated caller).
AccessRules = Callable[[str], AccessCheck | None]

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIX = "/grpc.reflection."


def status_code_of(error: ProvenderError) -> grpc.StatusCode:
    return grpc.StatusCode[error.code.value]


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _cert_name(context: grpc.ServicerContext) -> str | None:
    names = context.auth_context().get("x509_common_name")
    return names[0].decode(errors="replace") if names else None


def principal(context: grpc.ServicerContext) -> str:
    """Who called, when no credential was checked: the client certificate's common name under mutual TLS, else
    the peer's address."""
    name = _cert_name(context)
    return f"cert:{name}" if name else f"peer:{context.peer()}"


class _Undecodable:
    """A request whose bytes are not its message: answered INVALID_ARGUMENT by the call, not INTERNAL by grpc."""

    def __init__(self, size: int, message: str) -> None:
        self.error = InvalidArgument("request", f"{size} bytes", f"a serialized {message}")


def _safe(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None
    owner = getattr(deserialize, "__self__", None)
    message = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request message")

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # DecodeError, or grpc's own wrapper of it
            return _Undecodable(len(data), message)

    return decode


def _authorization(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == "authorization":
            return value
    return None


def _audit(rpc: str, subject: AuditSubject, request: Any, context: Any, code: str, who: str | None) -> None:
    try:
        project, what = subject(request)
    except Exception:  # a request of an unexpected shape: still audited, without its subject
        project, what = "", ""
    audit_log.info(
        "audit",
        extra={
            "rpc": rpc,
            "principal": who or principal(context),
            "project": project,
            "object": what,
            "outcome": code,
        },
    )


_NOT_RUN = object()


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Receives, authenticates, checks, runs, maps errors to status codes and records per-method latency and
    counts.

    The wrapped handler of each method is built once and reused: grpc asks the interceptor on every call, and
    the servers' handlers do not change once they are started.
    """

    def __init__(
        self,
        executor: Executor,
        metrics: RpcMetrics | None = None,
        audit: Mapping[str, AuditSubject] | None = None,
        authenticator: Authenticator | None = None,
        access: AccessRules | None = None,
        receive_seconds: float = 10.0,
        inline: Mapping[str, Callable[[Any], bool]] | None = None,
    ) -> None:
        """`executor`: the worker threads servicers run on; `audit`: full method name -> (request -> (project,
        object)) of the calls to audit; `authenticator`: who may call at all (None: anyone); `access`: what each
        authenticated principal may do; `receive_seconds`: the longest wait for a request's body; `inline`: full
        method name -> (request -> whether to run it on the event loop), for the methods whose small requests
        run there (provender.server.inline)."""
        self._executor = executor
        self._metrics = metrics
        self._audit = dict(audit or {})
        self._auth = authenticator
        self._access = access
        self._receive_seconds = receive_seconds
        self._inline = dict(inline or {})
        self._handlers: dict[str, Any] = {}

    async def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        method = details.method
        handler = self._handlers.get(method)
        if handler is None:
            handler = await continuation(details)
            if handler is not None:  # unknown methods are not kept: clients may send any name
                handler = self._handlers[method] = self._wrap(method, handler)
        return handler

    async def _in_worker(self, work: Callable[..., Any], *args: Any) -> Any:
        """`work(*args)` on a worker thread, in a copy of this call's context variables."""
        run = contextvars.copy_context().run
        return await asyncio.get_running_loop().run_in_executor(self._executor, run, work, *args)

    def _principal(self, context: Any) -> Principal:
        assert self._auth is not None
        return self._auth.authenticate(_authorization(context), _cert_name(context))

    def _guard(self, handler: Any) -> Any:
        """A method of grpc's own (health, reflection: asyncio handlers) behind authentication alone."""
        kinds = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
        kind = next(k for k in kinds if getattr(handler, k) is not None)
        inner = getattr(handler, kind)

        async def authenticate(context: Any) -> None:
            try:
                await self._in_worker(self._principal, context)
            except ProvenderError as e:
                await context.abort(status_code_of(e), e.message)

        if inspect.isasyncgenfunction(inner):

            async def stream(request: Any, context: Any) -> Any:
                await authenticate(context)
                async for item in inner(request, context):
                    yield item

            call: Callable[..., Any] = stream
        else:

            async def call(request: Any, context: Any) -> Any:
                await authenticate(context)
                return await inner(request, context)

        make = getattr(grpc, f"{kind}_rpc_method_handler")
        return make(
            call,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, method: str, handler: Any) -> Any:
        auth = self._auth
        open_method = method.startswith(HEALTH_PREFIX) or method.startswith(REFLECTION_PREFIX)
        if open_method and (auth is None or not auth.protect_health):
            return handler
        if handler.unary_unary is None or open_method:
            return handler if auth is None else self._guard(handler)
        service, name = _split(method)
        inner = handler.unary_unary
        observe = self._metrics.for_method(service, name) if self._metrics is not None else None
        subject = self._audit.get(method)
        check = self._access(method) if self._access is not None and auth else None
        perf_counter = time.perf_counter
        ok = grpc.StatusCode.OK.name
        receive_seconds = self._receive_seconds
        in_worker = self._in_worker
        principal_of = self._principal
        runs_inline = self._inline.get(method)

        def work(request: Any, context: Any, caller: list[Principal]) -> Any:
            """On a worker thread (or the loop, for a small request of an inline method): who calls, may they, and
            the servicer itself."""
            token = None
            try:
                if auth is not None:
                    who = principal_of(context)
                    caller.append(who)
                    token = set_current(who)
                if isinstance(request, _Undecodable):
                    raise request.error
                if check is not None and caller:
                    check(request, caller[0])
                return inner(request, context)
            finally:
                if token is not None:
                    reset_current(token)

        def record(code: str, start: float, request: Any, context: Any, caller: list[Principal]) -> None:
            # Before the status is sent: a caller who has its answer sees the call counted and audited.
            if observe is not None:
                observe(code, perf_counter() - start)
            if subject is not None and request is not None:
                _audit(name, subject, request, context, code, caller[0].id if caller else None)

        async def call(requests: Any, context: Any) -> Any:
            # Registered as stream-unary so that the body is awaited here, within receive_seconds; the wire is
            # the same as a unary call's.
            start = perf_counter()
            caller: list[Principal] = []
            request: Any = None
            try:
                try:
                    async with asyncio.timeout(receive_seconds):
                        request = await context.read()
                except TimeoutError:
                    raise DeadlineExceeded(
                        f"the request did not arrive within {receive_seconds:g} s of its headers"
                    ) from None
                if request is grpc.aio.EOF:
                    raise InvalidArgument("request", "no message", f"one {name} request message")
                response = _NOT_RUN
                if runs_inline is not None and runs_inline(request):
                    try:
                        with on_loop():
                            response = work(request, context, caller)
                    except Offload:
                        caller.clear()
                if response is _NOT_RUN:
                    response = await in_worker(work, request, context, caller)
            except ProvenderError as e:
                status, message = status_code_of(e), e.message
            except NotImplementedError:
                # The generated base servicer raises this for a method the server does not implement.
                status = grpc.StatusCode.UNIMPLEMENTED
                message = f"{service}/{name} is not implemented by this server"
            except asyncio.CancelledError:  # the client went away, or its deadline passed
                record(grpc.StatusCode.CANCELLED.name, start, request, context, caller)
                raise
            except Exception as e:
                log.exception("unhandled error in %s", method, extra={"rpc": method})
                status = grpc.StatusCode.INTERNAL
                message = f"internal error in {name} ({type(e).__name__}); see the server log"
            else:
                record(ok, start, request, context, caller)
                return response
            record(status.name, start, request, context, caller)
            await context.abort(status, message)

        return grpc.stream_unary_rpc_method_handler(
            call,
            request_deserializer=_safe(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
