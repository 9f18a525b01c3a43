"""The audit log: every write to Core (registry writes, job starts and cancels, under both JobService names) is
one JSON line on the `provender.audit` logger with who, project, object and outcome, failed writes included;
reads are not audited. Under mutual TLS, who is the client certificate's name."""

from __future__ import annotations

import json
import logging

import grpc
import pytest

from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import CoreService_pb2_grpc as core_grpc
from provender.proto.feast.core import JobService_pb2 as legacy_pb2
from provender.proto.feast.core import JobService_pb2_grpc as legacy_grpc
from provender.proto.feast_spark.api import JobService_pb2 as spark_pb2
from provender.proto.feast_spark.api import JobService_pb2_grpc as spark_grpc
from provender.server.logs import JsonFormatter
from tests import factories as f
from tests.tls import TestCA, tls_platform


def _audited(caplog) -> list[dict]:
    """The audit records as the JSON lines Core writes."""
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "provender.audit"]


def test_every_write_is_one_audit_line_with_who_what_and_outcome(postgres, redis_server, tmp_path, caplog):
    ca = TestCA(tmp_path / "ca")
    alice = ca.issue("alice")
    with tls_platform(postgres, redis_server, tmp_path, ca, tls_client_ca=str(ca.path)) as urls:
        credentials = grpc.ssl_channel_credentials(
            ca.path.read_bytes(), alice.key.read_bytes(), alice.cert.read_bytes()
        )
        with (
            grpc.secure_channel(urls["core"], credentials) as channel,
            caplog.at_level(logging.INFO, "provender.audit"),
        ):
            core = core_grpc.CoreServiceStub(channel)
            core.CreateProject(core_pb2.CreateProjectRequest(name="fraud"))
            core.ApplyEntity(core_pb2.ApplyEntityRequest(project="fraud", spec=f.entity("driver_id")))
            core.ApplyFeatureTable(
                core_pb2.ApplyFeatureTableRequest(project="fraud", table_spec=f.table("driver_hourly"))
            )
            with pytest.raises(grpc.RpcError):  # a write refused is audited too
                core.ApplyFeatureTable(
                    core_pb2.ApplyFeatureTableRequest(project="fraud", table_spec=f.table("bad name"))
                )
            core.ListFeatureTables(  # a read: not audited
                core_pb2.ListFeatureTablesRequest(
                    filter=core_pb2.ListFeatureTablesRequest.Filter(project="fraud")
                )
            )
            core.DeleteFeatureTable(core_pb2.DeleteFeatureTableRequest(project="fraud", name="driver_hourly"))
            with pytest.raises(grpc.RpcError):
                spark_grpc.JobServiceStub(channel).CancelJob(
                    spark_pb2.CancelJobRequest(job_id="ingest-0123456789abcdef")
                )
            with pytest.raises(grpc.RpcError):
                legacy_grpc.JobServiceStub(channel).StartStreamToOnlineIngestionJob(
                    legacy_pb2.StartStreamToOnlineIngestionJobRequest(
                        project="fraud", table_name="driver_hourly"
                    )
                )
            core.ArchiveProject(core_pb2.ArchiveProjectRequest(name="fraud"))
    lines = _audited(caplog)
    assert [(a["rpc"], a["project"], a["object"], a["outcome"]) for a in lines] == [
        ("CreateProject", "fraud", "project", "OK"),
        ("ApplyEntity", "fraud", "entity driver_id", "OK"),
        ("ApplyFeatureTable", "fraud", "feature table driver_hourly", "OK"),
        ("ApplyFeatureTable", "fraud", "feature table bad name", "INVALID_ARGUMENT"),
        ("DeleteFeatureTable", "fraud", "feature table driver_hourly", "OK"),
        ("CancelJob", "", "job ingest-0123456789abcdef", "NOT_FOUND"),
        ("StartStreamToOnlineIngestionJob", "fraud", "stream of table driver_hourly", "NOT_FOUND"),
        ("ArchiveProject", "fraud", "project", "OK"),
    ]
    assert {a["principal"] for a in lines} == {"cert:alice"}
    assert all(a["logger"] == "provender.audit" and a["msg"] == "audit" for a in lines)
