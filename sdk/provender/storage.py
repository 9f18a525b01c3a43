"""Reading and writing files at URLs the platform uses: file:// (and plain paths) and s3:// (S3-compatible
stores, credentials from the usual AWS environment variables), through pyarrow's filesystems."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs

SCHEMES = ("file://", "s3://", "s3a://")


def to_url(path_or_url: str | Path) -> str:
    """A local path as a file:// URL; URLs are returned unchanged."""
    text = str(path_or_url)
    if "://" in text:
        return text
    return Path(text).absolute().as_uri()


def filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem for `url` and the path within it."""
    if url.startswith("file://"):
        return pafs.LocalFileSystem(), unquote(urlparse(url).path)
    if url.startswith(("s3://", "s3a://")):
        fs, path = pafs.FileSystem.from_uri("s3://" + url.split("://", 1)[1])
        return fs, path
    if "://" not in url:
        return pafs.LocalFileSystem(), str(Path(url).absolute())
    raise ValueError(f"unsupported URL {url!r}; expected file://, s3:// or a local path")


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts)])
