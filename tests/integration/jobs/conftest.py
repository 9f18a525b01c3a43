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


def dump_redis(client: redis_py.Redis | redis_py.RedisCluster) -> dict[bytes, tuple[dict[bytes, bytes], int]]:
    """Every key's raw hash and its expiry in Unix seconds (-1: none), of a Redis or a Redis Cluster.

    The expiry is read as Redis 6 can (EXPIRETIME is Redis 7's): the server's clock after the PTTLs plus each PTTL,
    rounded to the second; exact for the whole-second expiries EXPIREAT sets while the read takes under 0.5 s.
    """
    if isinstance(client, redis_py.RedisCluster):
        keys = list(client.scan_iter(count=1000, target_nodes=redis_py.RedisCluster.PRIMARIES))
    else:
        keys = list(client.scan_iter(count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
        pipe.pttl(key)
    replies = pipe.execute()
    seconds, micros = client.time()  # (a cluster's nodes share this machine's clock)
    now_ms = seconds * 1000 + micros / 1000
    return {
        key: (fields, -1 if ttl == -1 else round((now_ms + ttl) / 1000))
        for key, fields, ttl in zip(keys, replies[::2], replies[1::2], strict=True)
    }
