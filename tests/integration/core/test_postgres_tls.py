"""Core's registry over TLS to Postgres, as libpq does it: `?sslmode=verify-full&sslrootcert=<ca.pem>` in
--postgres-url. Against a Postgres serving TLS with a certificate of the test's CA, Core migrates, applies and
lists with every connection encrypted (pg_stat_ssl); trusting another CA, Core refuses to start, naming the
cause."""

from __future__ import annotations

import grpc
import psycopg
import pytest

from provender.core.app import CoreSettings, start_core
from provender.kernel.errors import Unavailable
from provender.local.postgres import EmbeddedPostgres
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import CoreService_pb2_grpc as core_grpc
from tests import factories as f
from tests.tls import TestCA


def test_core_talks_to_postgres_over_verified_tls(tmp_path_factory):
    base = tmp_path_factory.mktemp("pg-tls")
    ca = TestCA(base / "ca")
    pair = ca.issue("postgres")
    server = EmbeddedPostgres(
        base / "pg",
        fast=True,
        settings={"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"},
    )
    server.put(pair.cert, "server.crt")
    server.put(pair.key, "server.key")
    server.start()
    try:
        url = f"{server.url()}?sslmode=verify-full&sslrootcert={ca.path}"
        running = start_core(CoreSettings(postgres_url=url, port=0, host="127.0.0.1"))
        try:
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                core = core_grpc.CoreServiceStub(channel)
                core.ApplyEntity(core_pb2.ApplyEntityRequest(spec=f.entity()))
                core.ApplyFeatureTable(core_pb2.ApplyFeatureTableRequest(table_spec=f.table()))
                listed = core.ListFeatureTables(core_pb2.ListFeatureTablesRequest())
                assert [t.spec.name for t in listed.tables] == ["driver_hourly"]
            with psycopg.connect(server.libpq_url()) as admin:  # plaintext is still allowed: check Core's
                rows = admin.execute(
                    "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                    "WHERE a.datname = 'provender' AND a.pid <> pg_backend_pid()"
                ).fetchall()
            assert rows and all(ssl for (ssl,) in rows), rows
        finally:
            running.stop(grace=1)

        other = TestCA(base / "other-ca", name="Another CA")
        with pytest.raises(Unavailable, match="certificate verify failed"):
            start_core(
                CoreSettings(
                    postgres_url=f"{server.url()}?sslmode=verify-full&sslrootcert={other.path}",
                    port=0,
                    host="127.0.0.1",
                )
            )
    finally:
        server.destroy()
