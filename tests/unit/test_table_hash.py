"""FeatureTableMeta.hash changes with entities, features and sources, and only with them."""

from __future__ import annotations

from provender.core.registry.fingerprint import table_hash
from tests import factories as f


def test_hash_is_stable_and_ignores_labels_max_age_and_name():
    base = table_hash(f.table())
    assert base == table_hash(f.table())
    assert len(base) == 16 and int(base, 16) >= 0
    assert table_hash(f.table(team="x")) == base
    assert table_hash(f.table(max_age_seconds=1)) == base
    assert table_hash(f.table(name="renamed")) == base


def test_hash_changes_with_features_entities_and_sources():
    base = table_hash(f.table())
    more = f.table()
    more.features.append(f.feature("extra"))
    assert table_hash(more) != base
    assert table_hash(f.table(entities=("driver_id", "customer_id"))) != base
    moved = f.table()
    moved.batch_source.file_options.file_url = "s3://bucket/elsewhere"
    assert table_hash(moved) != base
    assert table_hash(f.table(stream=True)) != base


def test_map_order_does_not_change_the_hash():
    a, b = f.table(), f.table()
    a.batch_source.field_mapping.clear()
    b.batch_source.field_mapping.clear()
    a.batch_source.field_mapping.update({"x": "1", "y": "2"})
    b.batch_source.field_mapping.update({"y": "2", "x": "1"})
    assert table_hash(a) == table_hash(b)


def test_entity_order_does_not_change_the_hash():
    assert table_hash(f.table(entities=("a", "b"))) == table_hash(f.table(entities=("b", "a")))
