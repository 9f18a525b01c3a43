"""The registry's domain operations: apply, get, list and delete projects, entities and feature tables.

Knows nothing of gRPC. Each apply is one transaction that locks the row it changes (SELECT ... FOR UPDATE),
so concurrent applies of the same object are serialised and none is lost; an apply that changes nothing
returns the stored object unchanged (same revision).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from provender.core.registry import validation
from provender.core.registry.database import Database
from provender.core.registry.fingerprint import table_hash
from provender.core.registry.schema import EntityRow, FeatureTableRow, ProjectRow
from provender.kernel.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from provender.proto.feast.core import Entity_pb2, Feature_pb2, FeatureTable_pb2

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class StoredEntity:
    project: str
    spec: Entity_pb2.EntitySpecV2
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class StoredTable:
    project: str
    spec: FeatureTable_pb2.FeatureTableSpec
    revision: int
    hash: str
    created: datetime
    updated: datetime


def _to_json(spec: Message) -> dict[str, Any]:
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def _from_json(data: dict[str, Any], cls: type[M]) -> M:
    return json_format.ParseDict(data, cls())


def _labels_match(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _now() -> datetime:
    return datetime.now(UTC)


def _advance_revision(s: Session) -> None:
    """Every write that changes what Serving serves (tables, archived projects) advances the registry's
    revision, in its own transaction (a write rolled back leaves a gap: a reload for nothing, never a miss)."""
    s.execute(text("SELECT nextval('registry_revision')"))


class Registry:
    def __init__(self, db: Database, kafka_bootstrap_servers: str = "") -> None:
        self.db = db
        # the deployment's Kafka: a table's KafkaSource may then leave its brokers empty (the job reads these)
        self.kafka_bootstrap_servers = kafka_bootstrap_servers

    # projects --------------------------------------------------------------------------------------------

    def create_project(self, name: str) -> None:
        validation.check_name("name", name)
        with self.db.transaction() as s:
            inserted = s.execute(
                insert(ProjectRow)
                .values(name=name, archived=False, created_at=_now())
                .on_conflict_do_nothing()
                .returning(ProjectRow.name)
            ).first()
            if inserted is None:
                archived = s.scalar(select(ProjectRow.archived).where(ProjectRow.name == name))
                state = "an archived project" if archived else "a project"
                raise AlreadyExists(f"{state} named {name!r} already exists; project names are never reused")

    def archive_project(self, name: str) -> None:
        validation.check_name("name", name)
        if name == validation.DEFAULT_PROJECT:
            raise InvalidArgument("name", name, "a project other than 'default', which cannot be archived")
        with self.db.transaction() as s:
            row = s.get(ProjectRow, name, with_for_update=True)
            if row is None:
                raise NotFound("project", name)
            if row.archived:
                raise FailedPrecondition(f"project {name!r} is already archived")
            row.archived = True
            _advance_revision(s)

    def list_projects(self) -> list[str]:
        with self.db.transaction() as s:
            return list(
                s.scalars(select(ProjectRow.name).where(~ProjectRow.archived).order_by(ProjectRow.name))
            )

    def _writable_project(self, s: Session, project: str, create: bool) -> None:
        """Lock-free check that `project` exists and is active; creates it when `create`."""
        if create:
            s.execute(
                insert(ProjectRow)
                .values(name=project, archived=False, created_at=_now())
                .on_conflict_do_nothing()
            )
        archived = s.scalar(select(ProjectRow.archived).where(ProjectRow.name == project))
        if archived is None:
            raise NotFound("project", project, hint="create it with CreateProject or by applying an entity")
        if archived:
            raise FailedPrecondition(f"project {project!r} is archived; archived projects accept no changes")

    # entities --------------------------------------------------------------------------------------------

    def apply_entity(self, project: str, spec: Entity_pb2.EntitySpecV2) -> StoredEntity:
        project = validation.project_name(project)
        validation.validate_entity(spec)
        now = _now()
        with self.db.transaction() as s:
            self._writable_project(s, project, create=True)
            s.execute(
                insert(EntityRow)
                .values(project=project, name=spec.name, spec=_to_json(spec), created_at=now, updated_at=now)
                .on_conflict_do_nothing()
            )
            row = s.get(EntityRow, (project, spec.name), with_for_update=True, populate_existing=True)
            assert row is not None
            stored = _from_json(row.spec, Entity_pb2.EntitySpecV2)
            if stored.value_type != spec.value_type:
                raise InvalidArgument(
                    "spec.value_type",
                    Entity_pb2.EntitySpecV2.DESCRIPTOR.fields_by_name["value_type"]
                    .enum_type.values_by_number[spec.value_type]
                    .name,
                    f"{validation.ValueType(stored.value_type).name}, the type entity {spec.name!r} was "
                    "created with (an entity's type cannot change)",
                )
            if stored != spec:
                row.spec = _to_json(spec)
                row.updated_at = now
            return StoredEntity(project, spec, row.created_at, row.updated_at)

    def get_entity(self, project: str, name: str) -> StoredEntity:
        project = validation.project_name(project)
        validation.check_name("name", name)
        with self.db.transaction() as s:
            row = s.get(EntityRow, (project, name))
            if row is None:
                raise NotFound("entity", name, project)
            return self._entity(row)

    def list_entities(self, project: str, labels: Mapping[str, str]) -> list[StoredEntity]:
        project = validation.project_name(project, "filter.project")
        with self.db.transaction() as s:
            rows = s.scalars(select(EntityRow).where(EntityRow.project == project).order_by(EntityRow.name))
            found = [self._entity(r) for r in rows]
        return [e for e in found if _labels_match(e.spec.labels, labels)]

    @staticmethod
    def _entity(row: EntityRow) -> StoredEntity:
        return StoredEntity(
            row.project, _from_json(row.spec, Entity_pb2.EntitySpecV2), row.created_at, row.updated_at
        )

    # feature tables --------------------------------------------------------------------------------------

    def apply_feature_table(self, project: str, spec: FeatureTable_pb2.FeatureTableSpec) -> StoredTable:
        project = validation.project_name(project)
        validation.validate_feature_table(spec, self.kafka_bootstrap_servers)
        now = _now()
        new_hash = table_hash(spec)
        with self.db.transaction() as s:
            self._writable_project(s, project, create=False)
            known = set(
                s.scalars(
                    select(EntityRow.name).where(
                        EntityRow.project == project, EntityRow.name.in_(spec.entities)
                    )
                )
            )
            for i, entity in enumerate(spec.entities):
                if entity not in known:
                    raise NotFound(
                        "entity", entity, project, hint=f"table_spec.entities[{i}] must be applied first"
                    )
            s.execute(
                insert(FeatureTableRow)
                .values(
                    project=project,
                    name=spec.name,
                    spec=_to_json(spec),
                    revision=1,
                    hash=new_hash,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing()
            )
            row = s.get(FeatureTableRow, (project, spec.name), with_for_update=True, populate_existing=True)
            assert row is not None
            stored = _from_json(row.spec, FeatureTable_pb2.FeatureTableSpec)
            if stored != spec:
                _check_table_update(stored, spec)
                row.spec = _to_json(spec)
                row.hash = new_hash
                row.revision += 1
                row.updated_at = now
            _advance_revision(s)
            return self._table(row, spec)

    def get_feature_table(self, project: str, name: str) -> StoredTable:
        project = validation.project_name(project)
        validation.check_name("name", name)
        with self.db.transaction() as s:
            row = s.get(FeatureTableRow, (project, name))
            if row is None:
                raise NotFound("feature table", name, project)
            return self._table(row)

    def list_feature_tables(self, project: str, labels: Mapping[str, str]) -> list[StoredTable]:
        project = validation.project_name(project, "filter.project")
        with self.db.transaction() as s:
            rows = s.scalars(
                select(FeatureTableRow)
                .where(FeatureTableRow.project == project)
                .order_by(FeatureTableRow.name)
            )
            found = [self._table(r) for r in rows]
        return [t for t in found if _labels_match(t.spec.labels, labels)]

    def delete_feature_table(self, project: str, name: str) -> None:
        project = validation.project_name(project)
        validation.check_name("name", name)
        with self.db.transaction() as s:
            self._writable_project(s, project, create=False)
            deleted = s.execute(
                delete(FeatureTableRow)
                .where(FeatureTableRow.project == project, FeatureTableRow.name == name)
                .returning(FeatureTableRow.name)
            ).first()
            if deleted is None:
                raise NotFound("feature table", name, project)
            _advance_revision(s)

    def revision(self) -> int:
        """The registry's revision: it changes with every write to tables and projects (0: none yet)."""
        with self.db.transaction() as s:
            last, called = s.execute(text("SELECT last_value, is_called FROM registry_revision")).one()
            return int(last) if called else 0

    def list_features(
        self, project: str, entities: list[str], labels: Mapping[str, str]
    ) -> dict[str, Feature_pb2.FeatureSpecV2]:
        """Features keyed "table:feature", with all of `labels`, of tables whose entity set is exactly
        `entities` (Feast 0.9's rule; no entities means every table)."""
        wanted = set(entities)
        out: dict[str, Feature_pb2.FeatureSpecV2] = {}
        for table in self.list_feature_tables(project, {}):
            if wanted and set(table.spec.entities) != wanted:
                continue
            for feature in table.spec.features:
                if _labels_match(feature.labels, labels):
                    out[f"{table.spec.name}:{feature.name}"] = feature
        return out

    @staticmethod
    def _table(row: FeatureTableRow, spec: FeatureTable_pb2.FeatureTableSpec | None = None) -> StoredTable:
        return StoredTable(
            project=row.project,
            spec=spec if spec is not None else _from_json(row.spec, FeatureTable_pb2.FeatureTableSpec),
            revision=row.revision,
            hash=row.hash,
            created=row.created_at,
            updated=row.updated_at,
        )


def _check_table_update(
    old: FeatureTable_pb2.FeatureTableSpec, new: FeatureTable_pb2.FeatureTableSpec
) -> None:
    """The parts of a table that cannot change: its entity set (order is free) and the type of a kept feature."""
    if set(old.entities) != set(new.entities):
        raise InvalidArgument(
            "table_spec.entities",
            list(new.entities),
            f"{list(old.entities)}, the entities table {old.name!r} was created with (they cannot change; "
            "create a new table instead)",
        )
    old_types = {f.name: f.value_type for f in old.features}
    for i, feature in enumerate(new.features):
        before = old_types.get(feature.name)
        if before is not None and before != feature.value_type:
            raise InvalidArgument(
                f"table_spec.features[{i}].value_type",
                validation.ValueType(feature.value_type).name,
                f"{validation.ValueType(before).name}, the type feature {feature.name!r} already has "
                "(a feature's type cannot change; add a feature with a new name instead)",
            )
