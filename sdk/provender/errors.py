"""The errors the SDK raises, under the name users import: provender.kernel.errors, which servers raise too."""

from provender.kernel.errors import (
    AlreadyExists,
    Conflict,
    DeadlineExceeded,
    ErrorCode,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ProvenderError,
    RemoteInvalidArgument,
    RemoteNotFound,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    from_status,
)

__all__ = [
    "AlreadyExists",
    "Conflict",
    "DeadlineExceeded",
    "ErrorCode",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ProvenderError",
    "RemoteInvalidArgument",
    "RemoteNotFound",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "from_status",
]
