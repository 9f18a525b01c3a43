"""Run under the Feast 0.9 SDK's interpreter (.venv-feast09): the real `feast.Client.get_online_features` and
`Client.version()` against our Serving. Usage: python feast09_online_driver.py '<json args>'; prints JSON."""

import json
import sys

from feast import Client
from feast.serving.ServingService_pb2 import GetOnlineFeaturesResponse
from feast.type_map import feast_value_type_to_python_type


def python_value(value):
    # The SDK's own converter (used by OnlineResponse.to_dict) fails on BYTES in Feast 0.9: show bytes as hex.
    if value.WhichOneof("val") == "bytes_val":
        return value.bytes_val.hex()
    return feast_value_type_to_python_type(value)


def main() -> None:
    args = json.loads(sys.argv[1])
    client = Client(serving_url=args["serving_url"], core_url=args["core_url"])
    version = client.version()
    response = client.get_online_features(args["refs"], args["rows"], project=args["project"])
    values = {}
    for fv in response.field_values:
        for k, v in fv.fields.items():
            values.setdefault(k, []).append(python_value(v))
    statuses = [
        {k: GetOnlineFeaturesResponse.FieldStatus.Name(v) for k, v in fv.statuses.items()}
        for fv in response.field_values
    ]
    print(json.dumps({"version": version, "values": values, "statuses": statuses}))


if __name__ == "__main__":
    main()
