"""RESP, the Redis protocol, as the hand-built commands need it: Serving's pipelined HMGETs and handshake, and the
ingestion's EVALSHA calls (built a column at a time by resp_columns)."""

from __future__ import annotations

CRLF = b"\r\n"


def bulk(value: bytes) -> bytes:
    """One bulk string: `$<length>\\r\\n<bytes>\\r\\n`."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def array_header(n: int) -> bytes:
    """The header of an array (a command) of n bulk strings: `*<n>\\r\\n`."""
    return b"*%d\r\n" % n


def pack(*args: bytes | str | int) -> bytes:
    """The RESP bytes of one command."""
    return array_header(len(args)) + b"".join(
        bulk(a if isinstance(a, bytes) else str(a).encode()) for a in args
    )
