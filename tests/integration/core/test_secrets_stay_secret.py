"""A platform whose Redis has a password runs ingestion and retrieval jobs (Core's local launcher, the warm Spark
driver): the jobs reach Redis, and the password is nowhere it could be read by someone who may read the
platform's files and records: Core's job records in Postgres, the jobs' argument files, logs and folders, Core's
and Serving's log records, the Prometheus metrics, and the command line of every process on the machine. (The
jobs' drivers have it in their environment, readable by their own user only: that is how it reaches them.)"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy
from prometheus_client import REGISTRY, generate_latest

from provender import Client, Entity, Feature, FeatureTable, FileSource, SparkJobStatus, ValueType
from provender.local.redis import EmbeddedRedis
from tests.conftest import running_platform


class _PasswordRedis:
    """An EmbeddedRedis with --requirepass, its URL carrying the password (as running_platform expects .url)."""

    def __init__(self, server: EmbeddedRedis, password: str) -> None:
        self.server, self.url = server, f"redis://:{password}@127.0.0.1:{server.port}/0"


def _found_in_files(root: Path, secret: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def _found_in_command_lines(secret: bytes) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if secret in cmdline.read_bytes():
                found.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200])
        except OSError:  # the process ended
            continue
    return found


def test_the_redis_password_is_in_no_record_file_log_metric_or_command_line(postgres, tmp_path, caplog):
    password = f"pw-{uuid.uuid4().hex}"
    secret = password.encode()
    server = EmbeddedRedis(tmp_path / "redis", extra_args=["--requirepass", password]).start()
    try:
        with (
            caplog.at_level(logging.DEBUG),
            running_platform(postgres, _PasswordRedis(server, password), tmp_path, "secrets") as platform,
        ):
            client = Client(core_url=platform.core_url, serving_url=platform.serving_url, project="secrets")
            table = FeatureTable(
                name="driver_stats",
                entities=["driver_id"],
                features=[Feature("trips", ValueType.INT64)],
                batch_source=FileSource(
                    event_timestamp_column="event_timestamp", file_url=(tmp_path / "stats").as_uri()
                ),
                max_age=timedelta(days=1),
            )
            client.apply([Entity("driver_id", ValueType.INT64), table])
            now = datetime.now(UTC).replace(microsecond=0)
            rows = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [now, now], "trips": [5, 7]})
            client.ingest(table, rows)
            job = client.start_offline_to_online_ingestion(
                table, now - timedelta(days=1), now + timedelta(hours=1)
            )
            job.wait(progress=False)  # an ingestion job, through Core, into the Redis with a password
            assert job.get_status() is SparkJobStatus.COMPLETED, job.get_error_message()
            online = client.get_online_features(["driver_stats:trips"], [{"driver_id": 1}, {"driver_id": 2}])
            assert online.to_dict()["driver_stats:trips"] == [5, 7]  # the job authenticated
            entities = pd.DataFrame({"driver_id": [1], "event_timestamp": [now + timedelta(minutes=1)]})
            training = client.get_historical_features(["driver_stats:trips"], entities).to_df()
            assert training["driver_stats__trips"].tolist() == [5]

            # while everything still runs: the warm Spark driver, Core and Serving, the Redis itself
            assert _found_in_command_lines(secret) == []
            assert secret not in generate_latest(REGISTRY)
            engine = sqlalchemy.create_engine(platform.postgres_url)
            try:
                with engine.connect() as conn:
                    jobs = conn.execute(sqlalchemy.text("SELECT * FROM jobs")).fetchall()
            finally:
                engine.dispose()
            assert len(jobs) >= 2 and not any(password in str(tuple(job)) for job in jobs)
            time.sleep(0.5)
        logged = [str(r.__dict__) for r in caplog.records]
        assert logged and not [line for line in logged if password in line]
        assert _found_in_files(tmp_path / "launcher", secret) == []  # arguments, logs, handles of every job
        assert _found_in_files(tmp_path / "core-staging", secret) == []
    finally:
        server.stop()
