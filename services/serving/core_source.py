"""Feature table specs read from Core's CoreService over gRPC (ListProjects, ListFeatureTables, GetFeatureTable).

The transport adapter of the spec cache: gRPC errors become provender.kernel.errors here, nowhere else in Serving.
"""

from __future__ import annotations

import grpc

from provender.kernel.errors import Unavailable
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import CoreService_pb2_grpc as core_grpc
from provender.serving.specs import ServingTable


class CoreSpecSource:
    def __init__(
        self, core_url: str, timeout_seconds: float = 5.0, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        """`credentials`: TLS to Core (None: plaintext)."""
        self._url = core_url
        self._timeout = timeout_seconds
        # Reconnect quickly once Core is back (gRPC's default backoff grows to two minutes).
        options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 2000)]
        self._channel = (
            grpc.secure_channel(core_url, credentials, options=options)
            if credentials is not None
            else grpc.insecure_channel(core_url, options=options)
        )
        self._tls = credentials is not None
        self._stub = core_grpc.CoreServiceStub(self._channel)

    def describe(self) -> str:
        return self._url + (" (TLS)" if self._tls else "")

    def close(self) -> None:
        self._channel.close()

    def list_tables(self) -> list[ServingTable]:
        try:
            projects = self._stub.ListProjects(core_pb2.ListProjectsRequest(), timeout=self._timeout).projects
            out: list[ServingTable] = []
            for project in projects:
                request = core_pb2.ListFeatureTablesRequest(
                    filter=core_pb2.ListFeatureTablesRequest.Filter(project=project)
                )
                tables = self._stub.ListFeatureTables(request, timeout=self._timeout).tables
                out.extend(ServingTable.from_proto(project, t) for t in tables)
            return out
        except grpc.RpcError as e:
            raise self._error("ListFeatureTables", e) from None

    def get_table(self, project: str, name: str) -> ServingTable | None:
        try:
            response = self._stub.GetFeatureTable(
                core_pb2.GetFeatureTableRequest(project=project, name=name), timeout=self._timeout
            )
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise self._error("GetFeatureTable", e) from None
        return ServingTable.from_proto(project, response.table)

    def _error(self, method: str, e: grpc.RpcError) -> Unavailable:
        return Unavailable(f"Core at {self._url}: {method} failed with {e.code().name}: {e.details()}")
