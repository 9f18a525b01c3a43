"""Who may do what: the roles of Provender's access control, as the SDK shows them (Client.grant_access, ...).

Roles: `reader` (lookups, list, get, retrieve), `writer` (also apply, ingest, start and cancel jobs), `admin`
(also delete, archive, manage roles), each in one project or in every project (`*`). A principal is written
`kind:name`: `user:<OIDC subject>`, `group:<group from the token>`, `token:<service token name>`,
`cert:<client certificate common name>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from provender.kernel.timestamps import from_timestamp
from provender.proto.provender.core import Access_pb2

ROLES = ("reader", "writer", "admin")


@dataclass(frozen=True)
class AccessBinding:
    project: str
    principal: str
    role: str
    source: str  # "grant", or "setting" for a role Core's settings give in every project
    granted_by: str = ""
    granted_at: datetime | None = None

    @classmethod
    def from_proto(cls, b: Access_pb2.AccessBinding) -> AccessBinding:
        return cls(
            b.project,
            b.principal,
            b.role,
            b.source,
            b.granted_by,
            from_timestamp(b.granted_at) if b.HasField("granted_at") else None,
        )


@dataclass(frozen=True)
class Identity:
    """Who Core takes the caller for; `authenticated` is False when Core checks no credential."""

    principal: str
    identities: tuple[str, ...]
    authenticated: bool
