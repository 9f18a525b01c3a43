"""One error class per status code on both sides of the wire: what a servicer raises, the SDK raises again as the
same class, with the server's message."""

from __future__ import annotations

import grpc
import pytest

from provender.kernel import errors
from provender.server.runner import start_server

RAISED = {
    "InvalidArgument": lambda: errors.InvalidArgument("entity_rows[0]", "drivr_id", "an entity"),
    "NotFound": lambda: errors.NotFound("feature table", "ghost", "default"),
    "AlreadyExists": lambda: errors.AlreadyExists("project 'fraud' exists"),
    "FailedPrecondition": lambda: errors.FailedPrecondition("project 'old' is archived"),
    "Conflict": lambda: errors.Conflict("a concurrent apply won"),
    "Unavailable": lambda: errors.Unavailable("Redis at 127.0.0.1:1 is unreachable"),
    "Unimplemented": lambda: errors.Unimplemented("UpdateStore is not supported"),
    "Unauthenticated": lambda: errors.Unauthenticated("no token"),
    "PermissionDenied": lambda: errors.PermissionDenied("not in project 'fraud'"),
    "DeadlineExceeded": lambda: errors.DeadlineExceeded("the job did not start in time"),
    "Internal": lambda: errors.Internal("the registry returned a row without a spec"),
}


def _raise(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise RAISED[request.decode()]()


@pytest.fixture(scope="module")
def channel():
    def register(server: grpc.Server) -> str:
        handler = grpc.method_handlers_generic_handler(
            "test.Errors", {"Raise": grpc.unary_unary_rpc_method_handler(_raise)}
        )
        server.add_generic_rpc_handlers((handler,))
        return "test.Errors"

    running = start_server([register], port=0, host="127.0.0.1")
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        yield ch
    running.stop(grace=0)


@pytest.mark.parametrize("name", sorted(RAISED))
def test_the_client_raises_the_class_the_server_raised(channel, name):
    call = channel.unary_unary("/test.Errors/Raise")
    original = RAISED[name]()
    with pytest.raises(grpc.RpcError) as answer:
        call(name.encode(), timeout=5)
    assert answer.value.code().name == original.code.value
    again = errors.from_status(answer.value.code().name, answer.value.details())
    assert type(again) is type(original) and str(again) == str(original)


def test_except_not_found_catches_the_servers_not_found():
    with pytest.raises(errors.NotFound):
        raise errors.from_status("NOT_FOUND", "feature table 'ghost' does not exist in project 'default'")
    assert errors.RemoteNotFound is errors.NotFound and errors.RemoteInvalidArgument is errors.InvalidArgument
