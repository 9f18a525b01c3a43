"""`provender local`: the whole platform on one machine, no root and no Docker.

Under one folder (default `.provender/`): an embedded Postgres (the registry), a private Redis (the online
store), a private Kafka broker (for tables' stream sources; when its jars and java are there), Core and Serving
as background processes, their logs, and `local.json`, which records ports and pids so `up` twice is harmless
and `down`/`status` find everything again. Postgres's and Kafka's data are kept across `down` and `up`; Kafka
also keeps its port when it is free, since tables' stream sources name it.

A part counts as up only when the process answering on its port is the one this platform started (the
recorded pid, tagged with this folder, holding the listening socket: see identity.py and listeners.py), so
another platform or program on the same ports is reported, never adopted. Ports are checked before anything
starts: one the user asked for that is taken is an error; a default one that is taken is replaced by a free
one, and `notices` says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from provender.local.identity import STATE_FILE, can_tell, holder, platform_of, tagged_env, tagged_processes
from provender.local.kafka import KafkaNotAvailable
from provender.local.listeners import listens_on
from provender.local.ports import free_port, is_free
from provender.local.postgres import EmbeddedPostgres
from provender.local.processes import alive, spawn, terminate

DEFAULT_CORE_PORT = 6565
DEFAULT_SERVING_PORT = 6566
PARTS = ("redis", "kafka", "core", "serving")  # in the order they start
LABELS = {"redis": "Redis", "kafka": "Kafka", "core": "Core", "serving": "Serving"}
NOT_INSTALLED = "not installed"  # how status reports Kafka without its jars or java (not a failure)
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
    kafka_port: int = 0  # 0: not chosen yet (streaming off, or a platform from before Kafka)
    kafka_controller_port: int = 0
    spark_jars: list[str] = field(default_factory=list)  # what Core was started with (--spark-jars)

    @property
    def core_url(self) -> str:
        return f"127.0.0.1:{self.core_port}"

    @property
    def serving_url(self) -> str:
        return f"127.0.0.1:{self.serving_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}"

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def port(self, part: str) -> int:
        return {
            "redis": self.redis_port,
            "kafka": self.kafka_port,
            "core": self.core_port,
            "serving": self.serving_port,
        }[part]


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

    def allowed_storage(self) -> str:
        """Where this platform's jobs may read and write besides its staging folder: $PROVENDER_ALLOWED_STORAGE
        when set, else the quickstart's data folder ($PROVENDER_DEMO_DATA, default <dir>/demo-data)."""
        demo = Path(os.environ.get("PROVENDER_DEMO_DATA") or self.dir / "demo-data").absolute()
        return os.environ.get("PROVENDER_ALLOWED_STORAGE") or demo.as_uri()

    def up(self, timeout: float = 90.0) -> LocalState:
        """Start whatever is not running yet; returns when every part answers its health check."""
        state = self._load()
        if state is None:
            state = self._new_state()
        else:
            self._check_asked_ports(state)
        jars, off = streaming()
        if off:
            self.notices.append(f"streaming is off: {off}; then `provender local up` again")
        elif not state.kafka_port:  # a platform started before it had Kafka
            state.kafka_port, state.kafka_controller_port = self._kafka_ports(
                {state.core_port, state.serving_port, state.redis_port, state.postgres_port}
            )
        parts = [name for name in PARTS if not (off and name == "kafka")]
        starting = [name for name in parts if not self._ours(state, name)]
        for name in starting:  # every port is checked before anything starts
            for port in self._ports(state, name):
                if not is_free(port):
                    raise self._port_taken(name, port, recorded=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        if "kafka" in starting:  # first: its JVM starts while Postgres and Redis do
            state.pids["kafka"] = self._start_kafka(state, timeout)
            self._save(state)
        postgres = EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port)
        postgres.start()
        state.postgres_port = postgres.port
        self._save(state)

        if "redis" in starting:
            state.pids["redis"] = self._start_redis(state)
            self._save(state)
        self._wait(state, "redis", timeout)

        # Kafka's jars arrived since Core started (or went): a new Core takes them; running jobs are reconciled
        if "core" not in starting and state.spark_jars != jars:
            terminate(state.pids["core"])
            starting.append("core")
            self.notices.append(
                "Core restarted "
                + ("with the Kafka jars: streaming is on" if jars else "without the Kafka jars")
            )
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
                    "--allowed-storage",
                    self.allowed_storage(),
                    "--launcher-work-dir",
                    str(self.dir / "jobs"),
                    *(["--spark-jars", ",".join(jars)] if jars else []),
                    # a KafkaSource applied with no brokers reads the embedded Kafka
                    *(["--kafka-bootstrap-servers", state.kafka_bootstrap_servers] if jars else []),
                ],
                self.dir / "logs" / "core.log",
                env=tagged_env(self.dir),
            )
            state.spark_jars = jars
            self._save(state)
        if "kafka" in parts:  # Core does not need it to start: both JVMs start at once
            self._wait(state, "kafka", timeout)
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
                terminate(state.pids[name], timeout=30 if name == "kafka" else 15)
            if name == "core":  # and the Spark driver Core kept warm for its jobs (Core's own command)
                subprocess.run(
                    [sys.executable, "-m", "provender.cli", "core", "stop-warm-driver", "--launcher-work-dir",
                     str(self.dir / "jobs")],
                    check=False, timeout=60, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                self._stop_jobs(state)  # stream jobs run in Spark drivers of their own until cancelled
        EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port).stop()
        (self.dir / STATE_FILE).unlink(missing_ok=True)
        return True

    def status(self) -> dict[str, str]:
        """Each part: "up" when this platform's own process answers on its port, else "down (why)"."""
        state = self._load()
        if state is None:
            return {}
        postgres = EmbeddedPostgres(self.dir / "postgres", port=state.postgres_port)
        found = {"postgres": "up" if postgres.is_running() else "down"}
        for name in PARTS:
            if name == "kafka" and not self._ours(state, name):
                _, off = streaming()
                if off:
                    found[name] = f"{NOT_INSTALLED} ({off})"
                    continue
                if "kafka" not in state.pids:  # installed since `up` ran
                    found[name] = "down (not started yet: `provender local up` starts it)"
                    continue
            found[name] = self._status_of(state, name)
        return found

    def describe(self, state: LocalState) -> dict[str, str]:
        """What a user connects to (the lines `up` prints)."""
        kafka = {"kafka": state.kafka_bootstrap_servers} if self._ours(state, "kafka") else {}
        return {
            "core": state.core_url,
            "serving": state.serving_url,
            "jobs": state.core_url,
            "staging": (self.dir / "staging").as_uri(),
            **kafka,
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
        kafka, controller = self._kafka_ports(taken)
        return LocalState(
            core_port=core,
            serving_port=serving,
            redis_port=_fresh_port(taken),
            postgres_port=0,
            kafka_port=kafka,
            kafka_controller_port=controller,
        )

    def _kafka_ports(self, taken: set[int]) -> tuple[int, int]:
        """Kafka's client and controller ports: those of its last run when they are free (a table's stream source
        names the broker's address), else free ones."""
        before = _kafka_ports_of(self.dir / "kafka" / "server.properties")
        chosen = []
        for old in before or (0, 0):
            if old and old not in taken and is_free(old):
                taken.add(old)
                chosen.append(old)
            else:
                chosen.append(_fresh_port(taken))
        if before and chosen[0] != before[0]:
            self.notices.append(
                f"Kafka's port {before[0]} (of its last run) is in use by {holder(before[0])[2]}; Kafka is on "
                f"{chosen[0]} instead: apply again the tables whose stream source names 127.0.0.1:{before[0]}"
            )
        return chosen[0], chosen[1]

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

    def _ports(self, state: LocalState, name: str) -> list[int]:
        """The ports part `name` listens on."""
        return [state.kafka_port, state.kafka_controller_port] if name == "kafka" else [state.port(name)]

    def _answers(self, state: LocalState, name: str) -> bool:
        if name == "redis":
            return self._redis_ok(state)
        if name == "kafka":
            return _kafka_ok(state.kafka_bootstrap_servers)
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
                # every write on disk within a second (a snapshot a minute alone lost what a job had just written)
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            self.dir / "logs" / "redis.log",
            env=tagged_env(self.dir),
        )

    def _start_kafka(self, state: LocalState, timeout: float) -> int:
        """The broker, detached like the other parts and tagged with this folder; its storage (formatted the
        first time) and configuration in <dir>/kafka, its log in <dir>/logs/kafka.log."""
        from provender.local.kafka import EmbeddedKafka

        kafka = EmbeddedKafka(
            self.dir / "kafka", port=state.kafka_port, controller_port=state.kafka_controller_port
        )
        try:
            kafka.prepare(timeout)
        except KafkaNotAvailable as e:
            raise LocalPlatformError(str(e)) from None
        return spawn(
            kafka.command(),
            self.dir / "logs" / "kafka.log",
            env=tagged_env(self.dir),
            cwd=kafka.data_dir,
        )

    def _stop_jobs(self, state: LocalState) -> None:
        """Whatever Spark job processes Core left (stream jobs, a warm driver that did not stop): the processes
        tagged with this folder that run in its job folders, by process group (as the local launcher cancels)."""
        recorded = set(state.pids.values())
        groups = set()
        for pid in tagged_processes(self.dir, cwd_under=self.dir / "jobs"):
            if pid not in recorded:
                with contextlib.suppress(ProcessLookupError):
                    groups.add(os.getpgid(pid))
        groups.discard(os.getpgid(0))
        _stop_groups(groups)

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


