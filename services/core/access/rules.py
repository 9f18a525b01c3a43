"""The access rule of every Core RPC: the role it needs, in which project, and what the audit log says it wrote.

Each method's project comes from its request (empty is `default`, as in the registry), or from the job it names
(a job belongs to its table's project). Methods that list across projects (ListProjects, ListJobs without a
project, ListAccessBindings without a project) need no role of their own: their answers hold only what the
caller may read (`CoreAccess.readable`). A method missing from this catalogue is refused to everyone, so a new
RPC cannot be served before its rule is written.

With authentication off nothing is checked (every caller may do everything, as on a laptop), and the audit log
still names the caller by its address or client certificate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from provender.core.access.bindings import AccessBindings
from provender.core.registry.validation import DEFAULT_PROJECT
from provender.kernel.errors import PermissionDenied
from provender.server.access import EVERY_PROJECT, Role
from provender.server.interceptor import AccessCheck, AuditSubject
from provender.server.principal import Principal, current

READER, WRITER, ADMIN = Role.READER, Role.WRITER, Role.ADMIN


def _project(name: str) -> str:
    return name or DEFAULT_PROJECT


@dataclass(frozen=True)
class Rule:
    role: Role | None = None  # None: any authenticated caller (a listing filters its answer)
    project: Callable[[Any], str] | None = None  # the request's project
    job: Callable[[Any], str] | None = None  # or the id of the job whose project counts
    audit: Callable[[Any], str] | None = None  # a write: what it writes, for the audit log


def _in(field: str) -> Callable[[Any], str]:
    return lambda r: _project(getattr(r, field))


_IN_PROJECT, _IN_FILTER, _JOB_ID = (
    _in("project"),
    (lambda r: _project(r.filter.project)),
    (lambda r: r.job_id),
)

_CORE: dict[str, Rule] = {
    "GetFeastCoreVersion": Rule(),
    "ListStores": Rule(),
    "UpdateStore": Rule(ADMIN, lambda r: EVERY_PROJECT),
    "CreateProject": Rule(WRITER, lambda r: r.name, audit=lambda r: "project"),
    "ArchiveProject": Rule(ADMIN, lambda r: r.name, audit=lambda r: "project"),
    "ListProjects": Rule(),
    "GetEntity": Rule(READER, _IN_PROJECT),
    "ListEntities": Rule(READER, _IN_FILTER),
    "ApplyEntity": Rule(WRITER, _IN_PROJECT, audit=lambda r: f"entity {r.spec.name}"),
    "ListFeatures": Rule(READER, _IN_FILTER),
    "GetFeatureTable": Rule(READER, _IN_PROJECT),
    "ListFeatureTables": Rule(READER, _IN_FILTER),
    "ApplyFeatureTable": Rule(WRITER, _IN_PROJECT, audit=lambda r: f"feature table {r.table_spec.name}"),
    "DeleteFeatureTable": Rule(ADMIN, _IN_PROJECT, audit=lambda r: f"feature table {r.name}"),
}
_JOBS: dict[str, Rule] = {
    "StartOfflineToOnlineIngestionJob": Rule(WRITER, _IN_PROJECT, audit=lambda r: f"ingestion of table {r.table_name}"),
    "StartStreamToOnlineIngestionJob": Rule(WRITER, _IN_PROJECT, audit=lambda r: f"stream of table {r.table_name}"),
    "GetHistoricalFeatures": Rule(READER, _IN_PROJECT, audit=lambda r: f"retrieval of {', '.join(r.feature_refs)}"),
    "ScheduleOfflineToOnlineIngestionJob": Rule(WRITER, _IN_PROJECT, audit=lambda r: f"schedule of table {r.table_name}"),
    "UnscheduleOfflineToOnlineIngestionJob": Rule(WRITER, _IN_PROJECT, audit=lambda r: f"schedule of table {r.table_name}"),
    "GetHealthMetrics": Rule(READER, _IN_PROJECT),
    "ListJobs": Rule(),
    "GetJob": Rule(READER, job=_JOB_ID),
    "CancelJob": Rule(WRITER, job=_JOB_ID, audit=lambda r: f"job {r.job_id}"),
}  # fmt: skip
_CLIENT_SUPPORT: dict[str, Rule] = {
    "GetClientDefaults": Rule(),
    "GetJobReport": Rule(READER, job=_JOB_ID),
    "GetRegistryRevision": Rule(),
}
_ACCESS: dict[str, Rule] = {
    "GrantAccess": Rule(ADMIN, lambda r: r.project, audit=lambda r: f"role {r.role} of {r.principal}"),
    "RevokeAccess": Rule(ADMIN, lambda r: r.project, audit=lambda r: f"role of {r.principal}"),
    "ListAccessBindings": Rule(READER, lambda r: r.project or EVERY_PROJECT),
    "WhoAmI": Rule(),
}

# The JobService answers under Feast 0.9's name and feast-spark's; a method one of them lacks is never called.
RULES: Mapping[str, Rule] = {
    **{f"/feast.core.CoreService/{name}": rule for name, rule in _CORE.items()},
    **{
        f"/{service}/{name}": rule
        for service in ("feast.core.JobService", "feast_spark.api.JobService")
        for name, rule in _JOBS.items()
    },
    **{f"/provender.core.ClientSupportService/{name}": rule for name, rule in _CLIENT_SUPPORT.items()},
    **{f"/provender.core.AccessService/{name}": rule for name, rule in _ACCESS.items()},
}


class CoreAccess:
    """Core's access rules over its bindings; `job_project` names the project of a job id (NotFound if none)."""

    def __init__(self, bindings: AccessBindings, job_project: Callable[[str], str]) -> None:
        self.bindings = bindings
        self.job_project = job_project

    def _project_of(self, rule: Rule, request: Any) -> str:
        if rule.job is not None:
            return self.job_project(rule.job(request))
        assert rule.project is not None
        return rule.project(request)

    def __call__(self, method: str) -> AccessCheck | None:
        """The check of one method (provender.server.interceptor.AccessRules)."""
        rule = RULES.get(method)
        if rule is None:

            def refuse(request: Any, principal: Principal) -> None:
                raise PermissionDenied(f"{method} has no access rule in this Core; nobody may call it")

            return refuse
        if rule.role is None:
            return None
        role = rule.role

        def check(request: Any, principal: Principal) -> None:
            self.bindings.policy().require(principal, self._project_of(rule, request), role)

        return check

    def readable(self, project: str) -> bool:
        """May the caller being served read `project`? (Always, with authentication off.)"""
        principal = current()
        if principal is None:
            return True
        return self.bindings.policy().allows(principal, project, READER)

    def audited(self) -> Mapping[str, AuditSubject]:
        """The writes of the audit log: method -> (request -> (project, object))."""

        def subject(rule: Rule, describe: Callable[[Any], str]) -> AuditSubject:
            def of(request: Any) -> tuple[str, str]:
                try:
                    project = self._project_of(rule, request)
                except Exception:  # an unknown job: audited without its project
                    project = ""
                return project, describe(request)

            return of

        return {method: subject(rule, rule.audit) for method, rule in RULES.items() if rule.audit is not None}
