"""Online lookups: turning entity rows into a request and a response into Python, pandas and statuses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from provender.kernel.errors import InvalidArgument
from provender.kernel.value_types import ValueType, from_value, python_value_type, to_value, value_type_of
from provender.proto.feast.serving import ServingService_pb2 as pb
from provender.proto.feast.types import Value_pb2

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
    entity row, in the order the rows were given. `types` are the fields' declared value types (what `to_df`
    makes dtypes of: provender.dtypes); a field missing from it is typed by the values it carries."""

    def __init__(
        self,
        values: dict[str, list[Any]],
        statuses: dict[str, list[str]],
        types: Mapping[str, ValueType] | None = None,
    ) -> None:
        self._values = values
        self._statuses = statuses
        self._types = dict(types or {})

    @classmethod
    def from_rows(
        cls,
        proto: pb.GetOnlineFeaturesResponse,
        order: Iterable[str] = (),
        types: Mapping[str, ValueType] | None = None,
    ) -> OnlineResponse:
        """From GetOnlineFeaturesV2's answer; fields ordered as `order`, then as they come."""
        names: dict[str, None] = dict.fromkeys(order)
        for row in proto.field_values:
            names.update(dict.fromkeys(row.fields))
        present = {n for row in proto.field_values for n in row.fields}
        fields = [n for n in names if n in present]
        rows = proto.field_values
        values = {n: [from_value(r.fields[n]) if n in r.fields else None for r in rows] for n in fields}
        statuses = {n: [Status.Name(r.statuses[n]) for r in rows] for n in fields}
        seen = dict(types or {})
        for n in fields:
            if n not in seen:
                found = (value_type_of(r.fields[n]) for r in rows if n in r.fields)
                seen[n] = next((t for t in found if t is not None), None)  # type: ignore[assignment]
        return cls(values, statuses, {k: v for k, v in seen.items() if v is not None})

    @classmethod
    def from_columnar(
        cls, request: Any, proto: Any, types: Mapping[str, ValueType] | None = None
    ) -> OnlineResponse:
        """From the columnar answer; entity columns first, echoed from the request as PRESENT."""
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        seen = dict(types or {})
        for entity in request.entities:
            values[entity.name] = list(from_value(entity.values) or [])
            statuses[entity.name] = ["PRESENT"] * proto.row_count
            list_type = value_type_of(entity.values)
            if entity.name not in seen and list_type is not None:
                seen[entity.name] = list_type.element_type
        for column in proto.features:
            values[column.name] = [from_value(v) for v in column.values]
            statuses[column.name] = [Status.Name(s) for s in column.statuses]
            if column.name not in seen:
                found = (value_type_of(v) for v in column.values)
                first = next((t for t in found if t is not None), None)
                if first is not None:
                    seen[column.name] = first
        return cls(values, statuses, seen)

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
        """A DataFrame with a column per field, dtypes by provender.dtypes' rule (Int64 for INT64 features with
        pd.NA where there is no value, float32 for FLOAT, ...), the same as in training sets."""
        import pandas as pd

        from provender.dtypes import column

        return pd.DataFrame({name: column(v, self._types.get(name)) for name, v in self._values.items()})

    def _repr_html_(self) -> str:
        from provender.rendering import html_table

        names = self.field_names
        rows = [
            [
                self._values[n][i] if self._statuses[n][i] == "PRESENT" else f"({self._statuses[n][i]})"
                for n in names
            ]
            for i in range(len(self))
        ]
        return html_table(f"online features, {len(self)} rows", names, rows)

    def __len__(self) -> int:
        return len(next(iter(self._values.values()), []))

    def __repr__(self) -> str:
        return f"OnlineResponse({len(self)} rows, fields {self.field_names})"
