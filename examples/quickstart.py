"""Provender quickstart: from a DataFrame to online features.

Run by `make demo` after `provender local up` (or against any Provender: set PROVENDER_CORE_URL,
PROVENDER_SERVING_URL and PROVENDER_STAGING_LOCATION, which `eval "$(provender local up --env)"` does). It
generates driver statistics, registers entities and two feature tables, ingests the DataFrame into the
offline store, builds a point-in-time correct training set, loads the online store and looks features up.
Then, when there is a Kafka broker (PROVENDER_KAFKA_BOOTSTRAP_SERVERS, which `provender local up --env` sets
when it runs one), it streams: the driver_trips table's stream job reads Avro messages from a Kafka topic into
the online store, and keeps running after the quickstart ends.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from provender import AvroFormat, Client, Entity, Feature, FeatureTable, FileSource, KafkaSource, ValueType

DATA_DIR = Path(os.environ.get("PROVENDER_DEMO_DATA", ".provender/demo-data")).absolute()
# The Kafka broker the driver_trips table streams from; without one, the quickstart does not stream.
KAFKA = os.environ.get("PROVENDER_KAFKA_BOOTSTRAP_SERVERS", "")
# The messages on the driver_trips topic, as a Feast 0.9 AvroFormat takes them: the schema as JSON.
TRIP_SCHEMA = {
    "type": "record",
    "name": "DriverTrip",
    "fields": [
        {"name": "driver_id", "type": "long"},
        {"name": "trips_today", "type": "int"},
        {"name": "event_timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}
STREAM_TIMEOUT_SECONDS = 300  # Spark starts a driver for the stream job: 20-60 s on a small machine


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
            bootstrap_servers=KAFKA,
            topic="driver_trips",
            message_format=AvroFormat(json.dumps(TRIP_SCHEMA)),
        )
        if KAFKA
        else None,
        max_age=timedelta(hours=6),
    )

    applied = client.apply([driver, customer, driver_hourly, trips])
    print(f"applied {len(applied)} objects\n")
    # Trips as the app that counts them publishes them: Avro messages on the table's Kafka topic (made on first
    # use). Core runs a stream job for a table with a Kafka source; step 5 waits for its rows online.
    sent_trips = produce_trips(client) if KAFKA else None

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
        ["driver_hourly:conv_rate", "driver_hourly:avg_daily_trips"],
        [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 9999}],
    )
    print("\nonline features:")
    print(online.to_df().to_string(index=False))
    print("\nstatuses:")
    print(pd.DataFrame(online.statuses()).to_string(index=False))

    # 5. A stream: the trips sent to Kafka after `apply`, read into the online store by the table's stream job.
    if sent_trips is None:
        print(
            "\nstreaming skipped: no Kafka broker (PROVENDER_KAFKA_BOOTSTRAP_SERVERS is not set; `make jvm-deps`, "
            "then `provender local up`, runs one)"
        )
    else:
        stream_trips(client, sent_trips)


def produce_trips(client: Client) -> pd.DataFrame:
    """Send trip counts for three drivers to driver_trips' topic (one more trip each than online, when run again, so
    that the wait below sees these messages arrive); returns them."""
    drivers = [1001, 1002, 1003]
    online = client.get_online_features(["driver_trips:trips_today"], [{"driver_id": d} for d in drivers])
    before = online.to_dict()["driver_trips:trips_today"]
    now = datetime.now(UTC).replace(microsecond=0)
    trips = pd.DataFrame(
        {
            "driver_id": drivers,
            "trips_today": [n if b is None else b + 1 for n, b in zip((5, 11, 2), before, strict=True)],
            "event_timestamp": [now - timedelta(seconds=s) for s in (30, 20, 10)],
        }
    )
    sent = client.produce_to_stream("driver_trips", trips)
    print(f"produced {sent.messages} Avro messages to topic {sent.topic} on {sent.bootstrap_servers}\n")
    return trips


def stream_trips(client: Client, trips: pd.DataFrame) -> None:
    """Wait until Serving returns the trips sent to Kafka (the table's stream job started when needed)."""
    # the job running already when Core started it for the table, else a new one
    job = client.start_stream_to_online_ingestion("driver_trips")
    print(f"\nstream job {job.id} reads topic driver_trips into the online store; waiting for the trips...")
    features, rows = ["driver_trips:trips_today"], [{"driver_id": d} for d in trips["driver_id"]]
    began = time.monotonic()
    said, restarted = 0.0, False
    while True:
        online = client.get_online_features(features, rows)
        if online.to_dict()["driver_trips:trips_today"] == trips["trips_today"].tolist():
            break
        info = client.get_job(job.id)
        elapsed = time.monotonic() - began
        if info.status not in ("PENDING", "RUNNING"):
            if restarted:
                raise SystemExit(
                    f"stream job {job.id} {info.status}: {info.error_message} (log: {info.log_uri})"
                )
            print(f"  stream job {job.id} ended ({info.error_message}); starting it again")
            job, restarted = client.start_stream_to_online_ingestion("driver_trips"), True
        if elapsed > STREAM_TIMEOUT_SECONDS:
            raise SystemExit(
                f"the streamed rows were not online after {STREAM_TIMEOUT_SECONDS} s (stream job {info.status}; "
                f"log: {info.log_uri})"
            )
        if elapsed - said >= 10:
            said = elapsed
            print(f"  {elapsed:3.0f} s: stream job {info.status}, not online yet")
        time.sleep(1)
    print(f"streamed features (online after {time.monotonic() - began:.0f} s of waiting):")
    print(online.to_df().to_string(index=False))

    deadline = time.monotonic() + 30  # the job reports a micro-batch once its rows are written
    while not (batch := client.get_job(job.id).report) and time.monotonic() < deadline:
        time.sleep(1)
    if batch:
        print(
            f"latest micro-batch: {batch['rows_read']} rows read, {batch['rows_written']} written, "
            f"{batch['rows_dead_lettered']} dead-lettered"
        )
    print(
        f"\nthe stream job keeps running: send more with client.produce_to_stream('driver_trips', df); "
        f"`provender jobs describe {job.id}` shows its latest micro-batch; `provender jobs cancel {job.id}` "
        "stops it (`provender local down` until the next `up`)"
    )


if __name__ == "__main__":
    main()
