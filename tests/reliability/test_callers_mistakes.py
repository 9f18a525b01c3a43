"""Callers' mistakes at the edges of what protobuf can carry are INVALID_ARGUMENT naming the field, never
INTERNAL (README: INTERNAL means a bug of ours): times outside what a Timestamp holds, durations outside what a
Duration holds, and names long enough that echoing them whole would exceed gRPC's limits on a message's details."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provender.kernel.timestamps import MAX_DURATION_SECONDS, MAX_SECONDS, MIN_SECONDS
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast_spark.api import JobService_pb2 as jobs_pb2
from provender.proto.feast_spark.api import JobService_pb2_grpc as jobs_grpc
from tests import factories as f

EDGES = st.one_of(
    st.sampled_from([MIN_SECONDS - 1, MAX_SECONDS + 1, -(2**63), 2**63 - 1, 2**62, -(2**62)]),
    st.integers(-(2**63), 2**63 - 1),
)


@pytest.fixture
def seeded(core_stub):
    core_stub.ApplyEntity(core_pb2.ApplyEntityRequest(spec=f.entity()))
    core_stub.ApplyFeatureTable(core_pb2.ApplyFeatureTableRequest(table_spec=f.table()))
    return core_stub


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seconds=EDGES, nanos=st.integers(-(2**31), 2**31 - 1), field=st.sampled_from(["start_date", "end_date"])
)
def test_ingestion_dates_outside_a_timestamp_are_invalid_argument(core_server, seeded, seconds, nanos, field):
    if MIN_SECONDS <= seconds <= MAX_SECONDS and 0 <= nanos < 1_000_000_000:
        nanos = -1  # keep to the edges: a valid time would start a job
    request = jobs_pb2.StartOfflineToOnlineIngestionJobRequest(project="default", table_name="driver_hourly")
    getattr(request, field).seconds, getattr(request, field).nanos = seconds, nanos
    with pytest.raises(grpc.RpcError) as e:
        jobs_grpc.JobServiceStub(core_server.channel).StartOfflineToOnlineIngestionJob(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    assert e.value.details().startswith(f"{field}: ") and "0001-01-01 and 9999-12-31" in e.value.details()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=st.integers(-(2**63), 2**63 - 1), nanos=st.integers(-(2**31), 2**31 - 1))
def test_a_max_age_outside_a_duration_is_invalid_argument(core_server, seeded, seconds, nanos):
    table = f.table("edges")
    table.max_age.seconds, table.max_age.nanos = seconds, nanos
    valid = 0 <= seconds <= MAX_DURATION_SECONDS and 0 <= nanos < 1_000_000_000
    try:
        seeded.ApplyFeatureTable(core_pb2.ApplyFeatureTableRequest(table_spec=table), timeout=10)
        assert valid, (seconds, nanos)
    except grpc.RpcError as e:
        assert not valid and e.code() == grpc.StatusCode.INVALID_ARGUMENT, (seconds, nanos, e.details())
        assert e.details().startswith("table_spec.max_age: ")


def test_long_names_are_not_echoed_whole(seeded, core_server):
    """A 100 kB name is refused with a short message (gRPC drops details over ~16 kB and answers
    RESOURCE_EXHAUSTED instead of the status meant)."""
    name = "x" * 100_000
    for call, request in (
        (seeded.GetFeatureTable, core_pb2.GetFeatureTableRequest(project="default", name=name)),
        (seeded.GetEntity, core_pb2.GetEntityRequest(project=name, name="driver_id")),
        (
            jobs_grpc.JobServiceStub(core_server.channel).GetJob,
            jobs_pb2.GetJobRequest(job_id=name),
        ),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call(request, timeout=10)
        assert e.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (
            e.value.details()
        )
        assert len(e.value.details()) < 600, len(e.value.details())


@pytest.mark.parametrize(
    ("what", "field"),
    [
        ("a 20 MB entity description", "spec"),
        ("40 MB of table labels", "table_spec"),
        ("a 100 kB description", "spec.description"),
        ("101 labels", "table_spec.labels"),
        ("a 5,000-character label value", "table_spec.labels['k']"),
    ],
)
def test_oversized_registry_values_are_refused_with_the_limit(core_stub, what, field):
    """Issue 15: two tables with 40 MB of labels broke listing their project; Core stored a 20 MB description."""
    if what == "a 20 MB entity description":
        request = core_pb2.ApplyEntityRequest(spec=f.entity())
        request.spec.description = "d" * 20_000_000
        call = core_stub.ApplyEntity
    elif what == "a 100 kB description":
        request = core_pb2.ApplyEntityRequest(spec=f.entity())
        request.spec.description = "d" * 100_000
        call = core_stub.ApplyEntity
    else:
        core_stub.ApplyEntity(core_pb2.ApplyEntityRequest(spec=f.entity()))
        labels = {
            "40 MB of table labels": {f"k{i}": "v" * 4000 for i in range(10_000)},
            "101 labels": {f"k{i}": "v" for i in range(101)},
            "a 5,000-character label value": {"k": "v" * 5000},
        }[what]
        request = core_pb2.ApplyFeatureTableRequest(table_spec=f.table(**labels))
        call = core_stub.ApplyFeatureTable
    with pytest.raises(grpc.RpcError) as e:
        call(request, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()[:300]
    assert e.value.details().startswith(f"{field}: ") and "at most" in e.value.details(), e.value.details()[
        :300
    ]
