"""Typed errors shared by every Provender process and the SDK: one class per status code, raised by servers and
raised again, the same class, by the SDK (`from_status`), so `except NotFound:` works across the wire.

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
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    INTERNAL = "INTERNAL"


ECHOED_CHARACTERS = 120  # the most of a caller's value a message repeats


def shown(value: Any) -> str:
    """A caller's value as a message repeats it: its repr, cut to ECHOED_CHARACTERS (a message must stay far below
    the ~16 kB gRPC allows for details, or the caller gets RESOURCE_EXHAUSTED instead of the status meant)."""
    text = repr(value)
    return text if len(text) <= ECHOED_CHARACTERS else text[: ECHOED_CHARACTERS - 3] + "..."


class ProvenderError(Exception):
    """Base of every error Provender raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_wire(cls, message: str) -> ProvenderError:
        """This error as a client sees it: the server's message, without the constructor's structured fields."""
        error = cls.__new__(cls)
        ProvenderError.__init__(error, message)
        return error


class InvalidArgument(ProvenderError):
    """A request field has a value we cannot accept."""

    code = ErrorCode.INVALID_ARGUMENT

    field: str | None = None
    value: Any = None
    expected: str | None = None

    def __init__(self, field: str, value: Any, expected: str) -> None:
        super().__init__(f"{field}: {shown(value)} is not valid; expected {expected}")
        self.field = field
        self.value = value
        self.expected = expected


class NotFound(ProvenderError):
    """The named object does not exist."""

    code = ErrorCode.NOT_FOUND
    kind: str | None = None
    name: str | None = None
    project: str | None = None

    def __init__(self, kind: str, name: str, project: str | None = None, hint: str = "") -> None:
        where = f" in project {shown(project)}" if project is not None else ""
        super().__init__(f"{kind} {shown(name)} does not exist{where}" + (f"; {hint}" if hint else ""))
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


class DeadlineExceeded(ProvenderError):
    code = ErrorCode.DEADLINE_EXCEEDED


class ResourceExhausted(ProvenderError):
    """The request is valid but needs more than the server gives one call (its answer would be too large)."""

    code = ErrorCode.RESOURCE_EXHAUSTED


class Internal(ProvenderError):
    """A fault of ours, not of the request; the message says what failed, never with a stack trace."""

    code = ErrorCode.INTERNAL


_BY_CODE: dict[ErrorCode, type[ProvenderError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Conflict,
        Unavailable,
        Unimplemented,
        Unauthenticated,
        PermissionDenied,
        DeadlineExceeded,
        ResourceExhausted,
        Internal,
    )
}


def from_status(code_name: str, message: str) -> ProvenderError:
    """The error a server raised, rebuilt from the status it answered with (the SDK's side of the wire): the same
    class, so `except NotFound:` catches a server's NOT_FOUND. Only the message crosses the wire: the structured
    fields of InvalidArgument and NotFound (field, kind, ...) are None on the client."""
    try:
        code = ErrorCode(code_name)
    except ValueError:
        code = ErrorCode.INTERNAL
    return _BY_CODE[code].from_wire(message)


# The names the SDK used before one class served both sides.
RemoteInvalidArgument = InvalidArgument
RemoteNotFound = NotFound
