"""A private Apache Kafka broker on loopback, for stream ingestion tests and local runs; and where Spark's Kafka
source jars are.

The broker is the one `make jvm-deps` (tools/fetch-jvm-deps.sh) fetches into `.deps/kafka/libs`, run with `java` as
a single-node KRaft cluster: one process with the broker and controller roles, the client listener on
127.0.0.1:`port` and the controller's on 127.0.0.1:`controller_port`. Its storage is formatted once in
`<data_dir>/data` and kept: `stop()` then `start()` (or a new EmbeddedKafka on the same folder) finds its topics,
messages and committed offsets again. The JVM is kept light (512 MB heap, serial GC, C1 only), as it shares the
machine with Spark.

The jars are found from $PROVENDER_KAFKA_LIBS (a folder of jars), else `.deps/kafka/libs` in the current folder or
one above it, else in the source checkout this module is in; Spark's Kafka source from $PROVENDER_SPARK_KAFKA_JARS,
else `.deps/spark-kafka` found the same way. The Python client (confluent-kafka) is imported only by `start()`.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from provender.local.ports import free_port

_SOURCE_CHECKOUT = Path(__file__).resolve().parents[2]  # services/local/kafka.py -> the repository
_NODE_ID = 1
_FETCH_HINT = "run `make jvm-deps` (tools/fetch-jvm-deps.sh) from the repository"

log = logging.getLogger(__name__)


class KafkaNotAvailable(RuntimeError):
    """No Kafka jars (or no java), or the broker would not start."""


def _deps_folder(env: str, relative: str) -> Path | None:
    """The folder named by $env, else the first `<base>/<relative>` holding jars, base being the current folder,
    its parents, then the source checkout."""
    if folder := os.environ.get(env):
        return Path(folder)
    cwd = Path.cwd().absolute()
    for base in (cwd, *cwd.parents, _SOURCE_CHECKOUT):
        if any((base / relative).glob("*.jar")):
            return base / relative
    return None


def find_kafka_libs() -> Path:
    """The folder of the Kafka broker's jars (see the module's docstring for where it is looked for)."""
    libs = _deps_folder("PROVENDER_KAFKA_LIBS", ".deps/kafka/libs")
    if libs is None:
        raise KafkaNotAvailable(
            f"no Kafka broker jars (.deps/kafka/libs): {_FETCH_HINT}, or set PROVENDER_KAFKA_LIBS"
        )
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise KafkaNotAvailable(f"no kafka_2.13 jar in {libs} (from PROVENDER_KAFKA_LIBS?): {_FETCH_HINT}")
    return libs


def spark_kafka_jars() -> list[Path]:
    """The jars Spark's Kafka source needs beyond PySpark's own (spark-sql-kafka-0-10, its token provider,
    kafka-clients, commons-pool2), for `spark.jars` or `spark-submit --jars`."""
    folder = _deps_folder("PROVENDER_SPARK_KAFKA_JARS", ".deps/spark-kafka")
    jars = sorted(folder.glob("*.jar")) if folder is not None else []
    if not any(j.name.startswith("spark-sql-kafka-") for j in jars):
        where = folder or ".deps/spark-kafka"
        raise KafkaNotAvailable(
            f"no spark-sql-kafka jar in {where}: {_FETCH_HINT}, or set PROVENDER_SPARK_KAFKA_JARS to a folder of jars"
        )
    return jars


def find_java() -> Path:
    candidates = [Path(os.environ["JAVA_HOME"]) / "bin" / "java"] if os.environ.get("JAVA_HOME") else []
    if found := shutil.which("java"):
        candidates.append(Path(found))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise KafkaNotAvailable(
        "no java found (Kafka 4 needs Java 17 or later): set JAVA_HOME or put java on PATH"
    )


def _cluster_id() -> str:
    """A new Kafka cluster id, as Kafka's Uuid.randomUuid() makes them (URL-safe base64, no padding, no leading
    '-' that a command line would take for an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


# log4j2 (Kafka 4 logs with it): everything to stdout, which start() sends to <data_dir>/kafka.log; not the dump of
# every configuration value at each start (server.properties is beside the log).
_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


