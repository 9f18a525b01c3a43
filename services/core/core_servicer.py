"""feast.core.CoreService over gRPC: converts requests to registry calls and results to responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from provender.core.registry.service import Registry, StoredEntity, StoredTable
from provender.kernel import __version__
from provender.kernel.errors import Unimplemented
from provender.kernel.timestamps import to_timestamp
from provender.proto.feast.core import CoreService_pb2 as pb
from provender.proto.feast.core import CoreService_pb2_grpc, Entity_pb2, FeatureTable_pb2
from provender.server.runner import Registration


def entity_proto(e: StoredEntity) -> Entity_pb2.Entity:
    return Entity_pb2.Entity(
        spec=e.spec,
        meta=Entity_pb2.EntityMeta(
            created_timestamp=to_timestamp(e.created), last_updated_timestamp=to_timestamp(e.updated)
        ),
    )


def table_proto(t: StoredTable) -> FeatureTable_pb2.FeatureTable:
    return FeatureTable_pb2.FeatureTable(
        spec=t.spec,
        meta=FeatureTable_pb2.FeatureTableMeta(
            created_timestamp=to_timestamp(t.created),
            last_updated_timestamp=to_timestamp(t.updated),
            revision=t.revision,
            hash=t.hash,
        ),
    )


class CoreServicer(CoreService_pb2_grpc.CoreServiceServicer):
    def __init__(self, registry: Registry, readable: Callable[[str], bool] = lambda project: True) -> None:
        """`readable`: may the caller being served read a project (listings hold only those)."""
        self.registry = registry
        self.readable = readable

    def GetFeastCoreVersion(
        self, request: Any, context: grpc.ServicerContext
    ) -> pb.GetFeastCoreVersionResponse:
        return pb.GetFeastCoreVersionResponse(version=__version__)

    def GetEntity(self, request: pb.GetEntityRequest, context: grpc.ServicerContext) -> pb.GetEntityResponse:
        return pb.GetEntityResponse(
            entity=entity_proto(self.registry.get_entity(request.project, request.name))
        )

    def ListEntities(
        self, request: pb.ListEntitiesRequest, context: grpc.ServicerContext
    ) -> pb.ListEntitiesResponse:
        found = self.registry.list_entities(request.filter.project, request.filter.labels)
        return pb.ListEntitiesResponse(entities=[entity_proto(e) for e in found])

    def ApplyEntity(
        self, request: pb.ApplyEntityRequest, context: grpc.ServicerContext
    ) -> pb.ApplyEntityResponse:
        return pb.ApplyEntityResponse(
            entity=entity_proto(self.registry.apply_entity(request.project, request.spec))
        )

    def ListFeatures(
        self, request: pb.ListFeaturesRequest, context: grpc.ServicerContext
    ) -> pb.ListFeaturesResponse:
        f = request.filter
        return pb.ListFeaturesResponse(
            features=self.registry.list_features(f.project, list(f.entities), f.labels)
        )

    def ListStores(
        self, request: pb.ListStoresRequest, context: grpc.ServicerContext
    ) -> pb.ListStoresResponse:
        # Stores are configured by flags and chart values, not registered through Core.
        return pb.ListStoresResponse()

    def UpdateStore(
        self, request: pb.UpdateStoreRequest, context: grpc.ServicerContext
    ) -> pb.UpdateStoreResponse:
        raise Unimplemented(
            "UpdateStore is not supported: Provender configures its online store with "
            "`provender serving --redis-url` (or the chart's redis values), not through Core"
        )

    def CreateProject(
        self, request: pb.CreateProjectRequest, context: grpc.ServicerContext
    ) -> pb.CreateProjectResponse:
        self.registry.create_project(request.name)
        return pb.CreateProjectResponse()

    def ArchiveProject(
        self, request: pb.ArchiveProjectRequest, context: grpc.ServicerContext
    ) -> pb.ArchiveProjectResponse:
        self.registry.archive_project(request.name)
        return pb.ArchiveProjectResponse()

    def ListProjects(
        self, request: pb.ListProjectsRequest, context: grpc.ServicerContext
    ) -> pb.ListProjectsResponse:
        return pb.ListProjectsResponse(
            projects=[p for p in self.registry.list_projects() if self.readable(p)]
        )

    def ApplyFeatureTable(
        self, request: pb.ApplyFeatureTableRequest, context: grpc.ServicerContext
    ) -> pb.ApplyFeatureTableResponse:
        stored = self.registry.apply_feature_table(request.project, request.table_spec)
        return pb.ApplyFeatureTableResponse(table=table_proto(stored))

    def ListFeatureTables(
        self, request: pb.ListFeatureTablesRequest, context: grpc.ServicerContext
    ) -> pb.ListFeatureTablesResponse:
        found = self.registry.list_feature_tables(request.filter.project, request.filter.labels)
        return pb.ListFeatureTablesResponse(tables=[table_proto(t) for t in found])

    def GetFeatureTable(
        self, request: pb.GetFeatureTableRequest, context: grpc.ServicerContext
    ) -> pb.GetFeatureTableResponse:
        return pb.GetFeatureTableResponse(
            table=table_proto(self.registry.get_feature_table(request.project, request.name))
        )

    def DeleteFeatureTable(
        self, request: pb.DeleteFeatureTableRequest, context: grpc.ServicerContext
    ) -> pb.DeleteFeatureTableResponse:
        self.registry.delete_feature_table(request.project, request.name)
        return pb.DeleteFeatureTableResponse()


def register(servicer: CoreServicer) -> Registration:
    """A registration for provender.server.runner.start_server."""

    def add(server: grpc.Server) -> str:
        CoreService_pb2_grpc.add_CoreServiceServicer_to_server(servicer, server)
        return pb.DESCRIPTOR.services_by_name["CoreService"].full_name

    return add
