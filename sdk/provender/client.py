"""The Provender client: registry, online features and jobs from one object.

    from provender import Client
    client = Client(core_url="localhost:6565", serving_url="localhost:6566")

Calls raise `provender.errors` types with the server's message; an unreachable service names its URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import grpc

from provender import config as config_module
from provender.entity import Entity
from provender.errors import InvalidArgument, Unavailable, from_status
from provender.feature import Feature
from provender.feature_table import FeatureTable
from provender.proto.feast.core import CoreService_pb2 as core_pb
from provender.proto.feast.core import CoreService_pb2_grpc

T = TypeVar("T")
Applicable = Entity | FeatureTable


class Client:
    def __init__(
        self,
        core_url: str | None = None,
        serving_url: str | None = None,
        job_service_url: str | None = None,
        project: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.config = config_module.resolve(
            core_url=core_url,
            serving_url=serving_url,
            job_service_url=job_service_url,
            project=project,
            timeout=timeout,
        )
        self._project = self.config.project
        self._core_channel: grpc.Channel | None = None
        self._core: CoreService_pb2_grpc.CoreServiceStub | None = None

    # plumbing --------------------------------------------------------------------------------------------

    @property
    def project(self) -> str:
        return self._project

    def set_project(self, project: str) -> None:
        self._project = project

    def _project_or_default(self, project: str | None) -> str:
        return project if project is not None else self._project

    @property
    def core(self) -> CoreService_pb2_grpc.CoreServiceStub:
        if self._core is None:
            self._core_channel = grpc.insecure_channel(self.config.core_url)
            self._core = CoreService_pb2_grpc.CoreServiceStub(self._core_channel)
        return self._core

    def _call(self, service: str, url: str, method: Callable[..., T], request: Any) -> T:
        try:
            return method(request, timeout=self.config.timeout)
        except grpc.RpcError as e:
            code, details = e.code(), e.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE and ("connect" in details.lower() or "DNS" in details):
                raise Unavailable(
                    f"cannot reach Provender {service} at {url}: is it running? ({details})"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise Unavailable(
                    f"Provender {service} at {url} did not answer within {self.config.timeout:g}s"
                ) from None
            raise from_status(code.name, details) from None

    def _core_call(self, method: Callable[..., T], request: Any) -> T:
        return self._call("Core", self.config.core_url, method, request)

    def close(self) -> None:
        if self._core_channel is not None:
            self._core_channel.close()
            self._core_channel = self._core = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # registry --------------------------------------------------------------------------------------------

    def version(self) -> dict[str, str]:
        import provender

        core = self._core_call(self.core.GetFeastCoreVersion, core_pb.GetFeastCoreVersionRequest()).version
        return {"sdk": provender.__version__, "core": core}

    def apply(
        self, objects: Applicable | Iterable[Applicable], project: str | None = None
    ) -> list[Applicable]:
        """Create or update entities and feature tables (entities first); returns them as stored."""
        items = [objects] if isinstance(objects, Entity | FeatureTable) else list(objects)
        for i, obj in enumerate(items):
            if not isinstance(obj, Entity | FeatureTable):
                raise InvalidArgument(f"objects[{i}]", type(obj).__name__, "an Entity or a FeatureTable")
        ordered = sorted(items, key=lambda o: 0 if isinstance(o, Entity) else 1)
        project = self._project_or_default(project)
        applied: list[Applicable] = []
        for obj in ordered:
            if isinstance(obj, Entity):
                r = self._core_call(
                    self.core.ApplyEntity, core_pb.ApplyEntityRequest(spec=obj.to_proto(), project=project)
                )
                applied.append(Entity.from_proto(r.entity))
            else:
                r2 = self._core_call(
                    self.core.ApplyFeatureTable,
                    core_pb.ApplyFeatureTableRequest(table_spec=obj.to_proto(), project=project),
                )
                applied.append(FeatureTable.from_proto(r2.table))
        return applied

    def get_entity(self, name: str, project: str | None = None) -> Entity:
        r = self._core_call(
            self.core.GetEntity,
            core_pb.GetEntityRequest(name=name, project=self._project_or_default(project)),
        )
        return Entity.from_proto(r.entity)

    def list_entities(
        self, project: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Entity]:
        f = core_pb.ListEntitiesRequest.Filter(
            project=self._project_or_default(project), labels=dict(labels or {})
        )
        r = self._core_call(self.core.ListEntities, core_pb.ListEntitiesRequest(filter=f))
        return [Entity.from_proto(e) for e in r.entities]

    def get_feature_table(self, name: str, project: str | None = None) -> FeatureTable:
        r = self._core_call(
            self.core.GetFeatureTable,
            core_pb.GetFeatureTableRequest(name=name, project=self._project_or_default(project)),
        )
        return FeatureTable.from_proto(r.table)

    def list_feature_tables(
        self, project: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[FeatureTable]:
        f = core_pb.ListFeatureTablesRequest.Filter(
            project=self._project_or_default(project), labels=dict(labels or {})
        )
        r = self._core_call(self.core.ListFeatureTables, core_pb.ListFeatureTablesRequest(filter=f))
        return [FeatureTable.from_proto(t) for t in r.tables]

    def delete_feature_table(self, name: str, project: str | None = None) -> None:
        self._core_call(
            self.core.DeleteFeatureTable,
            core_pb.DeleteFeatureTableRequest(name=name, project=self._project_or_default(project)),
        )

    def list_features_by_ref(
        self,
        project: str | None = None,
        entities: Iterable[str] = (),
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Feature]:
        """Features keyed "table:feature" of tables that have all `entities`, with all `labels`."""
        f = core_pb.ListFeaturesRequest.Filter(
            project=self._project_or_default(project), entities=list(entities), labels=dict(labels or {})
        )
        r = self._core_call(self.core.ListFeatures, core_pb.ListFeaturesRequest(filter=f))
        return {ref: Feature.from_proto(spec) for ref, spec in sorted(r.features.items())}

    def list_projects(self) -> list[str]:
        return list(self._core_call(self.core.ListProjects, core_pb.ListProjectsRequest()).projects)

    def create_project(self, name: str) -> None:
        self._core_call(self.core.CreateProject, core_pb.CreateProjectRequest(name=name))

    def archive_project(self, name: str) -> None:
        self._core_call(self.core.ArchiveProject, core_pb.ArchiveProjectRequest(name=name))
