"""The real feast-spark client against our JobService and Serving: an ingestion and a retrieval started,
polled to completion and read back, exactly as a Feast 0.9 notebook does it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

pytestmark = pytest.mark.compat

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=47)
DRIVERS = [1001, 1002, 1003]


def driver_stats() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    times = pd.date_range(T0, periods=48, freq="h", tz="UTC")
    frame = pd.DataFrame([(d, t) for t in times for d in DRIVERS], columns=["driver_id", "event_timestamp"])
    frame["conv_rate"] = rng.random(len(frame)).astype("float32")
    frame["trips"] = rng.integers(0, 50, len(frame)).astype("int64")
    frame["created"] = frame["event_timestamp"] + timedelta(minutes=1)
    frame["date"] = frame["event_timestamp"].dt.strftime("%Y-%m-%d")
    return frame


@pytest.fixture(scope="module")
def scenario(feast09, postgres, redis_server, tmp_path_factory):
    from provender.core.app import CoreSettings, start_core
    from provender.serving.app import ServingSettings, start_serving

    base = tmp_path_factory.mktemp("feast-spark")
    data = driver_stats()
    data.to_parquet(base / "driver_stats", partition_cols=["date"], index=False)
    core = start_core(
        CoreSettings(
            postgres_url=postgres.create_database(f"compat_jobs_{os.getpid()}"),
            port=0,
            host="127.0.0.1",
            spark_master="local[1]",
            staging_location=(base / "staging").as_uri(),
            redis_url=redis_server.url,
            launcher_work_dir=str(base / "launcher"),
            reconcile_seconds=1.0,
        )
    )
    serving = start_serving(
        ServingSettings(
            redis_url=redis_server.url, core_url=f"127.0.0.1:{core.port}", port=0, host="127.0.0.1"
        ),
        registry=CollectorRegistry(),
    )
    try:
        out = feast09.driver(
            "jobs_scenario.py",
            f"127.0.0.1:{core.port}",
            f"127.0.0.1:{serving.running.port}",
            (base / "driver_stats").as_uri(),
            (base / "feast-staging").as_uri(),
            T0.replace(tzinfo=None).isoformat(),
            (base / "feast-output").as_uri(),
            timeout=600,
        )
    finally:
        serving.running.stop(grace=1)
        core.stop(grace=1)
    return out["steps"], data


def ok(steps: dict, name: str):
    record = steps.get(name)
    assert record is not None, f"step {name} never ran: {steps}"
    assert "error" not in record, f"{name} failed in the Feast SDK: {record['error']}\n{record.get('trace')}"
    return record["result"]


def test_ingestion_runs_to_completion(scenario):
    steps, _ = scenario
    ingestion = ok(steps, "ingestion")
    assert ingestion["status"] == "COMPLETED" and ingestion["id"].startswith("ingest-")
    assert ok(steps, "get_job") == {"id": ingestion["id"], "status": "COMPLETED"}


def test_online_values_through_the_feast_client_are_the_latest_rows(scenario):
    steps, data = scenario
    online = ok(steps, "online")
    latest = data.sort_values("event_timestamp").groupby("driver_id").last()
    assert online["driver_id"] == [1001, 1002, 4242]
    assert online["driver_hourly:conv_rate"][:2] == pytest.approx(
        [float(latest.conv_rate[1001]), float(latest.conv_rate[1002])]
    )
    assert online["driver_hourly:trips"][:2] == [int(latest.trips[1001]), int(latest.trips[1002])]
    assert online["driver_hourly:trips"][2] is None  # unknown driver


def test_retrieval_output_is_point_in_time_correct(scenario):
    steps, data = scenario
    retrieval = ok(steps, "retrieval")
    assert retrieval["uri"].startswith("file://") and "feast-output" in retrieval["uri"]
    rows = {r["driver_id"]: r for r in retrieval["rows"]}
    assert set(rows) == set(DRIVERS)
    # The entity rows were staged by the Feast SDK (naive nanosecond parquet): they come back as naive timestamps
    # with the entity column's own type, and the features as the Feast user's pandas reads them.
    assert retrieval["dtypes"] == {
        "driver_id": "int64",
        "event_timestamp": retrieval["dtypes"]["event_timestamp"],
        "driver_hourly__conv_rate": "float32",
        "driver_hourly__trips": "float64",  # int64 with a missing value, in pandas 1.5
    }
    assert retrieval["dtypes"]["event_timestamp"].startswith("datetime64[")
    at = data.set_index(["driver_id", "event_timestamp"])
    # 05:30 after T0 → the 05:00 row; 10:00 → the 10:00 row (inclusive); before T0 → nothing.
    assert rows[1001]["driver_hourly__conv_rate"] == pytest.approx(
        float(at.loc[(1001, T0 + timedelta(hours=5)), "conv_rate"])
    )
    assert rows[1002]["driver_hourly__trips"] == int(at.loc[(1002, T0 + timedelta(hours=10)), "trips"])
    assert rows[1003]["driver_hourly__conv_rate"] is None and rows[1003]["driver_hourly__trips"] is None


def test_list_jobs_shows_both_jobs_completed(scenario):
    steps, _ = scenario
    listed = dict(ok(steps, "list_jobs"))
    assert listed[ok(steps, "ingestion")["id"]] == "COMPLETED"
    assert listed[ok(steps, "retrieval")["id"]] == "COMPLETED"
