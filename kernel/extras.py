"""Which install extra each part of Provender needs, and the error that names it when it is missing:
`pip install provender` is the SDK alone; Core, Serving, the Spark jobs, the k8s launcher and `provender local`
each come with an extra (pyproject.toml)."""

from __future__ import annotations

from importlib.util import find_spec

# extra -> the modules it installs that its parts import (checked without importing them).
_SERVER = ("grpc_health", "grpc_reflection", "prometheus_client", "sqlalchemy", "alembic", "psycopg", "redis")
MODULES: dict[str, tuple[str, ...]] = {
    "server": (*_SERVER, "hiredis", "croniter"),
    "spark": ("pyspark", "redis", "prometheus_client"),
    "k8s": ("kubernetes",),
    "kafka": ("confluent_kafka", "fastavro"),
    "local": ("grpc_health", "redis", "pyspark"),
}


class MissingExtra(ImportError):
    """A part of Provender was imported without the install extra it needs."""


def require(part: str, extra: str) -> None:
    """Raise MissingExtra, naming the extra and the command that installs it, when a module of `extra` is absent."""
    missing = [m for m in MODULES[extra] if find_spec(m) is None]
    if missing:
        raise MissingExtra(
            f"{part} needs the [{extra}] extra, which is not installed (missing: {', '.join(missing)}): "
            f"pip install 'provender[{extra}]'"
        )
