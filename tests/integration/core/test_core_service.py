"""CoreService against a real Postgres, over gRPC, as a client sees it."""

from __future__ import annotations

import grpc
import pytest

from provender.kernel.value_types import ValueType
from provender.proto.feast.core import CoreService_pb2 as pb
from tests import factories as f


def error_of(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args)
    return info.value


def apply_entity(stub, spec, project: str = "") -> pb.ApplyEntityResponse:
    return stub.ApplyEntity(pb.ApplyEntityRequest(spec=spec, project=project))


def apply_table(stub, spec, project: str = "") -> pb.ApplyFeatureTableResponse:
    return stub.ApplyFeatureTable(pb.ApplyFeatureTableRequest(table_spec=spec, project=project))


class TestVersionAndStores:
    def test_version(self, core_stub):
        import provender

        assert core_stub.GetFeastCoreVersion(pb.GetFeastCoreVersionRequest()).version == provender.__version__

    def test_list_stores_is_empty_and_update_store_unimplemented(self, core_stub):
        assert list(core_stub.ListStores(pb.ListStoresRequest()).store) == []
        err = error_of(core_stub.UpdateStore, pb.UpdateStoreRequest())
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "--redis-url" in err.details()


class TestProjects:
    def test_default_project_exists_from_the_start(self, core_stub):
        assert list(core_stub.ListProjects(pb.ListProjectsRequest()).projects) == ["default"]

    def test_create_list_archive(self, core_stub):
        core_stub.CreateProject(pb.CreateProjectRequest(name="fraud"))
        core_stub.CreateProject(pb.CreateProjectRequest(name="ads"))
        assert list(core_stub.ListProjects(pb.ListProjectsRequest()).projects) == ["ads", "default", "fraud"]
        core_stub.ArchiveProject(pb.ArchiveProjectRequest(name="ads"))
        assert list(core_stub.ListProjects(pb.ListProjectsRequest()).projects) == ["default", "fraud"]

    def test_project_errors(self, core_stub):
        core_stub.CreateProject(pb.CreateProjectRequest(name="fraud"))
        assert error_of(core_stub.CreateProject, pb.CreateProjectRequest(name="fraud")).code() == (
            grpc.StatusCode.ALREADY_EXISTS
        )
        err = error_of(core_stub.CreateProject, pb.CreateProjectRequest(name="bad-name"))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "name" in err.details() and "bad-name" in err.details()
        assert error_of(core_stub.ArchiveProject, pb.ArchiveProjectRequest(name="nope")).code() == (
            grpc.StatusCode.NOT_FOUND
        )
        err = error_of(core_stub.ArchiveProject, pb.ArchiveProjectRequest(name="default"))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        core_stub.ArchiveProject(pb.ArchiveProjectRequest(name="fraud"))
        assert error_of(core_stub.ArchiveProject, pb.ArchiveProjectRequest(name="fraud")).code() == (
            grpc.StatusCode.FAILED_PRECONDITION
        )
        # An archived name is never reused.
        assert error_of(core_stub.CreateProject, pb.CreateProjectRequest(name="fraud")).code() == (
            grpc.StatusCode.ALREADY_EXISTS
        )

    def test_archived_project_rejects_writes_but_keeps_its_objects_readable(self, core_stub):
        apply_entity(core_stub, f.entity(), project="fraud")
        apply_table(core_stub, f.table(), project="fraud")
        core_stub.ArchiveProject(pb.ArchiveProjectRequest(name="fraud"))
        for call, request in [
            (core_stub.ApplyEntity, pb.ApplyEntityRequest(spec=f.entity("other"), project="fraud")),
            (core_stub.ApplyFeatureTable, pb.ApplyFeatureTableRequest(table_spec=f.table(), project="fraud")),
            (
                core_stub.DeleteFeatureTable,
                pb.DeleteFeatureTableRequest(name="driver_hourly", project="fraud"),
            ),
        ]:
            err = error_of(call, request)
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "archived" in err.details()
        got = core_stub.GetFeatureTable(pb.GetFeatureTableRequest(project="fraud", name="driver_hourly"))
        assert got.table.spec == f.table()


