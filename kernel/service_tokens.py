"""Static service tokens: how one is made and the form it is stored in.

A deployment keeps only the hash of each token, one line `<name> sha256:<hex digest>` per token in the files
Core and Serving read (`--auth-tokens-file`); the token itself goes to the service that uses it. `provender
access new-token NAME` makes a token and prints both.
"""

from __future__ import annotations

import hashlib
import re
import secrets

HASH = "sha256"
LINE = re.compile(rf"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.@-]*)\s+(?P<digest>{HASH}:[0-9a-f]{{64}})$")


def hash_token(token: str) -> str:
    """The stored form of a token: `sha256:<hex digest>`."""
    return f"{HASH}:{hashlib.sha256(token.encode()).hexdigest()}"


def new_token() -> str:
    """A new random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_line(name: str, token: str) -> str:
    """The line of a tokens file for `token`, named `name` (its principal is token:<name>)."""
    line = f"{name} {hash_token(token)}"
    if not LINE.match(line):
        raise ValueError(f"{name!r} is not a valid token name: letters, digits, _ . @ -")
    return line
