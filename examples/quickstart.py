"""Provender quickstart: from a DataFrame to online features.

Run by `make demo` after `provender local up` (or against any Provender: set PROVENDER_CORE_URL,
PROVENDER_SERVING_URL and PROVENDER_STAGING_LOCATION, which `eval "$(provender local up --env)"` does). It
generates driver statistics, registers entities and two feature tables, ingests the DataFrame into the
offline store, builds a point-in-time correct training set, loads the online store and looks features up.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from provender import Client, Entity, Feature, FeatureTable, FileSource, KafkaSource, ProtoFormat, ValueType

DATA_DIR = Path(os.environ.get("PROVENDER_DEMO_DATA", ".provender/demo-data")).absolute()


def generate_driver_stats(drivers: int = 50, hours: int = 72) -> pd.DataFrame:
    """Hourly statistics per driver over the last `hours` hours (reproducible)."""
    rng = np.random.default_rng(7)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    times = pd.date_range(end=end, periods=hours, freq="h", tz="UTC")
    ids = np.arange(1001, 1001 + drivers)
    frame = pd.DataFrame([(d, t) for t in times for d in ids], columns=["driver_id", "event_timestamp"])
    n = len(frame)
    frame["conv_rate"] = rng.random(n).astype("float32")
    frame["acc_rate"] = rng.random(n).astype("float32")
    frame["avg_daily_trips"] = rng.integers(0, 40, n).astype("int64")
    frame["created"] = frame["event_timestamp"] + timedelta(minutes=5)
    frame["date"] = frame["event_timestamp"].dt.strftime("%Y-%m-%d")
    return frame


def main() -> None:
    stats = generate_driver_stats()
    stats_dir = DATA_DIR / "driver_stats"

    client = Client()
    print(f"connected to Core {client.version()['core']} at {client.config.core_url}\n")

    driver = Entity(
        name="driver_id", value_type=ValueType.INT64, description="a driver", labels={"team": "rides"}
    )
    customer = Entity(name="customer_id", value_type=ValueType.STRING, description="a rider")
    driver_hourly = FeatureTable(
        name="driver_hourly",
        entities=["driver_id"],
        features=[
            Feature("conv_rate", ValueType.FLOAT),
            Feature("acc_rate", ValueType.FLOAT),
            Feature("avg_daily_trips", ValueType.INT64),
        ],
        batch_source=FileSource(
            event_timestamp_column="event_timestamp",
            created_timestamp_column="created",
            date_partition_column="date",
            file_url=stats_dir.as_uri(),
        ),
        max_age=timedelta(days=2),
        labels={"team": "rides"},
    )
    trips = FeatureTable(
        name="driver_trips",
        entities=["driver_id"],
        features=[Feature("trips_today", ValueType.INT32)],
        batch_source=FileSource(
            event_timestamp_column="event_timestamp", file_url=(DATA_DIR / "trips").as_uri()
        ),
        stream_source=KafkaSource(
            event_timestamp_column="event_timestamp",
            bootstrap_servers="localhost:9092",
            topic="driver_trips",
            message_format=ProtoFormat(class_path="com.example.DriverTrip"),
        ),
        max_age=timedelta(hours=6),
    )

    applied = client.apply([driver, customer, driver_hourly, trips])
    print(f"applied {len(applied)} objects\n")

    print("entities in project 'default':")
    for entity in client.list_entities():
        print("---\n" + entity.to_yaml())
    stored = client.get_feature_table("driver_hourly")
    print(f"feature table driver_hourly (revision {stored.revision}, hash {stored.hash}):")
    print(stored.to_yaml())
    assert stored == driver_hourly, "Core returned a different table than was applied"

    print("features of tables keyed by driver_id:")
    for ref, feature in client.list_features_by_ref(entities=["driver_id"]).items():
        print(f"  {ref:<32} {feature.dtype.name}")
    print("\nprojects:", ", ".join(client.list_projects()))

    # 1. The offline store: the DataFrame goes into the table's batch source, typed and date-partitioned.
    result = client.ingest("driver_hourly", stats.drop(columns=["date"]))
    print(f"\ningested {result.rows} rows into {result.url} ({len(result.partitions)} date partitions)")

    # 2. A training set: for each (driver, time), the latest feature values known at that time.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    entity_rows = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1003, 1001],
            "event_timestamp": [now - timedelta(hours=h) for h in (1, 5, 30, 100)],
        }
    )
    job = client.get_historical_features(
        ["driver_hourly:conv_rate", "driver_hourly:acc_rate", "driver_hourly:avg_daily_trips"], entity_rows
    )
    print(f"\nhistorical retrieval {job.id} started; waiting for Spark...")
    training = job.to_df().sort_values(["event_timestamp", "driver_id"])
    print("training set (100 h ago is older than the data: no values):")
    print(training.to_string(index=False))

    # 3. The online store: the latest value per driver, loaded by a Spark job.
    ingestion = client.start_offline_to_online_ingestion(
        "driver_hourly", start=now - timedelta(days=3), end=now + timedelta(hours=1)
    )
    print(f"\ningestion {ingestion.id} started; waiting for Spark...")
    print(f"online store loaded: {ingestion.wait().outcome()}")

    # 4. Online lookups, as a production service does them (driver 9999 does not exist).
    online = client.get_online_features(
        ["driver_hourly:conv_rate", "driver_hourly:avg_daily_trips", "driver_trips:trips_today"],
        [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 9999}],
    )
    print("\nonline features:")
    print(online.to_df().to_string(index=False))
    print("\nstatuses:")
    print(pd.DataFrame(online.statuses()).to_string(index=False))


if __name__ == "__main__":
    main()
