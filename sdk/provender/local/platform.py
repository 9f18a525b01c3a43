"""`provender local`: the whole platform on one machine, no root and no Docker.

Under one folder (default `.provender/`): an embedded Postgres (the registry), a private Redis (the online
store), Core and Serving as background processes, their logs, and `local.json`, which records ports and
pids so `up` twice is harmless and `down`/`status` find everything again.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from provender.local.ports import free_port
from provender.local.postgres import EmbeddedPostgres
from provender.local.processes import alive, spawn, terminate

STATE_FILE = "local.json"


class LocalPlatformError(RuntimeError):
    pass


@dataclass
class LocalState:
    core_port: int
    serving_port: int
    redis_port: int
    postgres_port: int
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def core_url(self) -> str:
        return f"127.0.0.1:{self.core_port}"

    @property
    def serving_url(self) -> str:
        return f"127.0.0.1:{self.serving_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}"


class LocalPlatform:
    def __init__(
        self, directory: Path | str = ".provender", core_port: int = 6565, serving_port: int = 6566
    ) -> None:
        self.dir = Path(directory).absolute()
        self.core_port = core_port
        self.serving_port = serving_port

    # the public verbs ------------------------------------------------------------------------------------

    def up(self, timeout: float = 90.0) -> LocalState:
        """Start whatever is not running yet; returns when every part answers its health check."""
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self._load() or LocalState(
            core_port=self.core_port or free_port(),
            serving_port=self.serving_port or free_port(),
            redis_port=free_port(),
            postgres_port=0,
        )
        postgres = EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port)
        postgres.start()
        state.postgres_port = postgres.port
        self._save(state)

        if not self._running(state, "redis"):
            state.pids["redis"] = self._start_redis(state)
            self._save(state)
        self._wait(lambda: self._redis_ok(state), "Redis", state, "redis", timeout)

        python = sys.executable
        if not self._running(state, "core"):
            state.pids["core"] = spawn(
                [
                    python,
                    "-m",
                    "provender.cli",
                    "core",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(state.core_port),
                    "--postgres-url",
                    postgres.url(),
                    "--redis-url",
                    state.redis_url,
                    "--spark-launcher",
                    "local",
                    "--spark-warm-driver",
                    "--staging-location",
                    (self.dir / "staging").as_uri(),
                    "--launcher-work-dir",
                    str(self.dir / "jobs"),
                ],
                self.dir / "logs" / "core.log",
            )
            self._save(state)
        self._wait(lambda: _grpc_healthy(state.core_url), "Core", state, "core", timeout)

        if not self._running(state, "serving"):
            state.pids["serving"] = spawn(
                [
                    python,
                    "-m",
                    "provender.cli",
                    "serving",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(state.serving_port),
                    "--core-url",
                    state.core_url,
                    "--redis-url",
                    state.redis_url,
                ],
                self.dir / "logs" / "serving.log",
            )
            self._save(state)
        self._wait(lambda: _grpc_healthy(state.serving_url), "Serving", state, "serving", timeout)
        return state

    def down(self) -> bool:
        """Stop everything `up` started; False when nothing was running."""
        state = self._load()
        if state is None:
            return False
        for name in ("serving", "core", "redis"):
            pid = state.pids.pop(name, None)
            if pid:
                terminate(pid)
            if name == "core":  # and the Spark driver Core kept warm for its jobs
                from provender.core.launchers.local import LocalLauncher

                LocalLauncher(self.dir / "jobs").stop_warm_driver()
        EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port).stop()
        (self.dir / STATE_FILE).unlink(missing_ok=True)
        return True

    def status(self) -> dict[str, str]:
        """Each part and whether it answers."""
        state = self._load()
        if state is None:
            return {}
        postgres = EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port)
        return {
            "postgres": "up" if postgres.is_running() else "down",
            "redis": "up" if self._redis_ok(state) else "down",
            "core": "up" if _grpc_healthy(state.core_url) else "down",
            "serving": "up" if _grpc_healthy(state.serving_url) else "down",
        }

    def describe(self, state: LocalState) -> dict[str, str]:
        """What a user connects to (the lines `up` prints)."""
        return {
            "core": state.core_url,
            "serving": state.serving_url,
            "jobs": state.core_url,
            "staging": (self.dir / "staging").as_uri(),
            "redis": state.redis_url,
            "postgres": f"postgresql://provender@127.0.0.1:{state.postgres_port}/provender",
            "logs": str(self.dir / "logs"),
        }

    # internals -------------------------------------------------------------------------------------------

    def _load(self) -> LocalState | None:
        path = self.dir / STATE_FILE
        if not path.exists():
            return None
        return LocalState(**json.loads(path.read_text()))

    def _save(self, state: LocalState) -> None:
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.dir / STATE_FILE)

    @staticmethod
    def _running(state: LocalState, name: str) -> bool:
        pid = state.pids.get(name)
        return bool(pid) and alive(pid)

    def _start_redis(self, state: LocalState) -> int:
        from provender.local.redis import find_redis_server

        data = self.dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        return spawn(
            [
                str(find_redis_server()),
                "--port",
                str(state.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--save",
                "60 1",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            self.dir / "logs" / "redis.log",
        )

    @staticmethod
    def _redis_ok(state: LocalState) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=state.redis_port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def _wait(self, check, what: str, state: LocalState, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            pid = state.pids.get(name)
            if pid and not alive(pid):
                log = self.dir / "logs" / f"{name}.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
                raise LocalPlatformError(f"{what} exited while starting; the end of {log}:\n{tail}")
            if time.monotonic() > deadline:
                raise LocalPlatformError(
                    f"{what} did not become healthy within {timeout:g}s; see {self.dir / 'logs'}"
                )
            time.sleep(0.2)


def _grpc_healthy(url: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(url) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return answer.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
