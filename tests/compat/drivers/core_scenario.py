"""Drives a Core with the real Feast 0.9 SDK (feast.Client) through a whole registry scenario.

Runs under the Feast 0.9 venv's interpreter, never ours. Usage: core_scenario.py CORE_URL
Prints one JSON object: {"steps": {step: {...}}}. A step that raised is recorded as {"error": ...} with the
gRPC status the SDK received, so the pytest side can name exactly what went wrong; the script itself exits 0
unless it could not run at all.
"""

from __future__ import annotations

import json
import sys
import traceback
from contextlib import contextmanager

import grpc
from feast import BigQuerySource, Client, Entity, Feature, FeatureTable, FileSource, KafkaSource, ValueType
from feast.core.CoreService_pb2 import GetFeatureTableRequest
from feast.data_format import AvroFormat, ParquetFormat, ProtoFormat
from google.protobuf.duration_pb2 import Duration

PROJECT = "compat_proj"
AVRO_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "DriverTrips",
        "fields": [
            {"name": "driver_id", "type": "long"},
            {"name": "trips", "type": "int"},
            {"name": "rating", "type": "float"},
            {"name": "event_ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        ],
    }
)
ALL_TYPES = [
    "BYTES",
    "STRING",
    "INT32",
    "INT64",
    "DOUBLE",
    "FLOAT",
    "BOOL",
    "BYTES_LIST",
    "STRING_LIST",
    "INT32_LIST",
    "INT64_LIST",
    "DOUBLE_LIST",
    "FLOAT_LIST",
    "BOOL_LIST",
]

steps: dict = {}


def rpc_error(exc: BaseException) -> dict:
    """The gRPC status behind an SDK exception (the SDK re-raises grpc.RpcError(details) from the original)."""
    seen = exc
    while seen is not None and not (isinstance(seen, grpc.RpcError) and hasattr(seen, "code")):
        seen = seen.__context__
    out = {"error": f"{type(exc).__name__}: {exc}"}
    if seen is not None:
        out.update(code=seen.code().name, details=seen.details())
    return out


@contextmanager
def step(name: str):
    record: dict = {}
    steps[name] = record
    try:
        yield record
    except Exception as exc:
        record.update(rpc_error(exc))
        record["traceback"] = traceback.format_exc(limit=4)


def rejection(call) -> dict:
    """Run a call that should fail; returns the status it failed with, or {"error": None} if it did not."""
    try:
        call()
    except Exception as exc:
        return rpc_error(exc)
    return {"error": None}


# ---- the objects, built fresh each time so "applied" and "read back" never share state ----------------


def normalized(entity: Entity) -> Entity:
    """What apply() does to the caller's object first: value_type becomes the enum number.

    Entity.__eq__ maps numbers (not ValueType members) to names before comparing with what from_proto
    gives back, so only a normalized fresh entity compares as the SDK's own tests compare them.
    """
    entity.to_spec_proto()
    return entity


def driver_entity() -> Entity:
    return Entity(
        name="driver_id",
        description="Driver identifier",
        value_type=ValueType.INT64,
        labels={"team": "matchmaking", "tier": "gold"},
    )


def customer_entity() -> Entity:
    return Entity(
        name="customer_id",
        description="Customer identifier",
        value_type=ValueType.STRING,
        labels={"team": "payments"},
    )


def driver_trips() -> FeatureTable:
    return FeatureTable(
        name="driver_trips",
        entities=["driver_id"],
        features=[
            Feature(name="trips_today", dtype=ValueType.INT32, labels={"pii": "no", "unit": "count"}),
            Feature(name="rating", dtype=ValueType.FLOAT, labels={"pii": "no"}),
        ],
        batch_source=FileSource(
            event_timestamp_column="event_ts",
            created_timestamp_column="created_ts",
            file_format=ParquetFormat(),
            file_url="file:///data/driver_trips",
            field_mapping={"trips": "trips_today", "avg_rating": "rating"},
            date_partition_column="date",
        ),
        stream_source=KafkaSource(
            event_timestamp_column="event_ts",
            created_timestamp_column="created_ts",
            bootstrap_servers="kafka-1:9092,kafka-2:9092",
            message_format=AvroFormat(AVRO_SCHEMA),
            topic="driver_trips",
            field_mapping={"trips": "trips_today"},
        ),
        max_age=Duration(seconds=7200),
        labels={"team": "matchmaking", "owner": "ana"},
    )


