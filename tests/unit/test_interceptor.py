"""The interceptor maps typed errors to status codes and hides internals, tested in-process over gRPC."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import CollectorRegistry

from provender.kernel import errors
from provender.proto.feast.core import CoreService_pb2 as pb
from provender.proto.feast.core import CoreService_pb2_grpc
from provender.server.metrics import RpcMetrics
from provender.server.runner import start_server


class Raising(CoreService_pb2_grpc.CoreServiceServicer):
    """Raises whatever the request's project names."""

    ERRORS = {
        "invalid": errors.InvalidArgument("spec.name", "1x", "a valid name"),
        "missing": errors.NotFound("entity", "ghost", "default"),
        "exists": errors.AlreadyExists("it exists"),
        "conflict": errors.Conflict("lost a race"),
        "state": errors.FailedPrecondition("archived"),
        "down": errors.Unavailable("Postgres is down"),
        "nope": errors.Unimplemented("not here"),
        "who": errors.Unauthenticated("no token"),
        "denied": errors.PermissionDenied("not yours"),
    }

    def GetEntity(self, request, context):
        if request.project == "bug":
            raise KeyError("secret internal detail")
        raise self.ERRORS[request.project]


@pytest.fixture
def stub_and_metrics():
    registry = CollectorRegistry()
    metrics = RpcMetrics(registry)

    def add(server):
        CoreService_pb2_grpc.add_CoreServiceServicer_to_server(Raising(), server)
        return "feast.core.CoreService"

    running = start_server([add], port=0, host="127.0.0.1", metrics=metrics)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield CoreService_pb2_grpc.CoreServiceStub(channel), registry
    channel.close()
    running.stop(grace=0)


@pytest.mark.parametrize("project", sorted(Raising.ERRORS))
def test_each_error_becomes_its_status(stub_and_metrics, project):
    stub, registry = stub_and_metrics
    expected = Raising.ERRORS[project]
    with pytest.raises(grpc.RpcError) as info:
        stub.GetEntity(pb.GetEntityRequest(project=project))
    assert info.value.code().name == expected.code.value
    assert info.value.details() == str(expected)
    labels = {
        "grpc_service": "feast.core.CoreService",
        "grpc_method": "GetEntity",
        "grpc_code": expected.code.value,
    }
    assert registry.get_sample_value("provender_grpc_requests_total", labels) == 1.0


def test_unexpected_exception_is_internal_without_details(stub_and_metrics):
    stub, _ = stub_and_metrics
    with pytest.raises(grpc.RpcError) as info:
        stub.GetEntity(pb.GetEntityRequest(project="bug"))
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in info.value.details() and "Traceback" not in info.value.details()
    assert "GetEntity" in info.value.details()


def test_unimplemented_method_stays_unimplemented(stub_and_metrics):
    stub, _ = stub_and_metrics
    with pytest.raises(grpc.RpcError) as info:
        stub.ListProjects(pb.ListProjectsRequest())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
