"""Fixtures for stream ingestion tests: a folder for a test's own broker. The session's broker (`kafka_broker`)
and Spark's Kafka jars (`kafka_jars`) are the root conftest's, shared with the compat tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing  # noqa: F401 (the stream tests import it from here)


@pytest.fixture
def kafka_dir() -> Iterator[Path]:
    """An empty folder for a test's own broker, removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="provender-test-kafka-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