class TestEntities:
    def test_apply_creates_project_and_round_trips(self, core_stub):
        spec = f.entity("customer_id", ValueType.STRING, team="risk", tier="gold")
        applied = apply_entity(core_stub, spec, project="fraud").entity
        assert applied.spec == spec
        assert applied.meta.created_timestamp.seconds > 0
        assert "fraud" in core_stub.ListProjects(pb.ListProjectsRequest()).projects
        got = core_stub.GetEntity(pb.GetEntityRequest(name="customer_id", project="fraud")).entity
        assert got == applied

    def test_empty_project_means_default(self, core_stub):
        apply_entity(core_stub, f.entity())
        got = core_stub.GetEntity(pb.GetEntityRequest(name="driver_id", project="default")).entity
        assert got.spec == f.entity()

    def test_update_keeps_created_time_and_changes_description_and_labels(self, core_stub):
        first = apply_entity(core_stub, f.entity(team="a")).entity
        spec = f.entity(team="b")
        spec.description = "new words"
        second = apply_entity(core_stub, spec).entity
        assert second.spec == spec
        assert second.meta.created_timestamp == first.meta.created_timestamp
        assert (
            second.meta.last_updated_timestamp.ToNanoseconds()
            > first.meta.last_updated_timestamp.ToNanoseconds()
        )

    def test_unchanged_apply_does_not_touch_update_time(self, core_stub):
        first = apply_entity(core_stub, f.entity()).entity
        again = apply_entity(core_stub, f.entity()).entity
        assert again.meta == first.meta

    def test_type_cannot_change(self, core_stub):
        apply_entity(core_stub, f.entity())
        err = error_of(
            core_stub.ApplyEntity, pb.ApplyEntityRequest(spec=f.entity(value_type=ValueType.STRING))
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "spec.value_type" in err.details() and "INT64" in err.details() and "STRING" in err.details()

    def test_list_with_label_filter_and_project_isolation(self, core_stub):
        apply_entity(core_stub, f.entity("a", team="risk", env="prod"))
        apply_entity(core_stub, f.entity("b", team="risk"))
        apply_entity(core_stub, f.entity("c", team="ads"))
        apply_entity(core_stub, f.entity("d", team="risk"), project="other")

        def names(**labels):
            req = pb.ListEntitiesRequest(filter=pb.ListEntitiesRequest.Filter(labels=labels))
            return [e.spec.name for e in core_stub.ListEntities(req).entities]

        assert names() == ["a", "b", "c"]
        assert names(team="risk") == ["a", "b"]
        assert names(team="risk", env="prod") == ["a"]
        assert names(team="none") == []
        other = pb.ListEntitiesRequest(filter=pb.ListEntitiesRequest.Filter(project="other"))
        assert [e.spec.name for e in core_stub.ListEntities(other).entities] == ["d"]

    def test_list_in_unknown_project_is_empty(self, core_stub):
        req = pb.ListEntitiesRequest(filter=pb.ListEntitiesRequest.Filter(project="nobody"))
        assert list(core_stub.ListEntities(req).entities) == []

    @pytest.mark.parametrize(
        ("spec", "field"),
        [
            (f.entity("1driver"), "spec.name"),
            (f.entity("driver-id"), "spec.name"),
            (f.entity(""), "spec.name"),
            (f.entity(value_type=ValueType.INVALID), "spec.value_type"),
        ],
    )
    def test_invalid_specs_name_the_field(self, core_stub, spec, field):
        err = error_of(core_stub.ApplyEntity, pb.ApplyEntityRequest(spec=spec))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details().startswith(field)
        assert "expected" in err.details()

    def test_empty_label_key_rejected(self, core_stub):
        spec = f.entity()
        spec.labels[""] = "x"
        err = error_of(core_stub.ApplyEntity, pb.ApplyEntityRequest(spec=spec))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "spec.labels" in err.details()

    def test_get_unknown(self, core_stub):
        err = error_of(core_stub.GetEntity, pb.GetEntityRequest(name="ghost"))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert "ghost" in err.details() and "default" in err.details()


class TestFeatureTables:
    @pytest.fixture(autouse=True)
    def _entities(self, core_stub):
        apply_entity(core_stub, f.entity("driver_id"))
        apply_entity(core_stub, f.entity("customer_id", ValueType.STRING))

    def test_apply_round_trips_every_field(self, core_stub):
        spec = f.table(stream=True, team="risk")
        stored = apply_table(core_stub, spec).table
        assert stored.spec == spec
        assert stored.meta.revision == 1
        assert stored.meta.hash
        got = core_stub.GetFeatureTable(pb.GetFeatureTableRequest(name=spec.name)).table
        assert got == stored
        assert got.spec.batch_source.field_mapping["conv_rate"] == "conversion_rate"
        assert got.spec.batch_source.date_partition_column == "date"
        assert (
            got.spec.stream_source.kafka_options.message_format.proto_format.class_path
            == "com.example.DriverTrip"
        )

    def test_all_fourteen_value_types(self, core_stub):
        from provender.kernel.value_types import VALID_TYPES

        features = tuple(f.feature(f"f_{t.name.lower()}", t) for t in VALID_TYPES)
        spec = f.table("all_types", features=features)
        assert apply_table(core_stub, spec).table.spec == spec
        assert len(VALID_TYPES) == 14

    def test_revision_and_hash_rules(self, core_stub):
        first = apply_table(core_stub, f.table()).table.meta
        same = apply_table(core_stub, f.table()).table.meta
        assert (same.revision, same.hash, same.last_updated_timestamp) == (
            first.revision,
            first.hash,
            first.last_updated_timestamp,
        )
        relabelled = apply_table(core_stub, f.table(team="x")).table.meta
        assert relabelled.revision == first.revision + 1
        assert relabelled.hash == first.hash  # labels are not hashed
        longer = apply_table(core_stub, f.table(max_age_seconds=7200, team="x")).table.meta
        assert longer.revision == first.revision + 2 and longer.hash == first.hash
        more = f.table(team="x", max_age_seconds=7200)
        more.features.append(f.feature("avg_rating"))
        grown = apply_table(core_stub, more).table.meta
        assert grown.revision == first.revision + 3
        assert grown.hash != first.hash
        assert grown.created_timestamp == first.created_timestamp

    def test_removing_a_feature_is_allowed(self, core_stub):
        apply_table(core_stub, f.table())
        fewer = f.table(features=(f.feature("conv_rate"),))
        assert list(apply_table(core_stub, fewer).table.spec.features) == list(fewer.features)

    def test_entities_may_be_listed_in_another_order(self, core_stub):
        first = apply_table(core_stub, f.table(entities=("driver_id", "customer_id"))).table
        again = apply_table(core_stub, f.table(entities=("customer_id", "driver_id"))).table
        assert list(again.spec.entities) == ["customer_id", "driver_id"]  # stored as applied
        assert again.meta.hash == first.meta.hash

    def test_entities_cannot_change(self, core_stub):
        apply_table(core_stub, f.table())
        err = error_of(
            core_stub.ApplyFeatureTable,
            pb.ApplyFeatureTableRequest(table_spec=f.table(entities=("customer_id",))),
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details().startswith("table_spec.entities") and "driver_id" in err.details()

    def test_feature_type_cannot_change(self, core_stub):
        apply_table(core_stub, f.table())
        changed = f.table(
            features=(f.feature("conv_rate", ValueType.DOUBLE), f.feature("trips", ValueType.INT64))
        )
        err = error_of(core_stub.ApplyFeatureTable, pb.ApplyFeatureTableRequest(table_spec=changed))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "table_spec.features[0].value_type" in err.details() and "FLOAT" in err.details()
        # Nothing was written by the rejected apply.
        got = core_stub.GetFeatureTable(pb.GetFeatureTableRequest(name="driver_hourly")).table
        assert got.spec == f.table() and got.meta.revision == 1

    def test_unknown_entity(self, core_stub):
        err = error_of(
            core_stub.ApplyFeatureTable, pb.ApplyFeatureTableRequest(table_spec=f.table(entities=("ghost",)))
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert "ghost" in err.details() and "table_spec.entities[0]" in err.details()

    def _invalid(self, **changes):
        spec = f.table()
        for key, value in changes.items():
            if key == "clear":
                spec.ClearField(value)
            else:
                value(spec)
        return spec

    @pytest.mark.parametrize(
        ("mutate", "field"),
        [
            (lambda s: s.ClearField("entities"), "table_spec.entities"),
            (lambda s: s.ClearField("features"), "table_spec.features"),
            (lambda s: s.ClearField("batch_source"), "table_spec.batch_source"),
            (lambda s: setattr(s, "name", "bad name"), "table_spec.name"),
            (lambda s: s.features.append(f.feature("conv_rate")), "table_spec.features[2].name"),
            (lambda s: s.features.append(f.feature("event_timestamp")), "table_spec.features[2].name"),
            (lambda s: s.features.append(f.feature("created_timestamp")), "table_spec.features[2].name"),
            (
                lambda s: s.features.append(f.feature("x", ValueType.INVALID)),
                "table_spec.features[2].value_type",
            ),
            (lambda s: s.entities.append("driver_id"), "table_spec.entities[1]"),
            (lambda s: s.labels.__setitem__(" ", "v"), "table_spec.labels"),
            (
                lambda s: s.batch_source.ClearField("event_timestamp_column"),
                "table_spec.batch_source.event_timestamp_column",
            ),
            (
                lambda s: s.batch_source.file_options.ClearField("file_url"),
                "table_spec.batch_source.file_options.file_url",
            ),
            (lambda s: setattr(s.batch_source, "type", 3), "table_spec.batch_source.type"),
            (lambda s: s.stream_source.CopyFrom(f.file_source()), "table_spec.stream_source.type"),
            (lambda s: setattr(s.max_age, "seconds", -5), "table_spec.max_age"),
        ],
    )
    def test_invalid_specs_name_the_field_and_write_nothing(self, core_stub, mutate, field):
        spec = f.table()
        mutate(spec)
        err = error_of(core_stub.ApplyFeatureTable, pb.ApplyFeatureTableRequest(table_spec=spec))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert err.details().startswith(field), err.details()
        assert "Traceback" not in err.details()
        assert list(core_stub.ListFeatureTables(pb.ListFeatureTablesRequest()).tables) == []

    def test_list_with_labels_and_projects(self, core_stub):
        apply_table(core_stub, f.table("a", team="risk"))
        apply_table(core_stub, f.table("b", team="ads"))
        apply_entity(core_stub, f.entity(), project="other")
        apply_table(core_stub, f.table("c", team="risk"), project="other")

        def names(project="", **labels):
            req = pb.ListFeatureTablesRequest(
                filter=pb.ListFeatureTablesRequest.Filter(project=project, labels=labels)
            )
            return [t.spec.name for t in core_stub.ListFeatureTables(req).tables]

        assert names() == ["a", "b"]
        assert names(team="risk") == ["a"]
        assert names("other") == ["c"]
        assert names("other", team="ads") == []

    def test_delete(self, core_stub):
        apply_table(core_stub, f.table())
        core_stub.DeleteFeatureTable(pb.DeleteFeatureTableRequest(name="driver_hourly"))
        assert error_of(
            core_stub.GetFeatureTable, pb.GetFeatureTableRequest(name="driver_hourly")
        ).code() == (grpc.StatusCode.NOT_FOUND)
        assert error_of(
            core_stub.DeleteFeatureTable, pb.DeleteFeatureTableRequest(name="driver_hourly")
        ).code() == (grpc.StatusCode.NOT_FOUND)
        # A deleted name can be applied again, from revision 1.
        assert apply_table(core_stub, f.table()).table.meta.revision == 1

    def test_list_features(self, core_stub):
        apply_table(
            core_stub, f.table("drivers", features=(f.feature("rating", team="x"), f.feature("trips")))
        )
        apply_table(
            core_stub,
            f.table("pairs", entities=("driver_id", "customer_id"), features=(f.feature("rides", team="x"),)),
        )

        def refs(entities=(), **labels):
            req = pb.ListFeaturesRequest(
                filter=pb.ListFeaturesRequest.Filter(entities=entities, labels=labels)
            )
            return core_stub.ListFeatures(req).features

        assert sorted(refs()) == ["drivers:rating", "drivers:trips", "pairs:rides"]
        assert refs()["drivers:rating"] == f.feature("rating", team="x")
        # An entities filter selects tables keyed by exactly that entity set (Feast 0.9), in any order.
        assert sorted(refs(["customer_id"])) == []
        assert sorted(refs(["driver_id"])) == ["drivers:rating", "drivers:trips"]
        assert sorted(refs(["customer_id", "driver_id"])) == ["pairs:rides"]
        assert sorted(refs(team="x")) == ["drivers:rating", "pairs:rides"]
        assert sorted(refs(["driver_id", "customer_id"], team="x")) == ["pairs:rides"]