def all_types() -> FeatureTable:
    return FeatureTable(
        name="all_types",
        entities=["driver_id", "customer_id"],
        features=[
            Feature(
                name=f"f_{t.lower()}",
                dtype=ValueType[t],
                labels={"kind": "list" if "LIST" in t else "scalar"},
            )
            for t in ALL_TYPES
        ],
        batch_source=FileSource(
            event_timestamp_column="ts",
            file_format=ParquetFormat(),
            file_url="s3://bucket/all_types/",
        ),
        stream_source=KafkaSource(
            event_timestamp_column="ts",
            bootstrap_servers="kafka:9092",
            message_format=ProtoFormat("com.example.AllTypes"),
            topic="all_types",
        ),
        labels={"team": "payments"},
    )


def batch_only() -> FeatureTable:
    """No stream source, no max_age, no labels, a BigQuery source: what the SDK reads back as None / {}."""
    return FeatureTable(
        name="batch_only",
        entities=["customer_id"],
        features=[Feature(name="lifetime_value", dtype=ValueType.DOUBLE)],
        batch_source=BigQuerySource(
            event_timestamp_column="ts",
            table_ref="project:dataset.customers",
            created_timestamp_column="created",
            date_partition_column="day",
        ),
    )


def spec_dict(obj) -> dict:
    return obj.to_dict()["spec"]


def names(objs) -> list[str]:
    return sorted(o.name for o in objs)


def raw_meta(client: Client, name: str, project: str = "default") -> dict:
    """Revision and hash are not on the SDK's FeatureTable object: read them with the SDK's own stub."""
    meta = client._core_service.GetFeatureTable(GetFeatureTableRequest(project=project, name=name)).table.meta
    return {"revision": meta.revision, "hash": meta.hash}


def feature_refs(features: dict) -> dict:
    return {repr(ref): {"dtype": f.dtype.name, "labels": dict(f.labels)} for ref, f in features.items()}


