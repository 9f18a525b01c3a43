"""The access bindings Core keeps: granted ones in Postgres, and the global roles of Core's settings.

`AccessBindings.policy()` is the current `AccessPolicy`, read from Postgres at most every couple of seconds
(another Core replica's grant is seen within that) and at once after this Core's own grants and revokes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from provender.core.registry import validation
from provender.core.registry.database import Database
from provender.core.registry.schema import AccessBindingRow
from provender.kernel.errors import NotFound
from provender.server.access import EVERY_PROJECT, AccessPolicy, Binding, Role, check_identity


def check_project(field: str, project: str) -> str:
    if project == EVERY_PROJECT:
        return project
    validation.check_name(field, project)
    return project


def global_bindings(roles: Mapping[str, str]) -> list[Binding]:
    """The bindings of Core's --auth-global-role settings (PRINCIPAL=ROLE), checked."""
    return [
        Binding(
            EVERY_PROJECT,
            check_identity("auth_global_role", identity),
            Role.parse(f"auth_global_role {identity}", role),
            source="setting",
        )
        for identity, role in sorted(roles.items())
    ]


class AccessBindings:
    REFRESH_SECONDS = 2.0

    def __init__(self, db: Database, global_roles: Mapping[str, str] | None = None) -> None:
        self.db = db
        self.settings = global_bindings(global_roles or {})
        self._lock = threading.Lock()
        self._policy: AccessPolicy | None = None
        self._read_at = 0.0

    def grant(self, project: str, identity: str, role: str, granted_by: str) -> Binding:
        binding = Binding(
            check_project("project", project),
            check_identity("principal", identity),
            Role.parse("role", role),
            granted_by=granted_by,
            granted_at=datetime.now(UTC),
        )
        values = {
            "project": binding.project,
            "identity": binding.identity,
            "role": str(binding.role),
            "granted_by": granted_by,
            "granted_at": binding.granted_at,
        }
        with self.db.transaction() as s:
            s.execute(
                insert(AccessBindingRow)
                .values(**values)
                .on_conflict_do_update(index_elements=["project", "identity"], set_=values)
            )
        self._invalidate()
        return binding

    def revoke(self, project: str, identity: str) -> None:
        check_project("project", project)
        check_identity("principal", identity)
        with self.db.transaction() as s:
            gone = s.execute(
                delete(AccessBindingRow)
                .where(AccessBindingRow.project == project, AccessBindingRow.identity == identity)
                .returning(AccessBindingRow.role)
            ).first()
        if gone is None:
            setting = any(b.identity == identity for b in self.settings)
            hint = "its role in every project comes from Core's --auth-global-role setting" if setting else ""
            raise NotFound("access binding for", identity, project, hint=hint)
        self._invalidate()

    def list(self, project: str = "") -> list[Binding]:
        """Every binding, or those of `project` and of `*`."""
        if project:
            check_project("project", project)
        with self.db.transaction() as s:
            query = select(AccessBindingRow).order_by(AccessBindingRow.project, AccessBindingRow.identity)
            if project:
                query = query.where(AccessBindingRow.project.in_([project, EVERY_PROJECT]))
            rows = list(s.scalars(query))
        granted = [
            Binding(r.project, r.identity, Role.parse("role", r.role), "grant", r.granted_by, r.granted_at)
            for r in rows
        ]
        return [*self.settings, *granted]

    def policy(self) -> AccessPolicy:
        now = time.monotonic()
        with self._lock:
            if self._policy is not None and now - self._read_at < self.REFRESH_SECONDS:
                return self._policy
        policy = AccessPolicy(self.list())
        with self._lock:
            self._policy, self._read_at = policy, now
        return policy

    def _invalidate(self) -> None:
        with self._lock:
            self._policy = None
