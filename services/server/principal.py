"""Who is calling: the principal a server authenticated for the call being served.

A principal is written `kind:name`: `user:<subject>` (an OIDC token's subject), `token:<name>` (a static service
token), `cert:<common name>` (a client certificate under mutual TLS), `peer:<address>` when the server checks no
credential. Groups come from a claim of the OIDC token; each is an identity `group:<name>` of its own, so a role
granted to a group reaches its members. The interceptor (provender.server.interceptor) sets the principal of each
call before the servicer runs; domain code reads it with `current()` and never sees gRPC.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

KINDS = ("user", "group", "token", "cert")


@dataclass(frozen=True)
class Principal:
    kind: str
    name: str
    groups: tuple[str, ...] = ()
    authenticated: bool = True

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"

    def identities(self) -> tuple[str, ...]:
        """Every identity a role can be granted to that this principal holds: itself and its groups."""
        return (self.id, *(f"group:{group}" for group in self.groups))

    def __str__(self) -> str:
        return self.id


def anonymous(peer: str) -> Principal:
    """The caller of a server that checks no credential, named by its address."""
    return Principal("peer", peer, authenticated=False)


_CURRENT: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "provender_principal", default=None
)


def current() -> Principal | None:
    """The principal of the call being served on this thread; None outside a call or with authentication off."""
    return _CURRENT.get()


def set_current(principal: Principal | None) -> contextvars.Token:
    return _CURRENT.set(principal)


def reset_current(token: contextvars.Token) -> None:
    _CURRENT.reset(token)
