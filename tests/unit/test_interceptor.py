"""The interceptor maps typed errors to status codes and hides internals, tested in-process over gRPC."""

from __future__ import annotations

import threading

import grpc
import pytest
from prometheus_client import CollectorRegistry

from provender.kernel import errors
from provender.proto.feast.core import CoreService_pb2 as pb
from provender.proto.feast.core import CoreService_pb2_grpc, Entity_pb2
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


def _thread_answering(before_blocking_too: bool):
    """A server whose GetEntity answers with the name of the thread it ran on, marked to run small requests on
    the event loop; with `before_blocking_too`, the method first says it is about to wait."""
    from provender.server.inline import before_blocking

    class Threads(CoreService_pb2_grpc.CoreServiceServicer):
        def GetEntity(self, request, context):
            if before_blocking_too:
                before_blocking()
            name = threading.current_thread().name
            return pb.GetEntityResponse(entity=Entity_pb2.Entity(spec=Entity_pb2.EntitySpecV2(name=name)))

    def add(server):
        CoreService_pb2_grpc.add_CoreServiceServicer_to_server(Threads(), server)
        return "feast.core.CoreService"

    small = {"/feast.core.CoreService/GetEntity": lambda request: request.project == "small"}
    return start_server([add], port=0, host="127.0.0.1", inline=small)


@pytest.mark.parametrize(
    ("project", "before_blocking_too", "thread"),
    [("small", False, "grpc-loop"), ("large", False, "grpc_"), ("small", True, "grpc_")],
)
def test_small_requests_run_on_the_loop_and_leave_it_before_blocking(project, before_blocking_too, thread):
    running = _thread_answering(before_blocking_too)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            answer = CoreService_pb2_grpc.CoreServiceStub(channel).GetEntity(
                pb.GetEntityRequest(project=project), timeout=5
            )
        assert answer.entity.spec.name.startswith(thread)
    finally:
        running.stop(grace=0)
