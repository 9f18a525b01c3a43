"""provender.core.ClientSupportService over gRPC: what our SDK and Serving ask Core beyond Feast 0.9 (client
defaults, job reports, the registry's revision)."""

from __future__ import annotations

import json
from typing import Any

import grpc

from provender.core.jobs.controller import JobController
from provender.proto.provender.core import ClientSupport_pb2 as pb
from provender.proto.provender.core import ClientSupport_pb2_grpc
from provender.server.runner import Registration


class ClientSupportServicer(ClientSupport_pb2_grpc.ClientSupportServiceServicer):
    def __init__(self, controller: JobController, staging_location: str) -> None:
        self.controller = controller
        self.staging_location = staging_location
        self.registry = controller.registry

    def GetClientDefaults(self, request: Any, context: grpc.ServicerContext) -> pb.GetClientDefaultsResponse:
        return pb.GetClientDefaultsResponse(staging_location=self.staging_location)

    def GetJobReport(self, request: Any, context: grpc.ServicerContext) -> pb.GetJobReportResponse:
        summary = self.controller.report(request.job_id)
        return pb.GetJobReportResponse(summary_json=json.dumps(summary, sort_keys=True) if summary else "")

    def GetRegistryRevision(
        self, request: Any, context: grpc.ServicerContext
    ) -> pb.GetRegistryRevisionResponse:
        return pb.GetRegistryRevisionResponse(revision=self.registry.revision())


def register(servicer: ClientSupportServicer) -> Registration:
    def add(server: grpc.Server) -> str:
        ClientSupport_pb2_grpc.add_ClientSupportServiceServicer_to_server(servicer, server)
        return pb.DESCRIPTOR.services_by_name["ClientSupportService"].full_name

    return add
