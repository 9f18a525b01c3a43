"""Postgres going away and coming back: Core says UNAVAILABLE meanwhile and recovers without a restart."""

from __future__ import annotations

import tempfile
from pathlib import Path

import grpc
import pytest

from provender.core.app import CoreSettings, start_core
from provender.local.postgres import EmbeddedPostgres
from provender.proto.feast.core import CoreService_pb2 as pb
from provender.proto.feast.core import CoreService_pb2_grpc
from tests import factories as f


@pytest.fixture
def own_postgres():
    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-pg-restart-"))
    # Durable settings: the test stops Postgres abruptly, which must not lose committed transactions.
    server = EmbeddedPostgres(data_dir, fast=False).start()
    yield server
    server.destroy()


def test_core_recovers_after_postgres_restart(own_postgres):
    running = start_core(CoreSettings(postgres_url=own_postgres.url(), port=0, host="127.0.0.1"))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = CoreService_pb2_grpc.CoreServiceStub(channel)
            stub.ApplyEntity(pb.ApplyEntityRequest(spec=f.entity()))

            own_postgres.stop(mode="immediate")
            with pytest.raises(grpc.RpcError) as info:
                stub.GetEntity(pb.GetEntityRequest(name="driver_id"), timeout=20)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "Postgres" in info.value.details()

            own_postgres.start()
            got = stub.GetEntity(pb.GetEntityRequest(name="driver_id"), timeout=20).entity
            assert got.spec == f.entity()
            stub.ApplyEntity(pb.ApplyEntityRequest(spec=f.entity("rider_id")))
    finally:
        running.stop(grace=1)
