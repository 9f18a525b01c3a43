"""The SDK's data half against a real Core (local Spark launcher), Serving and Redis, written the way a Feast 0.9
notebook is: Feast's client options, its job methods, a source without a created-timestamp column, and the
dtypes a user merges and trains on.

The Redis has a password, and the module's last test searches for it everywhere it could be read by someone who
may read the platform's files and records, after every job of the module ran: Core's job records in Postgres,
the jobs' argument files, logs and folders, Core's and Serving's log records, the Prometheus metrics, and the
command line of every process on the machine. (The jobs' drivers have it in their environment, readable by their
own user only: that is how it reaches them.)"""

from __future__ import annotations

import logging
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy
from prometheus_client import REGISTRY, generate_latest

from provender import (
    Client,
    Entity,
    Feature,
    FeatureTable,
    FileSource,
    SparkJobFailure,
    SparkJobStatus,
    ValueType,
    feast_options,
)
from provender.feast_options import ServerSideOption
from provender.kernel.errors import InvalidArgument
from provender.local.redis import EmbeddedRedis
from tests.conftest import running_platform

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
T0 = NOW - timedelta(hours=10)


PASSWORD = f"pw-{uuid.uuid4().hex}"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def platform(postgres, tmp_path_factory):
    """Core, Serving and a Redis with a password; every log record of the module kept."""
    base = tmp_path_factory.mktemp("sdk-jobs")
    server = EmbeddedRedis(base / "redis", extra_args=["--requirepass", PASSWORD]).start()
    redis = SimpleNamespace(url=f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")
    logs, root = _Records(), logging.getLogger()
    root.addHandler(logs)
    level, root.level = root.level, logging.DEBUG
    try:
        with running_platform(postgres, redis, base, "sdk_jobs") as p:
            yield {
                "core": p.core_url,
                "serving": p.serving_url,
                "base": base,
                "core_staging": p.staging_location,
                "postgres_url": p.postgres_url,
                "logs": logs.records,
            }
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
        server.stop()


@pytest.fixture(scope="module")
def loaded(platform):
    """A table whose batch source declares `created_timestamp` and never has it (Feast 0.9's own test data),
    ingested with the SDK; trips is missing for driver 1002."""
    client = Client(core_url=platform["core"], serving_url=platform["serving"], project="sdkjobs")
    table = FeatureTable(
        name="driver_stats",
        entities=["driver_id"],
        features=[Feature("conv_rate", ValueType.FLOAT), Feature("trips", ValueType.INT64)],
        batch_source=FileSource(
            event_timestamp_column="event_timestamp",
            created_timestamp_column="created_timestamp",
            file_url=(platform["base"] / "driver_stats").as_uri(),
        ),
        max_age=timedelta(days=1),
    )
    client.apply([Entity("driver_id", ValueType.INT64), table])
    rows = pd.DataFrame(
        {
            "driver_id": [1001, 1001, 1002],
            "event_timestamp": [T0, T0 + timedelta(hours=2), T0 + timedelta(hours=1)],
            "conv_rate": [0.25, 0.5, 0.75],
            "trips": pd.array([3, 4, None], dtype="Int64"),
        }
    )
    client.ingest(table, rows)
    return client, table


def test_every_feast09_client_option_is_accepted_and_server_settings_say_where_they_live(
    platform, monkeypatch
):
    monkeypatch.setattr(feast_options, "_noticed", set())  # notices are once per process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = Client(
            core_url=platform["core"],
            serving_url=platform["serving"],
            spark_launcher="k8s",
            spark_staging_location=(platform["base"] / "feast-staging").as_uri(),
            spark_k8s_namespace="spark-operator",
            redis_host="redis.example",
            historical_feature_output_location=(platform["base"] / "historical").as_uri(),
            grpc_connection_timeout=15,
            core_enable_ssl=False,
            telemetry=False,
        )
    notices = [str(w.message) for w in caught if issubclass(w.category, ServerSideOption)]
    assert len(notices) == 3 and all("set on the server in Provender" in n for n in notices)
    assert any("spark_launcher" in n and "--spark-launcher" in n for n in notices)
    assert client.config.timeout == 15
    assert client.staging_location() == (platform["base"] / "feast-staging").as_uri()
    assert client.list_projects() is not None  # and it talks to Core
    with pytest.raises(TypeError, match="did you mean spark_staging_location"):
        Client(core_url=platform["core"], spark_staging_locaton="file:///x")


