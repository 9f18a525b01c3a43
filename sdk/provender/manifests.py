"""Registry objects from YAML files: our friendly form (`kind: Entity` / `kind: FeatureTable`, as `to_yaml`
writes) and the Feast 0.9 form (the protobuf JSON of Entity / FeatureTable, camelCase, under `spec:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from provender.entity import Entity
from provender.feature_table import FeatureTable
from provender.kernel.errors import InvalidArgument
from provender.proto.feast.core import Entity_pb2, FeatureTable_pb2


def from_document(doc: Any, where: str) -> Entity | FeatureTable:
    if not isinstance(doc, dict):
        raise InvalidArgument(
            where, doc, "a mapping with kind: Entity or kind: FeatureTable, or a Feast spec:"
        )
    try:
        if "spec" in doc:  # Feast 0.9: {spec: {...}, meta: {...}}
            spec = doc["spec"] or {}
            if "features" in spec:
                return FeatureTable.from_proto(
                    json_format.ParseDict(doc, FeatureTable_pb2.FeatureTable(), ignore_unknown_fields=True)
                )
            return Entity.from_proto(
                json_format.ParseDict(doc, Entity_pb2.Entity(), ignore_unknown_fields=True)
            )
        kind = str(doc.get("kind", ""))
        if kind == "Entity":
            return Entity.from_dict(doc)
        if kind == "FeatureTable":
            return FeatureTable.from_dict(doc)
    except (json_format.ParseError, KeyError, TypeError, ValueError) as e:
        raise InvalidArgument(
            where, doc.get("name") or doc.get("spec", {}).get("name"), f"a valid object ({e})"
        ) from None
    raise InvalidArgument(f"{where}.kind", doc.get("kind"), "Entity or FeatureTable (or a Feast 0.9 spec:)")


def load(path: str | Path) -> list[Entity | FeatureTable]:
    """Every object of a YAML file (several documents separated by ---)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise InvalidArgument("file", str(path), f"a readable YAML file ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise InvalidArgument("file", str(path), "a YAML text file (it is not UTF-8 text)") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise InvalidArgument(str(path), "YAML", f"valid YAML ({e})") from None
    return [from_document(d, f"{path}[{i}]") for i, d in enumerate(docs)]
