"""Typed errors shared by every Provender process and the SDK.

Each error carries an `ErrorCode` named like the gRPC status it becomes; the mapping to real gRPC codes lives
in one place (provender.server.interceptor), so domain code never imports grpc. Messages are for people: they
name the field, the value and what would be accepted, and never carry a stack trace.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.Enum):
    """Transport-neutral error classes; each name is the gRPC status code it maps to."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    UNAVAILABLE = "UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    INTERNAL = "INTERNAL"


class ProvenderError(Exception):
    """Base of every error Provender raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(ProvenderError):
    """A request field has a value we cannot accept."""

    code = ErrorCode.INVALID_ARGUMENT

    def __init__(self, field: str, value: Any, expected: str) -> None:
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        super().__init__(f"{field}: {shown} is not valid; expected {expected}")
        self.field = field
        self.value = value
        self.expected = expected


class NotFound(ProvenderError):
    """The named object does not exist."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, kind: str, name: str, project: str | None = None, hint: str = "") -> None:
        where = f" in project {project!r}" if project is not None else ""
        super().__init__(f"{kind} {name!r} does not exist{where}" + (f"; {hint}" if hint else ""))
        self.kind = kind
        self.name = name
        self.project = project


class AlreadyExists(ProvenderError):
    code = ErrorCode.ALREADY_EXISTS


class FailedPrecondition(ProvenderError):
    """The request is well formed but the system is not in a state that allows it."""

    code = ErrorCode.FAILED_PRECONDITION


class Conflict(ProvenderError):
    """A concurrent change won; retrying the request is safe."""

    code = ErrorCode.ABORTED


class Unavailable(ProvenderError):
    """A backing service (Postgres, Redis, Spark) cannot be reached; retrying later may work."""

    code = ErrorCode.UNAVAILABLE


class Unimplemented(ProvenderError):
    code = ErrorCode.UNIMPLEMENTED


class Unauthenticated(ProvenderError):
    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(ProvenderError):
    code = ErrorCode.PERMISSION_DENIED


_BY_CODE: dict[ErrorCode, type[ProvenderError]] = {
    ErrorCode.INVALID_ARGUMENT: ProvenderError,
    ErrorCode.NOT_FOUND: ProvenderError,
    ErrorCode.ALREADY_EXISTS: AlreadyExists,
    ErrorCode.FAILED_PRECONDITION: FailedPrecondition,
    ErrorCode.ABORTED: Conflict,
    ErrorCode.UNAVAILABLE: Unavailable,
    ErrorCode.UNIMPLEMENTED: Unimplemented,
    ErrorCode.UNAUTHENTICATED: Unauthenticated,
    ErrorCode.PERMISSION_DENIED: PermissionDenied,
}


class RemoteInvalidArgument(ProvenderError):
    """A server rejected a request as invalid; the message names the field."""

    code = ErrorCode.INVALID_ARGUMENT


class RemoteNotFound(ProvenderError):
    """A server reported that the named object does not exist."""

    code = ErrorCode.NOT_FOUND


def from_status(code_name: str, message: str) -> ProvenderError:
    """The typed error for a status a server answered with (used by the SDK)."""
    try:
        code = ErrorCode(code_name)
    except ValueError:
        code = ErrorCode.INTERNAL
    if code is ErrorCode.INVALID_ARGUMENT:
        return RemoteInvalidArgument(message)
    if code is ErrorCode.NOT_FOUND:
        return RemoteNotFound(message)
    cls = _BY_CODE.get(code, ProvenderError)
    error = cls(message)
    if cls is ProvenderError:
        error.code = code
    return error
