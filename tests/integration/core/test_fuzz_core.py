"""Every RPC Core serves fuzzed with generated requests: no UNKNOWN or INTERNAL status, no stack trace in a
message, and a rejected request leaves the registry exactly as it was."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import create_engine, text

from provender.proto.feast.core import CoreService_pb2 as pb
from provender.proto.feast.core import JobService_pb2 as legacy_jobs_pb
from provender.proto.feast_spark.api import JobService_pb2 as jobs_pb
from provender.proto.provender.core import Access_pb2 as access_pb
from provender.proto.provender.core import ClientSupport_pb2 as support_pb
from tests import factories as f
from tests.proto_strategies import messages

SERVICES = [
    pb.DESCRIPTOR.services_by_name["CoreService"],
    jobs_pb.DESCRIPTOR.services_by_name["JobService"],
    legacy_jobs_pb.DESCRIPTOR.services_by_name["JobService"],
    support_pb.DESCRIPTOR.services_by_name["ClientSupportService"],
    access_pb.DESCRIPTOR.services_by_name["AccessService"],
]
METHODS = [(s.full_name, m.name) for s in SERVICES for m in s.methods]
EXAMPLES = 200


@pytest.fixture
def snapshot(core_server):
    """Everything the registry holds, read straight from Postgres (every column of every row)."""
    engine = create_engine(core_server.database_url)
    queries = [
        text(f"SELECT * FROM {t} ORDER BY 1, 2")
        for t in ("entities", "feature_tables", "jobs", "schedules", "access_bindings")
    ]
    queries.append(text("SELECT * FROM projects ORDER BY 1"))

    def take() -> tuple:
        with engine.connect() as conn:
            return tuple(tuple(tuple(r) for r in conn.execute(q)) for q in queries)

    yield take
    engine.dispose()


@pytest.fixture
def seeded_stub(core_stub):
    core_stub.ApplyEntity(pb.ApplyEntityRequest(spec=f.entity()))
    core_stub.ApplyEntity(pb.ApplyEntityRequest(spec=f.entity("customer_id"), project="fraud"))
    core_stub.ApplyFeatureTable(pb.ApplyFeatureTableRequest(table_spec=f.table()))
    core_stub.ApplyEntity(pb.ApplyEntityRequest(spec=f.entity(), project="archived_one"))
    core_stub.ArchiveProject(pb.ArchiveProjectRequest(name="archived_one"))
    return core_stub


@pytest.mark.parametrize(("service", "method"), METHODS)
def test_fuzzed_requests_get_clean_answers(core_server, seeded_stub, snapshot, service, method):
    """The registry holds an entity and one table (whose batch source has no data): fuzzed job requests that
    name it may start a job (which fails for lack of data), so for the JobService only rejected requests
    are checked for side effects, as for every RPC."""
    descriptor = next(s for s in SERVICES if s.full_name == service).methods_by_name[method]
    call = core_server.channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=lambda b: b,
    )
    seen_codes: set[str] = set()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(request=messages(descriptor.input_type))
    def check(request):
        before = snapshot()
        try:
            call(request, timeout=10)
            seen_codes.add("OK")
        except grpc.RpcError as e:
            seen_codes.add(e.code().name)
            assert e.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (request, e.details())
            assert "Traceback" not in e.details() and 'File "' not in e.details()
            assert e.details(), "a rejected request must say why"
            assert snapshot() == before, f"rejected {method} changed the registry: {request}"

    check()
    assert seen_codes, "no request was sent"


@pytest.mark.parametrize(("service", "method"), METHODS)
def test_bytes_that_are_not_the_request_are_invalid_argument(core_server, snapshot, service, method):
    """Raw bytes, as a broken or hostile client sends them: INVALID_ARGUMENT naming the message expected (grpc
    itself would answer INTERNAL), and nothing changes."""
    call = core_server.channel.unary_unary(
        f"/{service}/{method}", request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    before = snapshot()
    expected = (
        next(s for s in SERVICES if s.full_name == service).methods_by_name[method].input_type.full_name
    )
    # A field 1 of wire type 7 (no such type), a truncated varint, a length prefix past the end.
    for garbage in (b"\x0f\x01", b"\x08\xff\xff\xff", b"\x0a\x7fshort", b"\xff" * 12):
        with pytest.raises(grpc.RpcError) as e:
            call(garbage, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (garbage, e.value.details())
        assert (
            e.value.details()
            == f"request: '{len(garbage)} bytes' is not valid; expected a serialized {expected}"
        )
    assert snapshot() == before
