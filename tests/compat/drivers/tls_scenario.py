"""The real Feast 0.9 SDK against Core and Serving on TLS, configured with Feast's own SSL options.

Runs under the Feast 0.9 venv's interpreter. Usage: tls_scenario.py CORE_URL SERVING_URL CA_PEM SOURCE_URL
Prints one JSON object: what the SDK saw with SSL on (tables listed, an online lookup) and what a client without
SSL got.
"""

from __future__ import annotations

import json
import sys

from feast import Client, Entity, Feature, FeatureTable, FileSource, ValueType
from feast.data_format import ParquetFormat

core_url, serving_url, ca, source_url = sys.argv[1:5]
out: dict = {}
client = Client(
    core_url=core_url,
    serving_url=serving_url,
    core_enable_ssl=True,
    core_server_ssl_cert=ca,
    serving_enable_ssl=True,
    serving_server_ssl_cert=ca,
)
client.apply(Entity(name="rider_id", description="a rider", value_type=ValueType.INT64))
client.apply(
    FeatureTable(
        name="rider_tls",
        entities=["rider_id"],
        features=[Feature("rides", ValueType.INT64)],
        batch_source=FileSource(
            event_timestamp_column="ts", file_format=ParquetFormat(), file_url=source_url
        ),
    )
)
out["tables"] = sorted(t.name for t in client.list_feature_tables())
for _ in range(50):  # Serving learns the new table from Core (over TLS) within its refresh interval
    try:
        out["online"] = client.get_online_features(["rider_tls:rides"], [{"rider_id": 7}]).to_dict()
        break
    except Exception as e:
        out["online_error"] = f"{type(e).__name__}: {e}"
        import time

        time.sleep(0.2)
plaintext = Client(core_url=core_url, serving_url=serving_url, grpc_connection_timeout=3)
try:
    plaintext.list_feature_tables()
    out["plaintext"] = "answered"
except Exception as e:
    out["plaintext"] = f"{type(e).__name__}: {e}"
print(json.dumps(out, default=str))
