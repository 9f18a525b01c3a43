"""Schema migrations: from an empty database, re-run, and through `provender core migrate`."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import inspect, text

from provender.core.registry.database import current_revision, head_revision, make_engine, migrate


def test_migrate_from_empty_then_rerun_is_a_no_op(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    assert migrate(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    assert {"projects", "entities", "feature_tables"} <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (name, archived, created_at) VALUES ('kept', false, now())"))
    assert migrate(engine) == head_revision()
    with engine.connect() as conn:
        names = set(conn.scalars(text("SELECT name FROM projects")))
    assert names == {"default", "kept"}
    engine.dispose()


def test_migrate_command(database_url):
    run = subprocess.run(
        [sys.executable, "-m", "provender.cli", "core", "migrate", "--postgres-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert f"registry schema at revision {head_revision()}" in run.stdout
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_plain_postgresql_urls_are_accepted(postgres):
    url = postgres.create_database("plain_url").replace("postgresql+psycopg://", "postgres://")
    engine = make_engine(url)
    assert migrate(engine) == head_revision()
    engine.dispose()
