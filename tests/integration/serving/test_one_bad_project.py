"""One project Core cannot list (a stored spec it cannot read) must not stop Serving seeing the changes of every
other project: its reload keeps that project's last listing and takes the rest."""

from __future__ import annotations

import time

import grpc
import pytest
from sqlalchemy import create_engine, text

from tests.factories import entity, table
from tests.integration.serving.online_store import apply, request


def test_a_project_core_cannot_list_does_not_stop_reloads_of_the_others(
    serving, serving_stub, core_stub, core_server
) -> None:
    from provender.proto.feast.core import CoreService_pb2 as core_pb2

    apply(core_stub, "good", [entity("driver_id")], [table("driver_hourly")])
    apply(core_stub, "broken", [entity("driver_id")], [table("driver_hourly")])
    lookup = request("good", ["driver_hourly:trips"], [{"driver_id": 1}])
    serving_stub.GetOnlineFeaturesV2(lookup)  # known to Serving now
    engine = create_engine(core_server.database_url)
    with engine.begin() as conn:  # a stored spec Core can no longer read: its project cannot be listed
        conn.execute(text("UPDATE feature_tables SET spec = '{\"features\": 7}' WHERE project = 'broken'"))
    engine.dispose()
    with pytest.raises(grpc.RpcError):
        core_stub.ListFeatureTables(
            core_pb2.ListFeatureTablesRequest(
                filter=core_pb2.ListFeatureTablesRequest.Filter(project="broken")
            )
        )
    core_stub.DeleteFeatureTable(core_pb2.DeleteFeatureTableRequest(project="good", name="driver_hourly"))
    deadline = time.monotonic() + 10
    while True:  # the deletion reaches Serving with its next reload, the broken project notwithstanding
        try:
            serving_stub.GetOnlineFeaturesV2(lookup)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e.details()
            break
        assert time.monotonic() < deadline, "Serving never saw the table deleted"
        time.sleep(0.2)
