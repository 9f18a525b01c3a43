"""The real Feast 0.9 SDK and feast-spark client against Core, its JobService port and Serving with TLS and
authentication on, configured with Feast's own SSL options and its `oauth` auth provider (client credentials).

Runs under the Feast 0.9 venv's interpreter.
Usage: auth_scenario.py CORE_URL JOBS_URL SERVING_URL CA_PEM TOKEN_URL CLIENT_ID CLIENT_SECRET AUDIENCE SOURCE_URL
Prints one JSON object: what the SDK saw with its credentials (tables, jobs, an online lookup) and what a client
without them got.
"""

from __future__ import annotations

import json
import sys
import time

from feast import Client, Entity, Feature, FeatureTable, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast_spark import Client as SparkClient

core_url, jobs_url, serving_url, ca, token_url, client_id, secret, audience, source_url = sys.argv[1:10]
out: dict = {}
ssl = {
    "core_enable_ssl": True,
    "core_server_ssl_cert": ca,
    "serving_enable_ssl": True,
    "serving_server_ssl_cert": ca,
    "job_service_enable_ssl": True,
    "job_service_server_ssl_cert": ca,
}
client = Client(
    core_url=core_url,
    serving_url=serving_url,
    job_service_url=jobs_url,
    project="fraud",
    enable_auth=True,
    auth_provider="oauth",
    oauth_grant_type="client_credentials",
    oauth_client_id=client_id,
    oauth_client_secret=secret,
    oauth_audience=audience,
    oauth_token_request_url=token_url,
    **ssl,
)
client.apply(Entity(name="rider_id", description="a rider", value_type=ValueType.INT64))
client.apply(
    FeatureTable(
        name="rider_auth",
        entities=["rider_id"],
        features=[Feature("rides", ValueType.INT64)],
        batch_source=FileSource(
            event_timestamp_column="ts", file_format=ParquetFormat(), file_url=source_url
        ),
    )
)
out["tables"] = sorted(t.name for t in client.list_feature_tables())
out["jobs"] = [j.get_id() for j in SparkClient(client).list_jobs(include_terminated=True)]
for _ in range(50):  # Serving learns the new table from Core within its refresh interval
    try:
        out["online"] = client.get_online_features(["rider_auth:rides"], [{"rider_id": 7}]).to_dict()
        break
    except Exception as e:
        out["online_error"] = f"{type(e).__name__}: {e}"
        time.sleep(0.2)
anonymous = Client(core_url=core_url, serving_url=serving_url, project="fraud", **ssl)
for name, call in {
    "anonymous_list": lambda: anonymous.list_feature_tables(),
    "anonymous_online": lambda: anonymous.get_online_features(["rider_auth:rides"], [{"rider_id": 7}]),
}.items():
    try:
        call()
        out[name] = "answered"
    except Exception as e:
        code = e.code().name if callable(getattr(e, "code", None)) else type(e).__name__
        out[name] = f"{code}: {e.details() if callable(getattr(e, 'details', None)) else e}"
print(json.dumps(out, default=str))
