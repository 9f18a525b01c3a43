"""Registry validation rules, without a database."""

from __future__ import annotations

import pytest

from provender.core.registry import validation as v
from provender.kernel.errors import InvalidArgument
from provender.kernel.value_types import ValueType
from tests import factories as f


@pytest.mark.parametrize("name", ["driver", "_x", "A1_b2", "x" * 255])
def test_valid_names(name):
    assert v.check_name("name", name) == name


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", "ä", "a.b", "x" * 256])
def test_invalid_names_say_what_is_accepted(name):
    with pytest.raises(InvalidArgument) as info:
        v.check_name("spec.name", name)
    assert str(info.value).startswith("spec.name: ")
    assert "^[a-zA-Z_][a-zA-Z0-9_]*$" in str(info.value)


def test_empty_project_is_default():
    assert v.project_name("") == "default"
    assert v.project_name("fraud") == "fraud"


def test_valid_table_passes():
    v.validate_feature_table(f.table(stream=True))


def test_bigquery_batch_source_is_accepted_with_a_table_ref():
    spec = f.table()
    spec.batch_source.type = v.SourceType.BATCH_BIGQUERY
    spec.batch_source.bigquery_options.table_ref = "proj:ds.tbl"
    v.validate_feature_table(spec)
    spec.batch_source.bigquery_options.table_ref = ""
    with pytest.raises(InvalidArgument, match=r"bigquery_options\.table_ref"):
        v.validate_feature_table(spec)


def test_options_must_match_source_type():
    spec = f.table()
    spec.batch_source.type = v.SourceType.BATCH_BIGQUERY  # but file_options are set
    with pytest.raises(InvalidArgument) as info:
        v.validate_feature_table(spec)
    assert "table_spec.batch_source.options" in str(info.value) and "bigquery_options" in str(info.value)


def test_kafka_source_needs_servers_topic_and_format():
    for field in ("bootstrap_servers", "topic", "message_format"):
        spec = f.table(stream=True)
        spec.stream_source.kafka_options.ClearField(field)
        with pytest.raises(InvalidArgument, match=rf"kafka_options\.{field}"):
            v.validate_feature_table(spec)


def test_kafka_source_without_servers_reads_the_deployments_kafka_when_core_has_one():
    spec = f.table(stream=True)
    spec.stream_source.kafka_options.bootstrap_servers = ""
    with pytest.raises(InvalidArgument) as info:
        v.validate_feature_table(spec)
    assert "kafka_options.bootstrap_servers" in str(info.value) and "--kafka-bootstrap-servers" in str(
        info.value
    )
    v.validate_feature_table(spec, kafka_default="kafka-0.kafka:9092")


def test_unknown_value_type_number_is_reported():
    spec = f.table(features=(f.feature("x", ValueType.FLOAT),))
    spec.features[0].value_type = 9  # a hole in the enum
    with pytest.raises(InvalidArgument) as info:
        v.validate_feature_table(spec)
    assert "table_spec.features[0].value_type: 9" in str(info.value) and "FLOAT_LIST" in str(info.value)


def test_long_values_are_shortened_in_messages():
    with pytest.raises(InvalidArgument) as info:
        v.check_name("name", "-" * 1000)
    assert len(str(info.value)) < 400
