"""Fixtures for Serving on real servers (Redis and the Redis Cluster are the root conftest's), Serving in
this process on a free port, backed by the in-process Core of the root conftest."""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from provender.local.redis import EmbeddedRedis
from provender.proto.feast.serving import ServingService_pb2_grpc
from provender.proto.provender.serving import ColumnarServing_pb2_grpc
from provender.serving.app import ServingApp, ServingSettings, start_serving


@pytest.fixture(scope="session")
def redis_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="provender-test-redis-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_serving_at(core_server) -> Iterator[Callable[..., ServingApp]]:
    """Start Serving in this process against a Redis URL and the test's Core; every one is stopped after."""
    started: list[ServingApp] = []

    def start(redis_url: str, **overrides: object) -> ServingApp:
        settings = ServingSettings(
            redis_url=redis_url, core_url=core_server.url, port=0, host="127.0.0.1", spec_refresh_seconds=0.5
        )
        for key, value in overrides.items():
            setattr(settings, key, value)
        app = start_serving(settings, registry=CollectorRegistry())
        started.append(app)
        # as `provender serving` does after start: what exists now (here the whole test process: pytest, and
        # pyspark when the jobs' tests ran first) is out of the collector's sight, so that a full collection
        # cannot pause a call for tens of milliseconds (the 100 ms UNAVAILABLE tests would see it)
        gc.collect()
        gc.freeze()
        return app

    yield start
    for app in started:
        app.stop(grace=1)
    gc.unfreeze()


@pytest.fixture
def serving(start_serving_at, redis_server: EmbeddedRedis, redis) -> ServingApp:
    """Serving on the session's (emptied) Redis and the test's Core."""
    return start_serving_at(redis_server.url)


@pytest.fixture
def channel_to() -> Iterator[Callable[[ServingApp], grpc.Channel]]:
    channels: list[grpc.Channel] = []

    def connect(app: ServingApp) -> grpc.Channel:
        channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
        channels.append(channel)
        return channel

    yield connect
    for c in channels:
        c.close()


@pytest.fixture
def serving_stub(serving: ServingApp, channel_to) -> ServingService_pb2_grpc.ServingServiceStub:
    return ServingService_pb2_grpc.ServingServiceStub(channel_to(serving))


@pytest.fixture
def columnar_stub(serving: ServingApp, channel_to) -> ColumnarServing_pb2_grpc.ColumnarServingServiceStub:
    return ColumnarServing_pb2_grpc.ColumnarServingServiceStub(channel_to(serving))
