"""Provender quickstart: register a driver-statistics feature store and read it back.

Run by `make demo` after `provender local up` (or against any Provender: set PROVENDER_CORE_URL and
PROVENDER_SERVING_URL). It generates a small dataset locally, registers the `driver_id` and `customer_id`
entities and two feature tables whose batch sources point at that data, and prints what Core stored.
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
    stats.to_parquet(stats_dir, partition_cols=["date"], index=False)
    print(f"wrote {len(stats)} rows of driver statistics to {stats_dir} (partitioned by date)\n")

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


if __name__ == "__main__":
    main()
