"""Fixtures for the Spark jobs on real servers: one local SparkSession per test module, a Redis server on
loopback (the embedded manager of provender.local.redis), all stopped at the end."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_py

from provender.local.redis import EmbeddedRedis

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Spark's Python workers import provender too


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """A local SparkSession for one test module (small: 2 cores, few shuffle partitions, no UI)."""
    from pyspark.sql import SparkSession

    from provender.jobs.sources import SESSION_CONF

    session = (
        SparkSession.builder.master("local[2]")
        .appName("provender-jobs-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config(map=SESSION_CONF)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[EmbeddedRedis]:
    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-jobs-redis-"))
    server = EmbeddedRedis(data_dir).start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def redis(redis_server: EmbeddedRedis) -> Iterator[redis_py.Redis]:
    """A client of the module's Redis, emptied before the test."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


def dump_redis(client: redis_py.Redis) -> dict[bytes, tuple[dict[bytes, bytes], int]]:
    """Every key's raw hash and its EXPIRETIME (-1: none)."""
    return {key: (client.hgetall(key), client.expiretime(key)) for key in client.scan_iter(count=1000)}
