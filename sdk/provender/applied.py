"""What `Client.apply` returns: the entities and feature tables as Core stored them, a list that shows itself
as a table in notebooks and as one line per object in a terminal."""

from __future__ import annotations

from provender.entity import Entity
from provender.feature_table import FeatureTable
from provender.rendering import html_table

Applicable = Entity | FeatureTable


class Applied(list[Applicable]):
    def rows(self) -> list[tuple[str, str, str, str]]:
        """(kind, name, detail, revision) per object."""
        out = []
        for obj in self:
            if isinstance(obj, Entity):
                out.append(("entity", obj.name, obj.value_type.name, ""))
            else:
                features = ", ".join(f"{f.name} {f.dtype.name}" for f in obj.features)
                out.append(
                    ("feature table", obj.name, f"[{', '.join(obj.entities)}] {features}", str(obj.revision))
                )
        return out

    def _repr_html_(self) -> str:
        return html_table(
            f"applied {len(self)} objects", ["kind", "name", "type / features", "revision"], self.rows()
        )

    def __str__(self) -> str:
        return "\n".join(
            f"{kind} {name} ({detail}{', revision ' + rev if rev else ''})"
            for kind, name, detail, rev in self.rows()
        )
