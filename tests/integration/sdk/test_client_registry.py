"""The SDK's Client against a real Core: the registry half of a data scientist's first hour."""

from __future__ import annotations

import pytest

from provender import Client, Entity, Feature, FeatureTable, FileSource, ValueType
from provender.kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    RemoteInvalidArgument,
    RemoteNotFound,
    Unavailable,
)
from provender.local.ports import free_port


def driver_table(**labels: str) -> FeatureTable:
    return FeatureTable(
        name="driver_hourly",
        entities=["driver_id"],
        features=[Feature("conv_rate", ValueType.FLOAT), Feature("trips", ValueType.INT64)],
        batch_source=FileSource(event_timestamp_column="ts", file_url="file:///tmp/driver"),
        labels=labels,
    )


@pytest.fixture
def client(core_server):
    with Client(core_url=core_server.url, serving_url="127.0.0.1:1", project="default") as c:
        yield c


def test_apply_get_list_delete(client):
    driver = Entity("driver_id", ValueType.INT64, "a driver", {"team": "rides"})
    applied = client.apply([driver_table(team="rides"), driver])  # entities go first whatever the order
    assert [type(o).__name__ for o in applied] == ["Entity", "FeatureTable"]
    assert client.get_entity("driver_id") == driver
    stored = client.get_feature_table("driver_hourly")
    assert stored == driver_table(team="rides") and stored.revision == 1 and stored.created is not None
    assert [t.name for t in client.list_feature_tables(labels={"team": "rides"})] == ["driver_hourly"]
    assert client.list_feature_tables(labels={"team": "ads"}) == []
    assert list(client.list_features_by_ref(entities=["driver_id"])) == [
        "driver_hourly:conv_rate",
        "driver_hourly:trips",
    ]
    assert client.apply(driver_table(team="ads"))[0].revision == 2
    client.delete_feature_table("driver_hourly")
    assert client.list_feature_tables() == []


def test_projects(client):
    client.create_project("fraud")
    client.apply(Entity("customer_id", ValueType.STRING), project="fraud")
    assert client.list_projects() == ["default", "fraud"]
    assert [e.name for e in client.list_entities(project="fraud")] == ["customer_id"]
    with pytest.raises(AlreadyExists):
        client.create_project("fraud")
    client.archive_project("fraud")
    with pytest.raises(FailedPrecondition, match="archived"):
        client.apply(Entity("x", ValueType.STRING), project="fraud")


def test_errors_name_the_object_and_field(client):
    with pytest.raises(RemoteNotFound, match="feature table 'ghost' does not exist in project 'default'"):
        client.get_feature_table("ghost")
    client.apply(Entity("driver_id", ValueType.INT64))
    with pytest.raises(RemoteInvalidArgument, match=r"spec\.value_type.*cannot change"):
        client.apply(Entity("driver_id", ValueType.STRING))
    with pytest.raises(RemoteNotFound, match="entity 'rider_id'"):
        bad = driver_table()
        bad.entities = ["rider_id"]
        client.apply(bad)


def test_unreachable_core_names_its_url():
    url = f"127.0.0.1:{free_port()}"
    with Client(core_url=url, timeout=3) as c, pytest.raises(Unavailable, match=f"Core at {url}"):
        c.list_projects()
