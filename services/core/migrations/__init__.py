"""Alembic migrations of the registry database; run by `provender core migrate` and on Core start."""
