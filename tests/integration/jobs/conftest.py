"""Fixtures for the Spark jobs on real servers: one local SparkSession per test module (Redis, and the Redis
Cluster, are the root conftest's)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import redis as redis_py

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


def dump_redis(client: redis_py.Redis) -> dict[bytes, tuple[dict[bytes, bytes], int]]:
    """Every key's raw hash and its EXPIRETIME (-1: none)."""
    return {key: (client.hgetall(key), client.expiretime(key)) for key in client.scan_iter(count=1000)}
