"""Where Core's jobs may read and write: the prefixes of `--allowed-storage`, and Core's staging location.

A job reads its tables' batch sources and a retrieval's entity file, and writes a retrieval's output; each of
those URLs must lie under an allowed prefix, compared after normalisation: percent-escapes decoded, `.` and `..`
resolved (a `..` that climbs above the root is refused), `s3a://` read as `s3://`, and for `file://` symbolic links
followed on Core's machine (the local and standalone launchers' jobs read the same files). A prefix matches whole
path segments only: `s3://lake/fraud` allows `s3://lake/fraud/x.parquet`, not `s3://lake/fraud-archive`.
With no prefix given and `--restrict-storage` off, jobs may read and write any location (Core says so in its log
at start); with `--restrict-storage` and no prefix, only the staging location.
"""

from __future__ import annotations

import os
import posixpath
from urllib.parse import unquote, urlsplit

from provender.kernel.errors import InvalidArgument

SCHEMES = {"file": "file", "s3": "s3", "s3a": "s3"}


def normalise(field: str, url: str) -> str:
    """`url` in the form prefixes are compared in; InvalidArgument for a URL that cannot be a job's location."""
    parts = urlsplit(url)
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None or parts.query or parts.fragment:
        raise InvalidArgument(field, url, "a file://, s3:// or s3a:// URL without ?query or #fragment")
    path = unquote(parts.path)
    if "\x00" in path:
        raise InvalidArgument(field, url, "a URL without NUL characters")
    if any(segment == ".." for segment in path.split("/")):
        depth = 0
        for segment in path.split("/"):
            depth = depth - 1 if segment == ".." else depth + (segment not in ("", "."))
            if depth < 0:
                raise InvalidArgument(field, url, "a location that does not climb above its root with '..'")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidArgument(field, url, "a file:// URL of this machine (file:///path)")
        return "file://" + os.path.realpath(path)
    if not parts.netloc:
        raise InvalidArgument(field, url, "an s3:// URL with a bucket (s3://bucket/path)")
    return f"s3://{parts.netloc.lower()}{posixpath.normpath('/' + path) if path.strip('/') else ''}"


def _under(location: str, prefix: str) -> bool:
    return location == prefix or location.startswith(prefix.rstrip("/") + "/")


class StoragePolicy:
    def __init__(self, allowed: list[str], staging_location: str, restrict: bool = False) -> None:
        """`allowed`: the prefixes of --allowed-storage; with none and not `restrict`, anywhere. The staging
        location is always allowed."""
        self.restricted = bool(allowed) or restrict
        self.prefixes = [normalise("allowed_storage", p) for p in allowed]
        if self.restricted:
            self.prefixes.append(normalise("staging_location", staging_location))
        self._shown = [*allowed, staging_location] if self.restricted else []

    def check(self, field: str, url: str) -> str:
        """`url` unchanged, if a job may use it; else InvalidArgument naming the field and the allowed prefixes."""
        location = normalise(field, url)
        if self.restricted and not any(_under(location, prefix) for prefix in self.prefixes):
            raise InvalidArgument(
                field,
                url,
                "a location under one of " + ", ".join(self._shown) + " (Core's --allowed-storage, and its "
                "staging location)",
            )
        return url
