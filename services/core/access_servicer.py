"""provender.core.AccessService over gRPC: grant, revoke and list roles, and who the caller is."""

from __future__ import annotations

from typing import Any

import grpc

from provender.core.access.bindings import AccessBindings
from provender.kernel.timestamps import to_timestamp
from provender.proto.provender.core import Access_pb2 as pb
from provender.proto.provender.core import Access_pb2_grpc
from provender.server.access import Binding
from provender.server.principal import anonymous, current
from provender.server.runner import Registration


def binding_proto(b: Binding) -> pb.AccessBinding:
    out = pb.AccessBinding(
        project=b.project, principal=b.identity, role=str(b.role), source=b.source, granted_by=b.granted_by
    )
    if b.granted_at is not None:
        out.granted_at.CopyFrom(to_timestamp(b.granted_at))
    return out


class AccessServicer(Access_pb2_grpc.AccessServiceServicer):
    def __init__(self, bindings: AccessBindings) -> None:
        self.bindings = bindings

    def GrantAccess(self, request: Any, context: grpc.ServicerContext) -> pb.GrantAccessResponse:
        by = current() or anonymous(context.peer())
        binding = self.bindings.grant(request.project, request.principal, request.role, granted_by=by.id)
        return pb.GrantAccessResponse(binding=binding_proto(binding))

    def RevokeAccess(self, request: Any, context: grpc.ServicerContext) -> pb.RevokeAccessResponse:
        self.bindings.revoke(request.project, request.principal)
        return pb.RevokeAccessResponse()

    def ListAccessBindings(
        self, request: Any, context: grpc.ServicerContext
    ) -> pb.ListAccessBindingsResponse:
        return pb.ListAccessBindingsResponse(
            bindings=[binding_proto(b) for b in self.bindings.list(request.project)]
        )

    def WhoAmI(self, request: Any, context: grpc.ServicerContext) -> pb.WhoAmIResponse:
        who = current() or anonymous(context.peer())
        return pb.WhoAmIResponse(
            principal=who.id, identities=who.identities(), authenticated=who.authenticated
        )


def register(servicer: AccessServicer) -> Registration:
    def add(server: grpc.Server) -> str:
        Access_pb2_grpc.add_AccessServiceServicer_to_server(servicer, server)
        return pb.DESCRIPTOR.services_by_name["AccessService"].full_name

    return add
