"""Server settings from PROVENDER_* environment variables, used as defaults of the command-line flags."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def env(name: str, default: T, cast: Callable[[str], T] | None = None) -> T:
    """PROVENDER_<name> if set (converted by `cast`), else `default`."""
    raw = os.environ.get(f"PROVENDER_{name}")
    if raw is None or raw == "":
        return default
    try:
        return cast(raw) if cast else raw  # type: ignore[return-value]
    except ValueError:
        raise SystemExit(
            f"PROVENDER_{name}={raw!r} is not valid: expected {getattr(cast, '__name__', 'a value')}"
        ) from None
