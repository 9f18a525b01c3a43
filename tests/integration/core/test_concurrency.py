"""Concurrent applies of one table: every change is kept, revisions strictly increase."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from provender.proto.feast.core import CoreService_pb2 as pb
from provender.proto.feast.core import CoreService_pb2_grpc
from tests import factories as f

WRITERS = 20
APPLIES = 50


def test_twenty_writers_fifty_applies_lose_no_update(core_server, core_stub):
    core_stub.ApplyEntity(pb.ApplyEntityRequest(spec=f.entity()))
    first = core_stub.ApplyFeatureTable(pb.ApplyFeatureTableRequest(table_spec=f.table())).table.meta.revision

    def writer(i: int) -> list[int]:
        # A channel per writer: separate HTTP/2 connections, as separate clients would have.
        with grpc.insecure_channel(core_server.url) as channel:
            stub = CoreService_pb2_grpc.CoreServiceStub(channel)
            revisions = []
            for j in range(APPLIES):
                # Each apply differs from every other one, so each must become a revision of its own.
                spec = f.table(**{f"writer_{i}": str(j)})
                table = stub.ApplyFeatureTable(pb.ApplyFeatureTableRequest(table_spec=spec)).table
                assert table.spec.labels == {f"writer_{i}": str(j)}
                revisions.append(table.meta.revision)
            return revisions

    with ThreadPoolExecutor(WRITERS) as pool:
        per_writer = list(pool.map(writer, range(WRITERS)))

    for revisions in per_writer:
        assert revisions == sorted(revisions) and len(set(revisions)) == APPLIES
    every = sorted(r for revisions in per_writer for r in revisions)
    assert every == list(range(first + 1, first + 1 + WRITERS * APPLIES))
    final = core_stub.GetFeatureTable(pb.GetFeatureTableRequest(name="driver_hourly")).table
    assert final.meta.revision == first + WRITERS * APPLIES


def test_concurrent_first_applies_of_one_entity_and_project(core_server):
    """Many clients creating the same new project and entity at once: all succeed, one object results."""

    def create(_: int) -> str:
        with grpc.insecure_channel(core_server.url) as channel:
            stub = CoreService_pb2_grpc.CoreServiceStub(channel)
            return stub.ApplyEntity(pb.ApplyEntityRequest(spec=f.entity(), project="fresh")).entity.spec.name

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(create, range(10))) == ["driver_id"] * 10
    stub = CoreService_pb2_grpc.CoreServiceStub(core_server.channel)
    req = pb.ListEntitiesRequest(filter=pb.ListEntitiesRequest.Filter(project="fresh"))
    assert [e.spec.name for e in stub.ListEntities(req).entities] == ["driver_id"]
