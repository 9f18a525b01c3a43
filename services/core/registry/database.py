"""The registry database: engine, sessions, migrations, and turning connection failures into Unavailable."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, exc
from sqlalchemy.orm import Session, sessionmaker

from provender.kernel.errors import Conflict, InvalidArgument, Unavailable

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

# Postgres SQLSTATEs that mean "a concurrent transaction won; retrying is safe".
_RETRYABLE = {"40001", "40P01"}


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// URLs as given by humans and Helm charts; use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, pool_size: int = 10) -> Engine:
    return create_engine(
        normalise_url(url),
        pool_size=pool_size,
        max_overflow=2 * pool_size,
        pool_pre_ping=True,  # a restarted Postgres is reconnected to transparently
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


def _alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def safe_url(engine: Engine) -> str:
    """The database URL without its password, for messages and logs."""
    return engine.url.render_as_string(hide_password=True)


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision (idempotent); returns that revision."""
    cfg = _alembic_config()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        with engine.begin() as conn:
            # One migrator at a time, even with several Core replicas starting together.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(724291)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except (exc.OperationalError, exc.InterfaceError) as e:
        reason = str(getattr(e, "orig", e)).strip().splitlines()[0]
        raise Unavailable(
            f"cannot reach the registry database (Postgres) at {safe_url(engine)}: {reason}"
        ) from e
    return head_revision()


def head_revision() -> str:
    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class Database:
    """Sessions with the registry's error policy: unreachable → Unavailable, lost race → Conflict."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        try:
            with self._sessions.begin() as session:
                yield session
        except (exc.OperationalError, exc.InterfaceError) as e:
            if _sqlstate(e) in _RETRYABLE:
                raise Conflict("a concurrent change to the same object won; retry the request") from e
            log.warning("registry database error: %s", e.__class__.__name__)
            raise Unavailable("the registry database (Postgres) is unreachable; retry shortly") from e
        except exc.DataError as e:
            # Validation should have caught it; never let a value Postgres refuses become INTERNAL.
            reason = str(getattr(e, "orig", e)).strip().splitlines()[0]
            raise InvalidArgument("request", reason, "values PostgreSQL can store") from e
        except exc.DBAPIError as e:
            if _sqlstate(e) in _RETRYABLE:
                raise Conflict("a concurrent change to the same object won; retry the request") from e
            raise


def _sqlstate(e: exc.DBAPIError) -> str | None:
    return getattr(e.orig, "sqlstate", None)
