"""Roles and who holds them: the access policy Core and Serving both enforce.

Three roles, each including the ones before it: `reader` (lookups, list, get, retrieve), `writer` (apply,
ingest, start and cancel jobs), `admin` (delete, archive, manage bindings). A binding grants one role in one
project, or in every project (`*`), to one identity (`user:`, `group:`, `token:`, `cert:`; provender.server.
principal). A principal's role in a project is the highest any of its identities holds there or in `*`.

Core keeps the bindings in Postgres and its settings (provender.core.access); Serving holds a copy it refreshes
from Core. This module is the one place the rule is written.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from provender.kernel.errors import InvalidArgument, PermissionDenied
from provender.server.principal import KINDS, Principal

EVERY_PROJECT = "*"


class Role(enum.IntEnum):
    READER = 1
    WRITER = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, field: str, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise InvalidArgument(field, text, "reader, writer or admin") from None


def check_identity(field: str, text: str) -> str:
    """An identity as roles are granted to it: `kind:name`."""
    kind, sep, name = text.partition(":")
    if not sep or kind not in KINDS or not name.strip() or len(text) > 512:
        raise InvalidArgument(
            field, text, "kind:name with kind " + ", ".join(KINDS) + ", e.g. group:ml-platform"
        )
    return text


@dataclass(frozen=True)
class Binding:
    project: str
    identity: str
    role: Role
    source: str = "grant"  # "grant" (GrantAccess) or "setting" (Core's --auth-global-role)
    granted_by: str = ""
    granted_at: datetime | None = None


class AccessPolicy:
    """The roles of a set of bindings, answered without I/O (one dictionary lookup per identity)."""

    def __init__(self, bindings: Iterable[Binding] = ()) -> None:
        self.bindings = list(bindings)
        self._roles: dict[str, dict[str, Role]] = {}
        for b in self.bindings:
            held = self._roles.setdefault(b.identity, {})
            held[b.project] = max(held.get(b.project, b.role), b.role)

    def role_of(self, principal: Principal, project: str) -> Role | None:
        best: Role | None = None
        for identity in principal.identities():
            held = self._roles.get(identity)
            if held is None:
                continue
            for role in (held.get(project), held.get(EVERY_PROJECT)):
                if role is not None and (best is None or role > best):
                    best = role
        return best

    def allows(self, principal: Principal, project: str, role: Role) -> bool:
        held = self.role_of(principal, project)
        return held is not None and held >= role

    def require(self, principal: Principal, project: str, role: Role) -> None:
        """PermissionDenied naming the project, the role needed and how to get it, unless the principal has it."""
        if self.allows(principal, project, role):
            return
        held = self.role_of(principal, project)
        shown = project if len(project) <= 120 else project[:117] + "..."
        where = "every project ('*')" if project == EVERY_PROJECT else f"project {shown!r}"
        has = f"it has {held}" if held is not None else "it has no role there"
        granter = "an admin of every project" if project == EVERY_PROJECT else "an admin of the project"
        raise PermissionDenied(
            f"{principal.id} needs the {role} role in {where} ({has}); {granter} grants it with "
            f"`provender access grant {shown} {principal.id} {role}`"
        )
