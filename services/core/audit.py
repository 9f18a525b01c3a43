"""Core's writes, for the audit log: which RPCs write, and what each one writes (its project and object).

The server's interceptor (provender.server.interceptor) writes one JSON line per call of these methods, on the
`provender.audit` logger, with who called (the client certificate's name under mutual TLS, else the peer
address), the project, the object and the outcome (the status code). Reads are not audited.
"""

from __future__ import annotations

from collections.abc import Mapping

from provender.server.interceptor import AuditSubject as Subject


def _project(name: str) -> str:
    return name or "default"


_REGISTRY: dict[str, Subject] = {
    "CreateProject": lambda r: (r.name, "project"),
    "ArchiveProject": lambda r: (r.name, "project"),
    "ApplyEntity": lambda r: (_project(r.project), f"entity {r.spec.name}"),
    "ApplyFeatureTable": lambda r: (_project(r.project), f"feature table {r.table_spec.name}"),
    "DeleteFeatureTable": lambda r: (_project(r.project), f"feature table {r.name}"),
}
_JOBS: dict[str, Subject] = {
    "StartOfflineToOnlineIngestionJob": lambda r: (_project(r.project), f"ingestion of table {r.table_name}"),
    "StartStreamToOnlineIngestionJob": lambda r: (_project(r.project), f"stream of table {r.table_name}"),
    "GetHistoricalFeatures": lambda r: (_project(r.project), f"retrieval of {', '.join(r.feature_refs)}"),
    "CancelJob": lambda r: (
        "",
        f"job {r.job_id}",
    ),  # the project is the job's, which the request does not name
    "ScheduleOfflineToOnlineIngestionJob": lambda r: (
        _project(r.project),
        f"schedule of table {r.table_name}",
    ),
    "UnscheduleOfflineToOnlineIngestionJob": lambda r: (
        _project(r.project),
        f"schedule of table {r.table_name}",
    ),
}

# The JobService answers under Feast 0.9's name and feast-spark's; the legacy one has no schedule methods, which
# is harmless here (a method the server does not have is never called).
WRITES: Mapping[str, Subject] = {
    **{f"/feast.core.CoreService/{name}": subject for name, subject in _REGISTRY.items()},
    **{
        f"/{service}/{name}": subject
        for service in ("feast.core.JobService", "feast_spark.api.JobService")
        for name, subject in _JOBS.items()
    },
}
