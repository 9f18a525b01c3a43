"""Runs under the Feast 0.9 SDK's interpreter: the real feast-spark client drives our JobService.

argv: core_url serving_url data_url staging_url t0_iso output_url
Prints {"steps": {name: {...}}}: each step's result, or its error as the SDK raised it.
"""

import json
import sys
import time
import traceback
from datetime import datetime, timedelta

import pandas as pd
from feast import Client, Entity, Feature, FeatureTable, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast_spark import Client as SparkClient
from google.protobuf.duration_pb2 import Duration

core_url, serving_url, data_url, staging_url, t0_iso, output_url = sys.argv[1:7]
T0 = datetime.fromisoformat(t0_iso)  # naive UTC, as the Feast SDK expects
steps = {}


def step(name):
    def wrap(fn):
        try:
            steps[name] = {"result": fn()}
        except Exception as e:
            steps[name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1500:]}
        return fn

    return wrap


client = Client(
    core_url=core_url,
    serving_url=serving_url,
    job_service_url=core_url,
    spark_staging_location=staging_url,
    historical_feature_output_location=output_url,
)
spark = SparkClient(client)
table = FeatureTable(
    name="driver_hourly",
    entities=["driver_id"],
    features=[Feature("conv_rate", ValueType.FLOAT), Feature("trips", ValueType.INT64)],
    batch_source=FileSource(
        event_timestamp_column="event_timestamp",
        created_timestamp_column="created",
        date_partition_column="date",
        file_format=ParquetFormat(),
        file_url=data_url,
    ),
    max_age=Duration(seconds=3 * 3600),
)


def wait(job, timeout=300):
    deadline = time.time() + timeout
    while True:
        status = job.get_status()
        if status.name in ("COMPLETED", "FAILED") or time.time() > deadline:
            return status.name
        time.sleep(1)


@step("apply")
def _():
    client.apply([Entity(name="driver_id", description="a driver", value_type=ValueType.INT64), table])
    return True


@step("ingestion")
def _():
    job = spark.start_offline_to_online_ingestion(table, T0, T0 + timedelta(hours=48))
    return {"id": job.get_id(), "status": wait(job)}


@step("online")
def _():
    rows = [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 4242}]
    return client.get_online_features(["driver_hourly:conv_rate", "driver_hourly:trips"], rows).to_dict()


@step("retrieval")
def _():
    entities = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1003],
            "event_timestamp": [
                T0 + timedelta(hours=5, minutes=30),
                T0 + timedelta(hours=10),
                T0 - timedelta(hours=1),
            ],
        }
    )
    job = spark.get_historical_features(["driver_hourly:conv_rate", "driver_hourly:trips"], entities)
    uri = job.get_output_file_uri(timeout_sec=300)
    frame = pd.read_parquet(uri.replace("file://", ""))
    dtypes = {c: str(t) for c, t in frame.dtypes.items()}  # as the Feast 0.9 user's pandas reads them
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).astype(str)
    rows = json.loads(frame.to_json(orient="records"))
    return {"id": job.get_id(), "uri": uri, "rows": rows, "dtypes": dtypes}


@step("list_jobs")
def _():
    jobs = spark.list_jobs(include_terminated=True)
    return sorted([j.get_id(), j.get_status().name] for j in jobs)


@step("get_job")
def _():
    job = spark.get_job_by_id(steps["ingestion"]["result"]["id"])
    return {"id": job.get_id(), "status": job.get_status().name}


print(json.dumps({"steps": steps}, default=str))
