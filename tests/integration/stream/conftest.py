"""Fixtures for stream ingestion on a real Apache Kafka: one single-node KRaft broker for the session
(`provender.local.kafka.EmbeddedKafka`, from the jars `make jvm-deps` fetches into .deps/kafka/libs).

Without those jars (or the confluent-kafka client) the Kafka tests skip, saying why; in CI (CI=true) they fail
instead, so that a CI run cannot pass by skipping them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provender.local.kafka import EmbeddedKafka, KafkaNotAvailable, find_kafka_libs


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Skip the test, or fail it in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the Kafka tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """The Kafka broker's jars (skip, or fail in CI, when `make jvm-deps` has not fetched them)."""
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        missing("the confluent-kafka client is not installed (pip install confluent-kafka)")
    try:
        return find_kafka_libs()
    except KafkaNotAvailable as e:
        missing(str(e))
        raise  # not reached: missing() skips or fails


@pytest.fixture
def kafka_dir() -> Iterator[Path]:
    """An empty folder for a test's own broker, removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="provender-test-kafka-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_broker(kafka_libs) -> Iterator[EmbeddedKafka]:
    """One Kafka broker for the session on a free loopback port (`.bootstrap_servers`), stopped at the end."""
    data_dir = Path(tempfile.mkdtemp(prefix="provender-test-kafka-"))
    broker = EmbeddedKafka(data_dir, libs=kafka_libs).start()
    yield broker
    broker.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