_QUIET = logging.getLogger("provender.local.kafka.health")  # librdkafka's complaints while a broker starts
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def streaming() -> tuple[list[str], str | None]:
    """The jars Core's stream jobs need (Spark's Kafka and Avro sources) and None; or [] and why streaming is off
    (no Kafka jars, no java)."""
    from provender.local.kafka import find_java, find_kafka_libs, spark_kafka_jars

    try:
        find_java()
        find_kafka_libs()
        return [str(jar) for jar in spark_kafka_jars()], None
    except KafkaNotAvailable as e:
        return [], str(e)


def _kafka_ports_of(config: Path) -> tuple[int, int] | None:
    """(client port, controller port) from a broker's server.properties; None when there is none."""
    try:
        lines = config.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "listeners":
            ports = dict(
                (name, int(port)) for name, _, port in (u.partition("://127.0.0.1:") for u in value.split(","))
                if port.isdigit()
            )  # fmt: skip
            if "PLAINTEXT" in ports and "CONTROLLER" in ports:
                return ports["PLAINTEXT"], ports["CONTROLLER"]
    return None


def _stop_groups(groups: set[int], timeout: float = 15.0) -> None:
    """SIGTERM to each process group, then SIGKILL to those left after `timeout` seconds."""
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while groups and time.monotonic() < deadline:
        groups = {g for g in groups if _group_alive(g)}
        time.sleep(0.1)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(_members(group))


def _members(group: int) -> list[int]:
    """The pids of process group `group` (zombies left out, so that a group of the dead counts as ended)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == group and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def _kafka_ok(bootstrap: str) -> bool:
    """Whether the broker answers a metadata request naming itself."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.rpartition(":")
    try:  # only when the port is open: librdkafka logs every refused connection
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except OSError:
        return False
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap, "logger": _QUIET}).list_topics(timeout=2)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def _grpc_healthy(url: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(url) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return answer.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