def main(core_url: str) -> None:
    client = Client(core_url=core_url)

    with step("version") as r:
        r["core"] = Client(core_url=core_url, serving_url="").version()["core"]
    if steps["version"].get("error"):
        return  # Core unreachable: every further call would only wait out the SDK's 10 s connect timeout.

    with step("projects_initial") as r:
        r["projects"] = client.list_projects()

    # ---- entities ----------------------------------------------------------------------------------------
    with step("apply_entities") as r:
        client.apply([driver_entity(), customer_entity()])
        r["ok"] = True

    with step("get_entities") as r:
        for make in (driver_entity, customer_entity):
            applied, got = normalized(make()), client.get_entity(make().name)
            r[applied.name] = {
                "applied": spec_dict(applied),
                "read": spec_dict(got),
                "sdk_eq": applied == got,
                "has_created_timestamp": got.created_timestamp.seconds > 0,
            }

    with step("list_entities") as r:
        r["all"] = names(client.list_entities())
        r["team=matchmaking"] = names(client.list_entities(labels={"team": "matchmaking"}))
        r["team=payments"] = names(client.list_entities(labels={"team": "payments"}))
        r["team=matchmaking,tier=gold"] = names(
            client.list_entities(labels={"team": "matchmaking", "tier": "gold"})
        )
        r["team=matchmaking,tier=silver"] = names(
            client.list_entities(labels={"team": "matchmaking", "tier": "silver"})
        )
        makers = {"driver_id": driver_entity, "customer_id": customer_entity}
        r["listed_eq"] = {e.name: e == normalized(makers[e.name]()) for e in client.list_entities()}

    # ---- feature tables ----------------------------------------------------------------------------------
    with step("apply_tables") as r:
        client.apply([driver_trips(), all_types()])
        r["ok"] = True

    with step("get_tables") as r:
        for make in (driver_trips, all_types):
            applied, got = make(), client.get_feature_table(make().name)
            r[applied.name] = {
                "applied": spec_dict(applied),
                "read": spec_dict(got),
                "sdk_eq": applied == got,
                "batch_source_type": type(got.batch_source).__name__,
                "stream_source_type": type(got.stream_source).__name__,
            }

    with step("batch_only_table") as r:
        client.apply(batch_only())
        got = client.get_feature_table("batch_only")
        r["applied"], r["read"] = spec_dict(batch_only()), spec_dict(got)
        r["sdk_eq"] = got == batch_only()
        r["stream_source"] = repr(got.stream_source)
        r["max_age"] = repr(got.max_age)
        r["labels"] = dict(got.labels)
        r["batch_source_type"] = type(got.batch_source).__name__
        client.delete_feature_table("batch_only")

    with step("list_tables") as r:
        r["all"] = names(client.list_feature_tables())
        r["team=matchmaking"] = names(client.list_feature_tables(labels={"team": "matchmaking"}))
        r["team=payments"] = names(client.list_feature_tables(labels={"team": "payments"}))
        r["team=matchmaking,owner=ana"] = names(
            client.list_feature_tables(labels={"team": "matchmaking", "owner": "ana"})
        )
        r["team=nobody"] = names(client.list_feature_tables(labels={"team": "nobody"}))
        makers = {"driver_trips": driver_trips, "all_types": all_types}
        r["listed"] = {
            t.name: {"sdk_eq": t == makers[t.name](), "read": spec_dict(t)}
            for t in client.list_feature_tables()
        }

    # ---- features by reference ---------------------------------------------------------------------------
    with step("list_features") as r:
        r["all"] = feature_refs(client.list_features_by_ref())
        r["entities=driver_id"] = feature_refs(client.list_features_by_ref(entities=["driver_id"]))
        r["entities=customer_id,driver_id"] = feature_refs(
            client.list_features_by_ref(entities=["customer_id", "driver_id"])
        )
        r["entities=customer_id"] = feature_refs(client.list_features_by_ref(entities=["customer_id"]))
        r["labels=unit:count"] = feature_refs(client.list_features_by_ref(labels={"unit": "count"}))
        r["labels=kind:list"] = feature_refs(client.list_features_by_ref(labels={"kind": "list"}))
        r["entities=driver_id,labels=pii:no"] = feature_refs(
            client.list_features_by_ref(entities=["driver_id"], labels={"pii": "no"})
        )

    # ---- revisions and hashes ----------------------------------------------------------------------------
    with step("revisions") as r:
        r["created"] = raw_meta(client, "driver_trips")
        client.apply(driver_trips())
        r["reapplied_unchanged"] = raw_meta(client, "driver_trips")
        relabelled = driver_trips()
        relabelled.labels = {"team": "matchmaking", "owner": "bo"}
        client.apply(relabelled)
        r["labels_changed"] = raw_meta(client, "driver_trips")
        grown = driver_trips()
        grown.labels = {"team": "matchmaking", "owner": "bo"}
        grown.add_feature(Feature(name="cancellations", dtype=ValueType.INT64))
        client.apply(grown)
        r["feature_added"] = raw_meta(client, "driver_trips")
        r["read_after_changes"] = {"sdk_eq": grown == client.get_feature_table("driver_trips")}
        r["applied_after_changes"] = spec_dict(grown)
        r["read_after_changes"]["read"] = spec_dict(client.get_feature_table("driver_trips"))

    with step("entity_reapply") as r:
        first = client.get_entity("customer_id")
        client.apply(customer_entity())
        same = client.get_entity("customer_id")
        described = customer_entity()
        described.description = "Customer identifier (CRM id)"
        client.apply(described)
        changed = client.get_entity("customer_id")
        r["created_same"] = first.created_timestamp == changed.created_timestamp
        r["updated_unchanged_on_reapply"] = first.last_updated_timestamp == same.last_updated_timestamp
        r["updated_moved_on_change"] = (
            changed.last_updated_timestamp.ToNanoseconds() > first.last_updated_timestamp.ToNanoseconds()
        )
        r["description"] = changed.description

    # ---- rejected changes and unknown objects ------------------------------------------------------------
    with step("entity_type_change") as r:
        retyped = driver_entity()
        retyped.value_type = ValueType.STRING
        r["rejection"] = rejection(lambda: client.apply(retyped))
        r["type_after"] = client.get_entity("driver_id").value_type

    with step("feature_type_change") as r:
        retyped = all_types()
        retyped.features[0] = Feature(name="f_bytes", dtype=ValueType.STRING, labels={"kind": "scalar"})
        r["rejection"] = rejection(lambda: client.apply(retyped))
        r["read_still_equal"] = client.get_feature_table("all_types") == all_types()

    with step("table_entities_change") as r:
        moved = all_types()
        moved.entities = ["driver_id"]
        r["rejection"] = rejection(lambda: client.apply(moved))

    with step("table_entities_reordered") as r:
        # The same entity set in another order: Feast 0.9 Core keeps a table's entities as a set.
        reordered = all_types()
        reordered.entities = ["customer_id", "driver_id"]
        client.apply(reordered)
        r["sdk_eq"] = client.get_feature_table("all_types") == all_types()

    with step("table_unknown_entity") as r:
        orphan = driver_trips()
        orphan.name = "orphan"
        orphan.entities = ["no_such_entity"]
        r["rejection"] = rejection(lambda: client.apply(orphan))

    with step("invalid_specs") as r:
        no_batch = driver_trips()
        no_batch.name = "no_batch"
        no_batch.batch_source = None
        r["table_without_batch_source"] = rejection(lambda: client.apply(no_batch))
        reserved = driver_trips()
        reserved.name = "reserved"
        reserved.add_feature(Feature(name="event_timestamp", dtype=ValueType.INT64))
        r["reserved_feature_name"] = rejection(lambda: client.apply(reserved))
        dashed = driver_entity()
        dashed.name = "driver-id"
        r["entity_name_with_dash"] = rejection(lambda: client.apply(dashed))
        r["tables_after"] = names(client.list_feature_tables())

    with step("get_unknown_table") as r:
        r["rejection"] = rejection(lambda: client.get_feature_table("no_such_table"))

    with step("get_unknown_entity") as r:
        r["rejection"] = rejection(lambda: client.get_entity("no_such_entity"))

    with step("delete_table") as r:
        doomed = driver_trips()
        doomed.name = "doomed"
        client.apply(doomed)
        r["listed_before"] = "doomed" in names(client.list_feature_tables())
        client.delete_feature_table("doomed")
        r["listed_after"] = "doomed" in names(client.list_feature_tables())
        r["get_after_delete"] = rejection(lambda: client.get_feature_table("doomed"))
        r["delete_again"] = rejection(lambda: client.delete_feature_table("doomed"))

    # ---- projects ----------------------------------------------------------------------------------------
    with step("projects") as r:
        client.create_project(PROJECT)
        client.create_project("compat_kept")
        r["after_create"] = client.list_projects()
        client.apply(driver_entity(), project=PROJECT)
        r["entities_in_project"] = names(client.list_entities(project=PROJECT))
        r["entities_in_default"] = names(client.list_entities(project="default"))
        r["get_in_project_eq"] = client.get_entity("driver_id", project=PROJECT) == normalized(
            driver_entity()
        )
        # feast 0.9.5.2's archive_project reads self._project, which Client never sets: the RPC has been sent
        # and answered by the time that AttributeError is raised. Record it apart from gRPC errors.
        try:
            client.archive_project(PROJECT)
            r["archive_sdk_error"] = None
        except grpc.RpcError as exc:
            r["archive"] = rpc_error(exc)
        except AttributeError as exc:
            r["archive_sdk_error"] = str(exc)
        r["after_archive"] = client.list_projects()
        r["apply_to_archived"] = rejection(lambda: client.apply(customer_entity(), project=PROJECT))

    with step("duplicate_project") as r:
        r["rejection"] = rejection(lambda: client.create_project(PROJECT))


if __name__ == "__main__":
    main(sys.argv[1])
    json.dump({"steps": steps}, sys.stdout, indent=1, sort_keys=True, default=str)
