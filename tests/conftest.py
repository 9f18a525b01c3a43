"""Fixtures shared by every test layer: a real Postgres for the whole session, a fresh database per test,
and an in-process Core on a free port."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """One PostgreSQL server for the session (fsync off), stopped at the end."""
    from provender.local.postgres import EmbeddedPostgres

    # Under /tmp directly: when root, the server runs as `postgres`, which must reach its data folder.
    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-pg-"))
    server = EmbeddedPostgres(data_dir, fast=True).start()
    yield server
    server.destroy()


@pytest.fixture
def database_url(postgres) -> str:
    """A new, empty database for one test (SQLAlchemy URL)."""
    return postgres.create_database(f"test_{os.getpid()}_{next(_db_counter)}")


@dataclass
class CoreHandle:
    url: str
    port: int
    database_url: str
    channel: grpc.Channel
    running: object

    def stop(self) -> None:
        self.running.stop(grace=1)


@pytest.fixture
def core_server(database_url) -> Iterator[CoreHandle]:
    """Core (CoreService and, later, JobService) in this process on a free port, on a fresh database."""
    from provender.core.app import CoreSettings, start_core

    running = start_core(CoreSettings(postgres_url=database_url, port=0, host="127.0.0.1"))
    url = f"127.0.0.1:{running.port}"
    channel = grpc.insecure_channel(url)
    handle = CoreHandle(
        url=url, port=running.port, database_url=database_url, channel=channel, running=running
    )
    yield handle
    channel.close()
    handle.stop()


@pytest.fixture
def core_stub(core_server):
    from provender.proto.feast.core import CoreService_pb2_grpc

    return CoreService_pb2_grpc.CoreServiceStub(core_server.channel)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[object]:
    """One private Redis for the session (nothing persisted), stopped at the end."""
    from provender.local.redis import EmbeddedRedis

    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-redis-"))
    server = EmbeddedRedis(data_dir).start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def redis(redis_server) -> Iterator[object]:
    """A client of the session's Redis, emptied before the test."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[object]:
    """One private Redis Cluster of 3 primaries on loopback for the session, stopped at the end."""
    from provender.local.redis import EmbeddedRedisCluster

    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-cluster-"))
    cluster = EmbeddedRedisCluster(data_dir, masters=3).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def cluster_client(redis_cluster) -> Iterator[object]:
    """A cluster client of the session's cluster, emptied (and its command statistics reset) before the test."""
    import redis as redis_py

    client = redis_py.RedisCluster(
        startup_nodes=[redis_py.cluster.ClusterNode("127.0.0.1", n.port) for n in redis_cluster.nodes]
    )
    client.flushall(target_nodes=redis_py.RedisCluster.PRIMARIES)
    for node in redis_cluster.nodes:
        node.client().config_resetstat()
    yield client
    client.close()
