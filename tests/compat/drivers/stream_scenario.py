"""Runs under the Feast 0.9 SDK's interpreter: the real feast-spark client starts a stream job through our
JobService, and the real Feast client reads what it streamed through our Serving.

argv: phase core_url serving_url bootstrap_servers topic batch_url
- phase "start": apply the entity and a table with a KafkaSource (AvroFormat), start its stream job twice, and
  encode the messages as a Feast 0.9 user does (fastavro, schemaless); prints the job and the messages (hex).
- phase "read": the online values, the job as feast-spark lists and gets it (with its hash), then cancel it.
Prints {"steps": {name: {...}}}: each step's result, or its error as the SDK raised it.
"""

import io
import json
import sys
import time
import traceback
from datetime import datetime, timedelta

import fastavro
from feast import Client, Entity, Feature, FeatureTable, FileSource, KafkaSource, ValueType
from feast.data_format import AvroFormat, ParquetFormat
from feast_spark import Client as SparkClient
from google.protobuf.duration_pb2 import Duration

phase, core_url, serving_url, bootstrap, topic, batch_url = sys.argv[1:7]
steps = {}
SCHEMA = {
    "type": "record",
    "name": "DriverTrip",
    "fields": [
        {"name": "driver_id", "type": "long"},
        {"name": "trips_today", "type": "int"},
        {"name": "event_timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}


def step(name):
    def wrap(fn):
        try:
            steps[name] = {"result": fn()}
        except Exception as e:
            steps[name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-1500:]}
        return fn

    return wrap


client = Client(core_url=core_url, serving_url=serving_url, job_service_url=core_url)
spark = SparkClient(client)
table = FeatureTable(
    name="driver_trips",
    entities=["driver_id"],
    features=[Feature("trips_today", ValueType.INT32)],
    batch_source=FileSource(
        event_timestamp_column="event_timestamp", file_format=ParquetFormat(), file_url=batch_url
    ),
    stream_source=KafkaSource(
        event_timestamp_column="event_timestamp",
        bootstrap_servers=bootstrap,
        message_format=AvroFormat(json.dumps(SCHEMA)),
        topic=topic,
    ),
    max_age=Duration(seconds=86400),
)

if phase == "start":

    @step("apply")
    def _():
        client.apply([Entity(name="driver_id", description="a driver", value_type=ValueType.INT64), table])
        return True

    @step("start")
    def _():
        job = spark.start_stream_to_online_ingestion(table)
        again = spark.start_stream_to_online_ingestion(table)
        return {"id": job.get_id(), "again": again.get_id(), "status": job.get_status().name}

    @step("messages")
    def _():
        now = datetime.utcnow()
        schema = fastavro.parse_schema(SCHEMA)
        out = []
        for driver, trips, minutes in ((1001, 3, 10), (1002, 7, 5), (1001, 4, 1)):
            buf = io.BytesIO()
            fastavro.schemaless_writer(
                buf,
                schema,
                {
                    "driver_id": driver,
                    "trips_today": trips,
                    "event_timestamp": now - timedelta(minutes=minutes),
                },
            )
            out.append(buf.getvalue().hex())
        return out

else:

    @step("online")
    def _():
        deadline = time.time() + 240
        rows = [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 4242}]
        while True:
            got = client.get_online_features(["driver_trips:trips_today"], rows).to_dict()
            if got["driver_trips:trips_today"][:2] == [4, 7] or time.time() > deadline:
                return got
            time.sleep(1)

    @step("list_jobs")
    def _():
        return sorted(
            [j.get_id(), j.get_status().name, type(j).__name__]
            for j in spark.list_jobs(include_terminated=False)
        )

    @step("get_job")
    def _():
        [job] = spark.list_jobs(include_terminated=False)
        found = spark.get_job_by_id(job.get_id())
        return {
            "id": found.get_id(),
            "status": found.get_status().name,
            "hash": found.get_hash(),
            "table": found.get_feature_table(),
        }

    @step("cancel")
    def _():
        [job] = spark.list_jobs(include_terminated=False)
        job.cancel()
        return [j.get_id() for j in spark.list_jobs(include_terminated=False)]


print(json.dumps({"steps": steps}, default=str))
