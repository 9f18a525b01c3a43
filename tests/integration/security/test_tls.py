"""TLS on every gRPC server, as users and operators run it: Core (and its JobService port) and Serving with
--tls-cert/--tls-key, Serving calling Core over TLS, our SDK with Feast 0.9's SSL options, mutual TLS with
--tls-client-ca, a certificate rotated in place and served without a restart, and /metrics over HTTPS."""

from __future__ import annotations

import os
import shutil
import ssl
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from provender import Client, Entity, Feature, FeatureTable, FileSource, ValueType
from provender.core.app import CoreSettings, start_core
from provender.local.ports import free_port
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import CoreService_pb2_grpc as core_grpc
from provender.server.metrics import serve_metrics
from tests.tls import TestCA, tls_platform


def _table(base: Path) -> FeatureTable:
    return FeatureTable(
        name="driver_hourly",
        entities=["driver_id"],
        features=[Feature("trips", ValueType.INT64)],
        batch_source=FileSource(event_timestamp_column="ts", file_url=(base / "src").as_uri()),
        max_age=timedelta(hours=1),
    )


def test_sdk_core_jobservice_and_serving_over_tls(postgres, redis_server, tmp_path):
    ca = TestCA(tmp_path / "ca")
    with tls_platform(postgres, redis_server, tmp_path, ca) as urls:
        core, serving = urls["core"], urls["serving"]
        client = Client(
            core_url=core,
            serving_url=serving,
            core_enable_ssl=True,
            core_server_ssl_cert=str(ca.path),
            serving_enable_ssl=True,
            serving_server_ssl_cert=str(ca.path),
        )
        client.apply([Entity("driver_id", ValueType.INT64), _table(tmp_path)])
        assert [t.name for t in client.list_feature_tables()] == ["driver_hourly"]
        assert client.list_jobs() == []  # the JobService on Core's port
        jobs = Client(
            core_url=core,
            job_service_url=urls["jobs"],
            core_enable_ssl=True,
            core_server_ssl_cert=str(ca.path),
            job_service_enable_ssl=True,
            job_service_server_ssl_cert=str(ca.path),
        )
        assert jobs.list_jobs() == []  # and on its own port
        # Serving learnt the table from Core over TLS: a known table, a key not written yet
        deadline = time.monotonic() + 10
        while True:
            try:
                online = client.get_online_features(["driver_hourly:trips"], [{"driver_id": 1}])
                break
            except Exception:
                assert time.monotonic() < deadline, "Serving never saw the table applied to Core"
                time.sleep(0.2)
        assert online.to_dict()["driver_hourly:trips"] == [None]

        plaintext = Client(core_url=core, serving_url=serving, timeout=3)
        with pytest.raises(Exception, match=r"(?i)unavailable|connect|ssl|handshake"):
            plaintext.list_feature_tables()
        untrusted = Client(
            core_url=core,
            core_enable_ssl=True,
            core_server_ssl_cert=str(TestCA(tmp_path / "other").path),
            timeout=3,
        )
        with pytest.raises(Exception, match=r"(?i)unavailable|certificate|handshake|ssl"):
            untrusted.list_feature_tables()


def _list_projects(address: str, credentials: grpc.ChannelCredentials) -> list[str]:
    with grpc.secure_channel(address, credentials) as channel:
        return list(
            core_grpc.CoreServiceStub(channel)
            .ListProjects(core_pb2.ListProjectsRequest(), timeout=3)
            .projects
        )


def test_a_rotated_certificate_is_served_without_a_restart(postgres, redis_server, tmp_path):
    """cert-manager replaces the mounted files; the next handshake uses the new certificate."""
    first, second = TestCA(tmp_path / "first"), TestCA(tmp_path / "second")
    live = tmp_path / "live"
    live.mkdir()
    pair = first.issue("server", live)
    running = start_core(
        CoreSettings(
            postgres_url=postgres.create_database(f"tls_rotate_{os.getpid()}_{time.monotonic_ns()}"),
            port=0,
            host="127.0.0.1",
            tls_cert=str(pair.cert),
            tls_key=str(pair.key),
        )
    )
    try:
        address = f"127.0.0.1:{running.port}"
        trusts_second = grpc.ssl_channel_credentials(root_certificates=second.path.read_bytes())
        assert "default" in _list_projects(address, grpc.ssl_channel_credentials(first.path.read_bytes()))
        with pytest.raises(grpc.RpcError):
            _list_projects(address, trusts_second)
        rotated = second.issue("rotated", tmp_path / "second")
        shutil.copy(rotated.key, live / "server-key.pem.new")
        shutil.copy(rotated.cert, live / "server.pem.new")
        os.replace(live / "server-key.pem.new", pair.key)
        os.replace(live / "server.pem.new", pair.cert)
        assert "default" in _list_projects(address, trusts_second)
    finally:
        running.stop(grace=1)


def test_mutual_tls_asks_clients_for_a_certificate_of_the_ca(postgres, redis_server, tmp_path):
    """--tls-client-ca: a client without a certificate of that CA is refused; Serving presents its own."""
    ca = TestCA(tmp_path / "ca")
    with tls_platform(postgres, redis_server, tmp_path, ca, tls_client_ca=str(ca.path)) as urls:
        core = urls["core"]
        roots = ca.path.read_bytes()
        with pytest.raises(grpc.RpcError):
            _list_projects(core, grpc.ssl_channel_credentials(root_certificates=roots))
        stranger = TestCA(tmp_path / "stranger").issue("client")
        with pytest.raises(grpc.RpcError):
            _list_projects(
                core,
                grpc.ssl_channel_credentials(roots, stranger.key.read_bytes(), stranger.cert.read_bytes()),
            )
        client = ca.issue("client")
        credentials = grpc.ssl_channel_credentials(roots, client.key.read_bytes(), client.cert.read_bytes())
        assert "default" in _list_projects(core, credentials)
        # Serving reaches Core with its own certificate: an unknown table is Core's answer, not Core unreachable
        client = Client(
            serving_url=urls["serving"], serving_enable_ssl=True, serving_server_ssl_cert=str(ca.path)
        )
        with pytest.raises(Exception, match=r"does not exist|not found|unknown"):
            client.get_online_features(["ghost:x"], [{"driver_id": 1}])


def test_metrics_over_https(tmp_path):
    ca = TestCA(tmp_path / "ca")
    pair = ca.issue("metrics")
    from provender.server.tls import ServerTls

    port = free_port()
    registry = CollectorRegistry()
    serve_metrics(port, "127.0.0.1", registry, tls=ServerTls(pair.cert, pair.key))
    context = ssl.create_default_context(cafile=str(ca.path))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context, timeout=5) as reply:
        assert reply.status == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
