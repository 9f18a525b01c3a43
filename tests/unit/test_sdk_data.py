"""The SDK's data helpers without servers: ingest's checks before writing, online requests and responses."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow.parquet as pq
import pytest

from provender import Feature, FeatureTable, FileSource, ValueType
from provender.ingest import to_arrow, write
from provender.kernel.errors import InvalidArgument
from provender.kernel.value_types import to_value
from provender.online import OnlineResponse, build_request
from provender.proto.feast.serving import ServingService_pb2 as pb


def table(url: str = "file:///tmp/x") -> FeatureTable:
    return FeatureTable(
        name="drivers",
        entities=["driver_id"],
        features=[Feature("rating", ValueType.FLOAT), Feature("tags", ValueType.STRING_LIST)],
        batch_source=FileSource(
            event_timestamp_column="ts",
            date_partition_column="date",
            field_mapping={"rating": "score"},
            file_url=url,
        ),
    )


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [1, 2],
            "score": [4.5, 3.0],
            "tags": [["a"], []],
            "ts": [datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 21, 10, tzinfo=UTC)],
        }
    )


def test_to_arrow_types_maps_and_partitions(tmp_path):
    data = to_arrow(frame(), table(), {"driver_id": ValueType.INT32})
    assert str(data.schema.field("driver_id").type) == "int32"
    assert str(data.schema.field("score").type) == "float"
    assert str(data.schema.field("tags").type) == "list<item: string>"
    assert data.column("date").to_pylist() == ["2026-11-20", "2026-11-21"]
    result = write(data, table(tmp_path.as_uri()))
    assert result.rows == 2 and result.partitions == ["2026-11-20", "2026-11-21"]
    back = pq.read_table(tmp_path).to_pandas()
    assert sorted(back["score"].tolist()) == [3.0, 4.5]


def test_missing_column_is_named_before_anything_is_written(tmp_path):
    with pytest.raises(InvalidArgument, match=r"including \['score'\]"):
        to_arrow(frame().drop(columns=["score"]), table(tmp_path.as_uri()), {"driver_id": ValueType.INT64})
    assert list(tmp_path.iterdir()) == []


def test_value_of_the_wrong_type_is_named():
    bad = frame().assign(score=["high", "low"])
    with pytest.raises(InvalidArgument, match=r"column score.*FLOAT"):
        to_arrow(bad, table(), {"driver_id": ValueType.INT64})


def test_request_types_entities_as_registered():
    request = build_request(["t:f"], [{"driver_id": 7, "name": "x"}], "p", {"driver_id": ValueType.INT32})
    fields = request.entity_rows[0].fields
    assert fields["driver_id"].WhichOneof("val") == "int32_val"  # from the registry
    assert fields["name"].WhichOneof("val") == "string_val"  # inferred from Python
    with pytest.raises(InvalidArgument, match=r"feature_refs\[0\]"):
        build_request(["nocolon"], [{"a": 1}], "p", {})
    with pytest.raises(InvalidArgument, match="entity_rows"):
        build_request(["t:f"], [], "p", {})


def test_response_orders_fields_and_reports_statuses():
    proto = pb.GetOnlineFeaturesResponse()
    row = proto.field_values.add()
    row.fields["t:f"].CopyFrom(to_value(1.5, ValueType.DOUBLE))
    row.fields["driver_id"].CopyFrom(to_value(7))
    row.statuses["t:f"] = pb.GetOnlineFeaturesResponse.PRESENT
    row.statuses["driver_id"] = pb.GetOnlineFeaturesResponse.PRESENT
    missing = proto.field_values.add()
    missing.fields["driver_id"].CopyFrom(to_value(8))
    missing.fields["t:f"].CopyFrom(to_value(None))
    missing.statuses["driver_id"] = pb.GetOnlineFeaturesResponse.PRESENT
    missing.statuses["t:f"] = pb.GetOnlineFeaturesResponse.NOT_FOUND
    response = OnlineResponse.from_rows(proto, order=["driver_id", "t:f"])
    assert response.to_dict() == {"driver_id": [7, 8], "t:f": [1.5, None]}
    assert response.statuses() == {"driver_id": ["PRESENT", "PRESENT"], "t:f": ["PRESENT", "NOT_FOUND"]}
    assert list(response.to_df().columns) == ["driver_id", "t:f"] and len(response) == 2


def test_columnar_request_needs_the_same_keys_in_every_row():
    from provender.online import build_columnar_request

    request = build_columnar_request(
        ["t:f"], [{"driver_id": 1}, {"driver_id": 2}], "p", {"driver_id": ValueType.INT32}
    )
    assert request.entities[0].values.int32_list_val.val == [1, 2]
    assert build_columnar_request(["t:f"], [{"driver_id": 1}, {"rider": 2}], "p", {}) is None


def test_a_source_you_cannot_write_names_the_table_and_the_source(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    url = (blocker / "driver_stats").as_uri()  # a folder under a file: not writable, as root too
    with pytest.raises(InvalidArgument) as e:
        write(to_arrow(frame(), table(url), {"driver_id": ValueType.INT64}), table(url))
    message = str(e.value)
    assert "feature table 'drivers' batch_source.file_url" in message and url in message
    assert "a location this process can write" in message


def test_ingest_without_the_declared_created_column_writes_it_as_nulls(tmp_path):
    spec = table((tmp_path / "t").as_uri())
    spec.batch_source.created_timestamp_column = "created_timestamp"
    arrow = to_arrow(frame(), spec, {"driver_id": ValueType.INT64})
    assert arrow.column("created_timestamp").null_count == 2


def test_notebook_renderings_are_tables():
    from provender.applied import Applied
    from provender.entity import Entity
    from provender.ingest import IngestResult

    applied = Applied([Entity("driver_id", ValueType.INT64), table()])
    html = applied._repr_html_()
    assert html.count("<tr>") == 3 and "driver_id" in html and "rating FLOAT" in html
    online = OnlineResponse(
        {"driver_id": [1, 2], "t:f": [0.5, None]},
        {"driver_id": ["PRESENT"] * 2, "t:f": ["PRESENT", "NOT_FOUND"]},
    )
    assert "(NOT_FOUND)" in online._repr_html_() and online._repr_html_().count("<tr>") == 3
    result = IngestResult("drivers", 3600, "file:///data", ["2026-11-28", "2026-11-29"])
    assert "3,600" in result._repr_html_()