def test_without_a_staging_location_the_client_asks_core(platform, monkeypatch):
    monkeypatch.delenv("PROVENDER_STAGING_LOCATION", raising=False)
    monkeypatch.setenv("PROVENDER_CONFIG", str(platform["base"] / "no-config"))
    client = Client(core_url=platform["core"], serving_url=platform["serving"])
    assert client.staging_location() == platform["core_staging"]


def test_feast09_job_methods_and_the_ingestion_report(loaded):
    client, table = loaded
    job = client.start_offline_to_online_ingestion(table, NOW - timedelta(days=1), NOW + timedelta(hours=1))
    assert job.get_id() == job.id and job.get_feature_table() == "driver_stats"
    assert job.get_start_time() is not None and job.get_log_uri().startswith("file://")
    seen = set()
    status = job.get_status()
    while status not in (SparkJobStatus.COMPLETED, SparkJobStatus.FAILED):
        seen.add(status)
        status = job.get_status()
    assert status is SparkJobStatus.COMPLETED, job.get_error_message()
    assert seen <= {SparkJobStatus.STARTING, SparkJobStatus.IN_PROGRESS}
    info = job.wait(progress=False)
    assert info.report["rows_read"] == 3 and info.report["rows_written"] == 2
    assert info.report["rows_skipped_stale"] == 0 and info.report["rows_dead_lettered"] == 0
    assert "2 written" in info.outcome() and "0 dead-lettered" in info.outcome()

    again = client.start_offline_to_online_ingestion(table, NOW - timedelta(days=1), NOW + timedelta(hours=2))
    assert "skipped as older" in again.wait(progress=False).outcome()
    assert client.get_job_by_id(job.id).get_status() is SparkJobStatus.COMPLETED


def test_online_dtypes_follow_the_declared_types(loaded):
    client, _ = loaded
    client.start_offline_to_online_ingestion("driver_stats", NOW - timedelta(days=1), NOW).wait(
        progress=False
    )
    frame = client.get_online_features(
        ["driver_stats:conv_rate", "driver_stats:trips"],
        [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 9999}],
    ).to_df()
    assert frame.dtypes.to_dict() == {
        "driver_id": pd.Int64Dtype(),
        "driver_stats:conv_rate": "float32",
        "driver_stats:trips": pd.Int64Dtype(),
    }
    assert frame["driver_stats:trips"].tolist()[:1] == [4] and frame[
        "driver_stats:trips"
    ].isna().tolist() == [
        False,
        True,
        True,
    ]
    # A feature with no value in any row keeps its declared dtype (not an object column of None).
    nothing = client.get_online_features(["driver_stats:trips"], [{"driver_id": 9999}]).to_df()
    assert nothing["driver_stats:trips"].dtype == pd.Int64Dtype()


