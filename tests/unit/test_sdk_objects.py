"""SDK objects: proto and dict/YAML round trips, Feast 0.9 keyword compatibility, notebook rendering."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from provender import (
    AvroFormat,
    Entity,
    Feature,
    FeatureTable,
    FileSource,
    KafkaSource,
    ProtoFormat,
    ValueType,
)


def table() -> FeatureTable:
    return FeatureTable(
        name="driver_hourly",
        entities=["driver_id"],
        features=[Feature("conv_rate", ValueType.FLOAT, labels={"pii": "no"}), Feature("trips", "int64")],
        batch_source=FileSource(
            event_timestamp_column="ts",
            created_timestamp_column="created",
            date_partition_column="date",
            field_mapping={"conv_rate": "cr"},
            file_url="s3://bucket/driver",
        ),
        stream_source=KafkaSource(
            event_timestamp_column="ts",
            bootstrap_servers="k:9092",
            topic="t",
            message_format=AvroFormat('{"type":"record"}'),
        ),
        max_age=timedelta(hours=2),
        labels={"team": "rides"},
    )


def test_feature_table_proto_round_trip():
    t = table()
    assert FeatureTable.from_proto(t.to_proto()) == t
    assert t.to_proto().max_age.seconds == 7200
    assert t.feature("trips").dtype is ValueType.INT64
    with pytest.raises(KeyError, match="has no feature 'nope'"):
        t.feature("nope")


def test_dict_and_yaml_round_trip():
    t = table()
    data = yaml.safe_load(t.to_yaml())
    assert data["kind"] == "FeatureTable" and data["max_age"] == "7200s"
    assert FeatureTable.from_dict(data) == t
    e = Entity("driver_id", "INT64", "a driver", {"a": "b"})
    assert Entity.from_dict(yaml.safe_load(e.to_yaml())) == e
    assert Entity.from_proto(e.to_proto()) == e


def test_feast09_keywords_work():
    e = Entity(name="driver_id", description="d", value_type=ValueType.INT64, labels=None)
    assert e.labels == {}
    s = FileSource(event_timestamp_column="ts", path="file:///x")  # Feast 0.9's alias
    assert s.file_url == "file:///x"
    k = KafkaSource("ts", "k:9092", ProtoFormat("a.B"), "topic")
    assert KafkaSource.__name__ == "KafkaSource" and k.to_proto().kafka_options.topic == "topic"


def test_bad_inputs_say_what_is_accepted():
    with pytest.raises(ValueError, match="expected one of BYTES"):
        Feature("x", "decimal")
    with pytest.raises(ValueError, match="file_url is required"):
        FileSource(event_timestamp_column="ts")


def test_zero_max_age_means_none_and_html_renders():
    t = table()
    t.max_age = None
    assert FeatureTable.from_proto(t.to_proto()).max_age is None
    html = table()._repr_html_()
    assert "<table>" in html and "driver_hourly" in html and "conv_rate" in html


def test_producing_for_a_source_without_brokers_needs_the_deployments_kafka(monkeypatch):
    """A KafkaSource applied with bootstrap_servers "" reads Core's default brokers; the SDK must be told them
    to produce (before it connects anywhere)."""
    import dataclasses

    import pandas as pd

    from provender import Client
    from provender.kernel.errors import InvalidArgument

    monkeypatch.delenv("PROVENDER_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("PROVENDER_CONFIG", "/nonexistent/provender-config")
    t = table()
    t.stream_source = dataclasses.replace(t.stream_source, bootstrap_servers="")
    with pytest.raises(InvalidArgument) as info:
        Client("localhost:1", "localhost:2").produce_to_stream(t, pd.DataFrame({"driver_id": [1]}))
    assert "kafka_bootstrap_servers" in str(info.value) and "PROVENDER_KAFKA_BOOTSTRAP_SERVERS" in str(
        info.value
    )
    configured = Client("localhost:1", "localhost:2", kafka_bootstrap_servers="broker:9092")
    assert configured.config.kafka_bootstrap_servers == "broker:9092"
