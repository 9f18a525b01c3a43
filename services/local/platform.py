"""`provender local`: the whole platform on one machine, no root and no Docker.

Under one folder (default `.provender/`): an embedded Postgres (the registry), a private Redis (the online
store), Core and Serving as background processes, their logs, and `local.json`, which records ports and
pids so `up` twice is harmless and `down`/`status` find everything again.

A part counts as up only when the process answering on its port is the one this platform started (the
recorded pid, tagged with this folder, holding the listening socket: see identity.py and listeners.py), so
another platform or program on the same ports is reported, never adopted. Ports are checked before anything
starts: one the user asked for that is taken is an error; a default one that is taken is replaced by a free
one, and `notices` says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from provender.local.identity import STATE_FILE, can_tell, holder, platform_of, tagged_env
from provender.local.listeners import listens_on
from provender.local.ports import free_port, is_free
from provender.local.postgres import EmbeddedPostgres
from provender.local.processes import alive, spawn, terminate

DEFAULT_CORE_PORT = 6565
DEFAULT_SERVING_PORT = 6566
PARTS = ("redis", "core", "serving")  # in the order they start
LABELS = {"redis": "Redis", "core": "Core", "serving": "Serving"}
FLAGS = {"core": "--core-port", "serving": "--serving-port"}


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

    def port(self, part: str) -> int:
        return {"redis": self.redis_port, "core": self.core_port, "serving": self.serving_port}[part]


class LocalPlatform:
    """The platform in `directory`. A port of None means the default one, or a free one when that is taken;
    0 means a free one; any other number is that port or an error."""

    def __init__(
        self,
        directory: Path | str = ".provender",
        core_port: int | None = None,
        serving_port: int | None = None,
    ) -> None:
        self.dir = Path(directory).absolute()
        self.core_port = core_port
        self.serving_port = serving_port
        self.notices: list[str] = []  # what `up` did that the user did not ask for (one line each)

    # the public verbs ------------------------------------------------------------------------------------

    def up(self, timeout: float = 90.0) -> LocalState:
        """Start whatever is not running yet; returns when every part answers its health check."""
        state = self._load()
        if state is None:
            state = self._new_state()
        else:
            self._check_asked_ports(state)
        starting = [name for name in PARTS if not self._ours(state, name)]
        for name in starting:  # every port is checked before anything starts
            if not is_free(state.port(name)):
                raise self._port_taken(name, state.port(name), recorded=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        postgres = EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port)
        postgres.start()
        state.postgres_port = postgres.port
        self._save(state)

        if "redis" in starting:
            state.pids["redis"] = self._start_redis(state)
            self._save(state)
        self._wait(state, "redis", timeout)

        python = sys.executable
        if "core" in starting:
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
                env=tagged_env(self.dir),
            )
            self._save(state)
        self._wait(state, "core", timeout)

        if "serving" in starting:
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
                env=tagged_env(self.dir),
            )
            self._save(state)
        self._wait(state, "serving", timeout)
        return state

    def down(self) -> bool:
        """Stop everything `up` started; False when nothing was running."""
        state = self._load()
        if state is None:
            return False
        for name in reversed(PARTS):
            if self._ours(state, name):  # never a process the system has since given that pid to
                terminate(state.pids[name])
            if name == "core":  # and the Spark driver Core kept warm for its jobs (Core's own command)
                subprocess.run(
                    [sys.executable, "-m", "provender.cli", "core", "stop-warm-driver", "--launcher-work-dir",
                     str(self.dir / "jobs")],
                    check=False, timeout=60, stdout=subprocess.DEVNULL,
                )  # fmt: skip
        EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port).stop()
        (self.dir / STATE_FILE).unlink(missing_ok=True)
        return True

    def status(self) -> dict[str, str]:
        """Each part: "up" when this platform's own process answers on its port, else "down (why)"."""
        state = self._load()
        if state is None:
            return {}
        postgres = EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port)
        return {"postgres": "up" if postgres.is_running() else "down"} | {
            name: self._status_of(state, name) for name in PARTS
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

    def _new_state(self) -> LocalState:
        taken: set[int] = set()
        moved: list[str] = []
        core = self._choose("core", self.core_port, DEFAULT_CORE_PORT, taken, moved)
        serving = self._choose("serving", self.serving_port, DEFAULT_SERVING_PORT, taken, moved)
        if moved:
            self.notices.append("; ".join(moved))
        return LocalState(
            core_port=core, serving_port=serving, redis_port=_fresh_port(taken), postgres_port=0
        )

    def _choose(self, name: str, asked: int | None, default: int, taken: set[int], moved: list[str]) -> int:
        """The port for a new platform's part: the one asked for, or the default, or a free one."""
        if asked == 0:
            return _fresh_port(taken)
        if asked is None:
            if default not in taken and is_free(default):
                taken.add(default)
                return default
            port = _fresh_port(taken)
            by = "the other part's port here" if default in taken else f"in use by {holder(default)[2]}"
            moved.append(
                f"{LABELS[name]}'s default port {default} is {by}; "
                f"{LABELS[name]} is on {port} instead ({FLAGS[name]} N chooses)"
            )
            return port
        if asked in taken:
            raise LocalPlatformError(
                f"--core-port and --serving-port are both {asked}: give them different ports, or 0 for free ones"
            )
        if not is_free(asked):
            raise self._port_taken(name, asked, recorded=False)
        taken.add(asked)
        return asked

    def _check_asked_ports(self, state: LocalState) -> None:
        """A platform keeps the ports it started with: asking for others is an error, not silently ignored."""
        for name, asked in (("core", self.core_port), ("serving", self.serving_port)):
            if asked and asked != state.port(name):
                raise LocalPlatformError(
                    f"the platform in {self.dir} has {LABELS[name]} on port {state.port(name)} (recorded in "
                    f"{self.dir / STATE_FILE}), not {asked}: run `provender local down --dir {self.dir}` "
                    f"first to move it, or leave out {FLAGS[name]}"
                )

    def _port_taken(self, name: str, port: int, recorded: bool) -> LocalPlatformError:
        _, other, who = holder(port)
        another = other is not None and other.resolve() != self.dir.resolve()
        stop = (
            f"stop that platform with `provender local down --dir {other}`"
            if another
            else "stop that process"
        )
        if recorded:
            what = f"{LABELS[name]}'s port {port} (recorded in {self.dir / STATE_FILE})"
            instead = (
                f"forget the recorded ports with `provender local down --dir {self.dir}` and run `up` again"
            )
        else:
            what = f"{LABELS[name]}'s port {port} ({FLAGS[name]} {port})"
            instead = f"pass {FLAGS[name]} 0 to pick a free port"
        return LocalPlatformError(f"{what} is in use by {who}: {stop}, or {instead}")

    def _ours(self, state: LocalState, name: str) -> bool:
        """Whether the recorded process for `name` is alive and this platform's: started for this folder, or
        (started before processes were tagged) holding the recorded port."""
        pid = state.pids.get(name)
        if not pid or not alive(pid):
            return False
        if not can_tell():  # no /proc: a live recorded pid is all we can go by
            return True
        owner = platform_of(pid)
        if owner is not None and owner.resolve() == self.dir.resolve():
            return True
        return owner is None and listens_on(pid, state.port(name)) is True

    def _answers(self, state: LocalState, name: str) -> bool:
        if name == "redis":
            return self._redis_ok(state)
        return _grpc_healthy(state.core_url if name == "core" else state.serving_url)

    def _up(self, state: LocalState, name: str) -> bool:
        """Our process for `name` listens on its port, and the port answers."""
        return (
            self._ours(state, name)
            and listens_on(state.pids[name], state.port(name)) is not False
            and self._answers(state, name)
        )

    def _status_of(self, state: LocalState, name: str) -> str:
        port, pid = state.port(name), state.pids.get(name)
        if pid and self._ours(state, name):
            if listens_on(pid, port) is not False:
                answers = self._answers(state, name)
                return "up" if answers else f"down (pid {pid} does not answer on port {port})"
            if is_free(port):
                return f"down (pid {pid} is not listening on port {port})"
        elif is_free(port):
            return "down"
        verb = "answered" if self._answers(state, name) else "held"
        return f"down (port {port} {verb} by {holder(port)[2]})"

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
            env=tagged_env(self.dir),
        )

    @staticmethod
    def _redis_ok(state: LocalState) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=state.redis_port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def _wait(self, state: LocalState, name: str, timeout: float) -> None:
        """Until our own process for `name` answers on its port; one that exits is reported with its log."""
        what, port = LABELS[name], state.port(name)
        deadline = time.monotonic() + timeout
        while True:
            pid = state.pids.get(name)
            if pid and not alive(pid):
                log = self.dir / "logs" / f"{name}.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
                raise LocalPlatformError(f"{what} exited while starting; the end of {log}:\n{tail}")
            if self._up(state, name):
                return
            if time.monotonic() > deadline:
                stranger = "" if is_free(port) else f" (port {port} is held by {holder(port)[2]})"
                raise LocalPlatformError(
                    f"{what} did not become healthy within {timeout:g}s{stranger}; see {self.dir / 'logs'}"
                )
            time.sleep(0.2)


def _fresh_port(taken: set[int]) -> int:
    """A free port not already chosen for another part."""
    while (port := free_port()) in taken:
        pass
    taken.add(port)
    return port


def _grpc_healthy(url: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(url) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return answer.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