def test_training_set_keeps_the_entity_dataframe_dtypes_and_time_zone(loaded):
    client, _ = loaded
    zone = "America/New_York"
    entity_df = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1001],
            "event_timestamp": pd.to_datetime(
                [T0 + timedelta(hours=3), T0 + timedelta(hours=3), T0 - timedelta(hours=1)]
            ).tz_convert(zone),
            "label": [1.0, 0.0, 1.0],
        }
    )
    job = client.get_historical_features(
        feature_refs=["driver_stats:conv_rate", "driver_stats:trips"], entity_source=entity_df
    )
    uri = job.get_output_file_uri(timeout_sec=300)
    assert uri == job.output_file_uri and job.get_status() is SparkJobStatus.COMPLETED
    training = job.to_df(progress=False).sort_values(["event_timestamp", "driver_id"]).reset_index(drop=True)
    assert training.dtypes.to_dict() == {
        "driver_id": entity_df["driver_id"].dtype,
        "event_timestamp": entity_df["event_timestamp"].dtype,
        "label": "float64",
        "driver_stats__conv_rate": "float32",
        "driver_stats__trips": pd.Int64Dtype(),
    }
    merged = entity_df.merge(training, on=["driver_id", "event_timestamp", "label"])  # merging back works
    assert len(merged) == 3
    expected = pd.DataFrame(
        {
            "driver_id": [1001, 1001, 1002],
            "event_timestamp": pd.to_datetime(
                [T0 - timedelta(hours=1), T0 + timedelta(hours=3), T0 + timedelta(hours=3)]
            ).tz_convert(zone),
            "label": [1.0, 1.0, 0.0],
            "driver_stats__conv_rate": pd.array([None, 0.5, 0.75], dtype="float32"),
            "driver_stats__trips": pd.array([None, 4, None], dtype="Int64"),
        }
    ).astype({"event_timestamp": entity_df["event_timestamp"].dtype})
    pd.testing.assert_frame_equal(training, expected)


def test_a_failed_retrieval_raises_feast09s_failure_from_get_output_file_uri(loaded, platform):
    client, _ = loaded
    job = client.get_historical_features(
        ["driver_stats:conv_rate"], (platform["base"] / "no-such-entities.parquet").as_uri()
    )
    assert job.get_output_file_uri(block=False) is None or job.get_status() is SparkJobStatus.FAILED
    with pytest.raises(SparkJobFailure, match="no-such-entities"):
        job.get_output_file_uri(timeout_sec=300)


def test_a_misspelt_entity_is_named_with_the_one_meant(loaded):
    client, _ = loaded
    with pytest.raises(InvalidArgument) as e:
        client.get_online_features(["driver_stats:trips"], [{"drivr_id": 1001}])
    assert str(e.value) == (
        "entity_rows[0]: 'drivr_id' is not valid; expected an entity of project 'sdkjobs' (driver_id); "
        "did you mean 'driver_id'?"
    )


def _command_lines_with(secret: bytes) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:  # the process ended
            continue
        if secret in text:
            found.append(text.replace(b"\0", b" ").decode(errors="replace")[:200])
    return found


def test_the_redis_password_is_in_no_record_file_log_metric_or_command_line(loaded, platform):
    """Last in the module: after its ingestion and retrieval jobs, and one more ingestion (which reached the Redis
    with the password) when run alone."""
    client, table = loaded
    job = client.start_offline_to_online_ingestion(table, NOW - timedelta(days=2), NOW + timedelta(hours=2))
    job.wait(progress=False)
    assert job.get_status() is SparkJobStatus.COMPLETED, job.get_error_message()
    secret = PASSWORD.encode()
    assert _command_lines_with(secret) == []  # Core, Serving, the warm Spark driver, Redis itself
    assert secret not in generate_latest(REGISTRY)
    engine = sqlalchemy.create_engine(platform["postgres_url"])
    try:
        with engine.connect() as conn:
            jobs = conn.execute(sqlalchemy.text("SELECT * FROM jobs")).fetchall()
    finally:
        engine.dispose()
    assert jobs and not any(PASSWORD in str(tuple(job)) for job in jobs)
    logged = [str(r.__dict__) for r in platform["logs"]]
    assert logged and not [line for line in logged if PASSWORD in line]
    # every file of Core, its jobs and Serving (the Redis server's own folder aside)
    files = [p for p in platform["base"].rglob("*") if p.is_file() and p.parent.name != "redis"]
    assert files and [str(p) for p in files if secret in p.read_bytes()] == []