@dataclass
class EmbeddedKafka:
    """One Kafka broker (KRaft, broker and controller in one JVM) on 127.0.0.1:`port`, its storage, configuration
    and log in `data_dir`; `libs` is the folder of Kafka's jars (default: find_kafka_libs()).

    `extra_config` adds to or overrides server.properties. `stop()` then `start()` brings it back on the same ports
    with the same storage.
    """

    data_dir: Path
    port: int = 0
    controller_port: int = 0
    libs: Path | None = None
    heap: str = "512m"
    extra_config: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.libs = Path(self.libs) if self.libs is not None else find_kafka_libs()
        self.java = find_java()
        if not self.port:
            self.port = free_port()
        while not self.controller_port or self.controller_port == self.port:
            self.controller_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "data"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    def config(self) -> dict[str, str]:
        """server.properties: single-node KRaft on loopback, every internal topic with one replica and one
        partition, few threads, topics created on first use, messages kept whatever their timestamps."""
        return {
            "process.roles": "broker,controller",
            "node.id": str(_NODE_ID),
            "controller.quorum.voters": f"{_NODE_ID}@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.storage_dir),
            "auto.create.topics.enable": "true",
            # Kept until deleted: retention goes by the records' timestamps, and a replay of historical feature
            # data (timestamps weeks old) would otherwise vanish at the first retention check, 30 s after start.
            "log.retention.ms": "-1",
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "group.coordinator.threads": "1",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),  # 128 MB by default, on a 512 MB heap
            **self.extra_config,
        }

    def prepare(self, timeout: float = 60.0) -> None:
        """Write the configuration, and format the storage the first time (a couple of seconds): what must be
        done before `command()` runs (`start` does it; a caller that runs the broker its own way calls it)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in self.config().items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        if not (self.storage_dir / "meta.properties").exists():
            self._format(timeout)

    def command(self) -> list[str]:
        """The broker's command line (run it in `data_dir`, after `prepare`)."""
        return [*self._java_command(), "kafka.Kafka", str(self.config_file)]

    def start(self, timeout: float = 60.0) -> EmbeddedKafka:
        """Start the broker (formatting its storage the first time) and return when it answers a metadata
        request; raise KafkaNotAvailable, with the end of its log, if it exits or does not answer in `timeout` s."""
        if self.is_running():
            return self
        deadline = time.monotonic() + timeout
        self.prepare(timeout)
        with self.log_file.open("ab") as out:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
            )
        try:
            self._wait_ready(deadline, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker (SIGTERM: a controlled shutdown that flushes its logs), killing it after `timeout` s."""
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
        return self._process.pid if self.is_running() and self._process is not None else None

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _java_command(self) -> list[str]:
        return [
            str(self.java),
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # C1 only: starts faster, and a test broker needs no peak speed
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            str(Path(self.libs or ".") / "*"),
        ]

    def _format(self, timeout: float) -> None:
        """Format the storage folder for a new single-node cluster (Kafka's StorageTool, as kafka-storage.sh)."""
        command = [*self._java_command(), "kafka.tools.StorageTool", "format", "--ignore-formatted",
                   "-t", _cluster_id(), "-c", str(self.config_file)]  # fmt: skip
        with self.log_file.open("ab") as out:
            try:
                done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=timeout, check=False)  # fmt: skip
            except subprocess.TimeoutExpired:
                raise KafkaNotAvailable(
                    self._failure(f"formatting its storage took over {timeout} s")
                ) from None
        if done.returncode != 0:
            raise KafkaNotAvailable(self._failure(f"formatting its storage failed (exit {done.returncode})"))

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = None
        last: object = "the port never opened"
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise KafkaNotAvailable(self._failure(f"the broker exited with {self._process.returncode}"))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaNotAvailable(
                    self._failure(f"no answer to a metadata request in {timeout} s ({last})")
                )
            if admin is None:  # connect only once the port is open: librdkafka logs every refused connection
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                except OSError:
                    time.sleep(0.05)
                    continue
                admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "logger": log})
            try:
                metadata = admin.list_topics(timeout=min(2.0, remaining))
            except KafkaException as e:
                last = e
                continue
            if _NODE_ID in metadata.brokers:
                return
            last = f"metadata names brokers {sorted(metadata.brokers)}"
            time.sleep(0.05)

    def _failure(self, what: str, lines: int = 30) -> str:
        try:
            with self.log_file.open(errors="replace") as f:
                tail = "".join(deque(f, maxlen=lines))
        except OSError:
            tail = "(no log)\n"
        return f"Kafka on {self.bootstrap_servers}: {what}; the end of {self.log_file}:\n{tail}"
