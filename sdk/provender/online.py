"""Online lookups: turning entity rows into a request and a response into Python, pandas and statuses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from provender.errors import InvalidArgument
from provender.proto.feast.serving import ServingService_pb2 as pb
from provender.proto.feast.types import Value_pb2
from provender.value_type import ValueType, from_value, python_value_type, to_value

Status = pb.GetOnlineFeaturesResponse.FieldStatus


def parse_refs(refs: Iterable[str]) -> list[pb.FeatureReferenceV2]:
    out = []
    for i, ref in enumerate(refs):
        table, sep, name = ref.partition(":")
        if not sep or not table or not name:
            raise InvalidArgument(f"feature_refs[{i}]", ref, 'a reference "table:feature"')
        out.append(pb.FeatureReferenceV2(feature_table=table, name=name))
    if not out:
        raise InvalidArgument("feature_refs", [], 'at least one reference "table:feature"')
    return out


def build_request(
    refs: Iterable[str],
    entity_rows: Iterable[Mapping[str, Any]],
    project: str,
    entity_types: Mapping[str, ValueType],
) -> pb.GetOnlineFeaturesRequestV2:
    """Entity values are typed as the registry declares their entity (an INT32 entity is sent as INT32), or
    from the Python value when the entity is unknown; a Value given as is is sent unchanged."""
    request = pb.GetOnlineFeaturesRequestV2(features=parse_refs(refs), project=project)
    for i, row in enumerate(entity_rows):
        out = request.entity_rows.add()
        for name, value in row.items():
            if isinstance(value, Value_pb2.Value):
                out.fields[name].CopyFrom(value)
                continue
            vt = entity_types.get(name) or python_value_type(value)
            try:
                out.fields[name].CopyFrom(to_value(value, vt))
            except (TypeError, ValueError) as e:
                raise InvalidArgument(f"entity_rows[{i}].{name}", value, f"a {vt.name} value ({e})") from None
    if not request.entity_rows:
        raise InvalidArgument("entity_rows", [], "at least one entity row")
    return request


def build_columnar_request(
    refs: Iterable[str],
    entity_rows: list[Mapping[str, Any]],
    project: str,
    entity_types: Mapping[str, ValueType],
) -> Any | None:
    """The same lookup as a columnar request, or None when the rows do not all have the same entity keys or
    carry ready-made Values (then GetOnlineFeaturesV2 is used)."""
    from provender.proto.provender.serving import ColumnarServing_pb2 as cpb

    if not entity_rows:
        return None
    names = list(entity_rows[0])
    if any(list(row) != names for row in entity_rows) or any(
        isinstance(v, Value_pb2.Value) for row in entity_rows for v in row.values()
    ):
        return None
    request = cpb.GetOnlineFeaturesColumnarRequest(project=project, features=parse_refs(refs))
    for name in names:
        column = [row[name] for row in entity_rows]
        vt = entity_types.get(name) or python_value_type(column[0])
        list_type = ValueType(vt.value + 10) if not vt.is_list else None
        if list_type is None:
            return None
        try:
            request.entities.add(name=name, values=to_value(column, list_type))
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"entity_rows[*].{name}", column[:3], f"{vt.name} values ({e})") from None
    return request


class OnlineResponse:
    """The answer of an online lookup: per field ("entity" or "table:feature"), a value and a status per
    entity row, in the order the rows were given."""

    def __init__(self, values: dict[str, list[Any]], statuses: dict[str, list[str]]) -> None:
        self._values = values
        self._statuses = statuses

    @classmethod
    def from_rows(cls, proto: pb.GetOnlineFeaturesResponse, order: Iterable[str] = ()) -> OnlineResponse:
        """From GetOnlineFeaturesV2's answer; fields ordered as `order`, then as they come."""
        names: dict[str, None] = dict.fromkeys(order)
        for row in proto.field_values:
            names.update(dict.fromkeys(row.fields))
        present = {n for row in proto.field_values for n in row.fields}
        fields = [n for n in names if n in present]
        rows = proto.field_values
        values = {n: [from_value(r.fields[n]) if n in r.fields else None for r in rows] for n in fields}
        statuses = {n: [Status.Name(r.statuses[n]) for r in rows] for n in fields}
        return cls(values, statuses)

    @classmethod
    def from_columnar(cls, request: Any, proto: Any) -> OnlineResponse:
        """From the columnar answer; entity columns first, echoed from the request as PRESENT."""
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        for entity in request.entities:
            values[entity.name] = list(from_value(entity.values) or [])
            statuses[entity.name] = ["PRESENT"] * proto.row_count
        for column in proto.features:
            values[column.name] = [from_value(v) for v in column.values]
            statuses[column.name] = [Status.Name(s) for s in column.statuses]
        return cls(values, statuses)

    @property
    def field_names(self) -> list[str]:
        return list(self._values)

    def to_dict(self) -> dict[str, list[Any]]:
        """Field name -> values per row (None where there is no value)."""
        return {k: list(v) for k, v in self._values.items()}

    def statuses(self) -> dict[str, list[str]]:
        """Field name -> status per row: PRESENT, NULL_VALUE, NOT_FOUND or OUTSIDE_MAX_AGE."""
        return {k: list(v) for k, v in self._statuses.items()}

    def to_df(self):
        import pandas as pd

        return pd.DataFrame(self._values)

    def __len__(self) -> int:
        return len(next(iter(self._values.values()), []))

    def __repr__(self) -> str:
        return f"OnlineResponse({len(self)} rows, fields {self.field_names})"
