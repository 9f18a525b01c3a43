"""Core with --allowed-storage, as a client meets it: a table whose batch source lies elsewhere, a retrieval whose
entity file or output lies elsewhere, and a path that climbs out with `..`, are refused INVALID_ARGUMENT naming
the field and the allowed prefixes, before any job is recorded."""

from __future__ import annotations

import grpc
import pytest

from provender.core.app import CoreSettings, start_core
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import CoreService_pb2_grpc as core_grpc
from provender.proto.feast.core import DataSource_pb2
from provender.proto.feast_spark.api import JobService_pb2 as jobs_pb2
from provender.proto.feast_spark.api import JobService_pb2_grpc as jobs_grpc
from tests import factories as f


@pytest.fixture
def core(database_url, redis_server, tmp_path):
    running = start_core(
        CoreSettings(
            postgres_url=database_url,
            port=0,
            host="127.0.0.1",
            redis_url=redis_server.url,
            staging_location=(tmp_path / "staging").as_uri(),
            launcher_work_dir=str(tmp_path / "launcher"),
            allowed_storage=[(tmp_path / "lake").as_uri()],
        )
    )
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield channel, tmp_path
    running.stop(grace=1)


def _refused(call, request) -> str:
    with pytest.raises(grpc.RpcError) as e:
        call(request)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    return e.value.details()


def test_jobs_may_not_read_or_write_outside_the_allowed_storage(core):
    channel, base = core
    registry, jobs = core_grpc.CoreServiceStub(channel), jobs_grpc.JobServiceStub(channel)
    registry.ApplyEntity(core_pb2.ApplyEntityRequest(spec=f.entity()))
    for name, url in (
        ("passwords", "file:///etc/passwd"),
        ("escape", (base / "lake").as_uri() + "/../../etc"),
    ):
        table = f.table(name)
        table.batch_source.CopyFrom(f.file_source(url))
        registry.ApplyFeatureTable(core_pb2.ApplyFeatureTableRequest(table_spec=table))
        message = _refused(
            jobs.StartOfflineToOnlineIngestionJob,
            jobs_pb2.StartOfflineToOnlineIngestionJobRequest(project="default", table_name=name),
        )
        assert message.startswith(f"feature table {name}: batch_source.file_options.file_url: ")
        assert f"under one of {(base / 'lake').as_uri()}, {(base / 'staging').as_uri()}" in message

    inside = f.table("driver_hourly")
    inside.batch_source.CopyFrom(f.file_source((base / "lake" / "driver").as_uri()))
    registry.ApplyFeatureTable(core_pb2.ApplyFeatureTableRequest(table_spec=inside))
    entities = DataSource_pb2.DataSource(
        file_options=DataSource_pb2.DataSource.FileOptions(file_url="file:///root/entities.parquet")
    )
    message = _refused(
        jobs.GetHistoricalFeatures,
        jobs_pb2.GetHistoricalFeaturesRequest(feature_refs=["driver_hourly:trips"], entity_source=entities),
    )
    assert message.startswith("entity_source.file_options.file_url: 'file:///root/entities.parquet'")
    entities.file_options.file_url = (base / "lake" / "entities.parquet").as_uri()
    message = _refused(
        jobs.GetHistoricalFeatures,
        jobs_pb2.GetHistoricalFeaturesRequest(
            feature_refs=["driver_hourly:trips"],
            entity_source=entities,
            output_location="s3://somewhere/else",
        ),
    )
    assert message.startswith("output_location: 's3://somewhere/else'")
    assert list(jobs.ListJobs(jobs_pb2.ListJobsRequest(include_terminated=True)).jobs) == []
