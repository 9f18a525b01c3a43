"""Stream ingestion benchmark (docs/benchmarks.md, "Stream ingestion"), everything on loopback.

Starts a Kafka broker (EmbeddedKafka), Redis, Postgres and Core (which registers the table), Serving as its own
process, and stream jobs exactly as Core runs them (the local launcher's spark-submit, `local[2]`, the Kafka and
Avro jars, trigger 1 s). Measures, in the same run:
- freshness, produce → visible in Serving, at each rate (default 1k and 10k messages/s, one job for both): a
  producer process sends Avro messages at the fixed rate over a rotating set of keys (each key comes back every
  `--keys-seconds`), every message carrying its produce time (event timestamp and feature `produced_us`) and its
  `seq`; the poller (this process) looks up a sample of the messages (~25 per second) through Serving's gRPC API
  every `--poll-ms` until each shows its seq; freshness = the poll's reply time minus the produce time (an upper
  bound, by up to one poll interval). Each rate is sent for `--warmup` (30 s, not counted: the job's JVM is still
  compiling) plus `--seconds` (60 s, counted); the trend by `--window` is printed too.
- no loss: the job's progress lines must add up to every message sent, none dead-lettered, and at the end every key
  must show through Serving the seq of its last message.
- sustained throughput: N messages (default 1M, one key each) preloaded into a topic, then a new job started on it
  (starting offsets earliest): rows/s from its progress lines (rows read / the batches' own durations) and end to
  end (submit → the batch that brings the total to N); the floor in the same run: batch ingestion of the same rows
  from parquet (the same launcher, a spark-submit of its own as well, submit → DONE). Sampled hashes of the two
  must be byte for byte the same.
The machine's CPU during each part is printed beside the figures: this benchmark's, by part (Spark JVM, Kafka, Serving,
producer, ...), and everybody else's, by process name (the machine is shared).
Prints a table and writes the figures as JSON (default bench/results/stream-<time>.json); exits 0 whatever the
figures (it measures), 1 if the harness itself failed.

Usage: python bench/stream/run.py [--quick] [--rates 1000,10000] [--seconds S] [--warmup S] [--messages N]
                                  [--skip freshness|throughput] [--keep] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from google.protobuf.duration_pb2 import Duration

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from harness import PeakMemory, proc_stats, wait_for  # noqa: E402
from messages import ENTITY, FLOATS, MAX_AGE_SECONDS, PROJECT, SCHEMA_JSON, TABLE  # noqa: E402

from provender.core.jobs.controller import JobSettings  # noqa: E402
from provender.core.launchers.base import JobStatus, Launcher, create_launcher  # noqa: E402
from provender.core.launchers.spark_submit import ProcessHandle  # noqa: E402
from provender.kernel.jobs import report as job_report  # noqa: E402
from provender.kernel.jobs.args import (  # noqa: E402
    Column,
    IngestionJobArgs,
    JobSource,
    JobTable,
    KafkaJobSource,
    StreamIngestionJobArgs,
    to_file_url,
)
from provender.kernel.jobs.conf import STREAM_LOGS_CONF  # noqa: E402
from provender.kernel.online import layout as redis_layout  # noqa: E402
from provender.kernel.value_types import ValueType  # noqa: E402
from provender.local.kafka import EmbeddedKafka, spark_kafka_jars  # noqa: E402
from provender.local.ports import free_port  # noqa: E402
from provender.local.postgres import EmbeddedPostgres  # noqa: E402
from provender.local.redis import EmbeddedRedis  # noqa: E402
from provender.proto.feast.core import CoreService_pb2 as core_pb2  # noqa: E402
from provender.proto.feast.core import CoreService_pb2_grpc as core_grpc  # noqa: E402
from provender.proto.feast.core import (  # noqa: E402
    DataFormat_pb2,
    DataSource_pb2,
    Entity_pb2,
    Feature_pb2,
    FeatureTable_pb2,
)
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2  # noqa: E402
from provender.proto.feast.serving import ServingService_pb2_grpc as serving_grpc  # noqa: E402
from provender.proto.feast.types import Value_pb2  # noqa: E402

TARGET_P99_S = {1000: 5.0}  # freshness p99 at 1k messages/s on this machine
STARTUP_SECONDS = 300  # spark-submit, the JVM and the first micro-batch on a loaded 2-core machine
RESULTS = HERE.parent / "results"
PRESENT = serving_pb2.GetOnlineFeaturesResponse.PRESENT
SEQ_REF, PRODUCED_REF = f"{TABLE}:seq", f"{TABLE}:produced_us"
WARM_UP_KEY_BASE = 900_000_000
THROUGHPUT_KEY_BASE = 1_000_000_000
DECODER = json.JSONDecoder()
LOG_TIME = re.compile(rb"^(\d\d/\d\d/\d\d \d\d:\d\d:\d\d) ")
BATCH_STARTS = re.compile(rb"MicroBatchExecution: Committed offsets for batch (\d+)\.")
STAGE_SUBMITTED = re.compile(rb"DAGScheduler: Submitting (ResultStage|ShuffleMapStage) \d+ \(")
GOT_JOB = re.compile(rb"DAGScheduler: Got (?:map stage )?job \d+")


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# --- the platform -------------------------------------------------------------------------------------------


def job_table(source_dir: Path) -> JobTable:
    return JobTable(
        TABLE,
        (Column(ENTITY, ValueType.INT64),),
        (
            Column("seq", ValueType.INT64),
            Column("produced_us", ValueType.INT64),
            *(Column(f, ValueType.FLOAT) for f in FLOATS),
        ),
        JobSource(to_file_url(source_dir), "event_timestamp"),
        MAX_AGE_SECONDS,
    )


def apply_table(core_url: str, source_dir: Path) -> None:
    channel = grpc.insecure_channel(core_url)
    stub = core_grpc.CoreServiceStub(channel)
    stub.ApplyEntity(
        core_pb2.ApplyEntityRequest(
            project=PROJECT, spec=Entity_pb2.EntitySpecV2(name=ENTITY, value_type=ValueType.INT64)
        )
    )
    source = DataSource_pb2.DataSource(
        type=DataSource_pb2.DataSource.BATCH_FILE,
        event_timestamp_column="event_timestamp",
        file_options=DataSource_pb2.DataSource.FileOptions(
            file_format=DataFormat_pb2.FileFormat(parquet_format=DataFormat_pb2.FileFormat.ParquetFormat()),
            file_url=to_file_url(source_dir),
        ),
    )
    table = job_table(source_dir)
    spec = FeatureTable_pb2.FeatureTableSpec(
        name=TABLE,
        entities=[ENTITY],
        features=[Feature_pb2.FeatureSpecV2(name=f.name, value_type=f.value_type) for f in table.features],
        max_age=Duration(seconds=MAX_AGE_SECONDS),
        batch_source=source,
    )
    stub.ApplyFeatureTable(core_pb2.ApplyFeatureTableRequest(project=PROJECT, table_spec=spec))
    channel.close()


def start_serving(stack: ExitStack, work: Path, core_url: str, redis_url: str) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = free_port()
    out = (work / "serving.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "provender.serving.main", "--host", "127.0.0.1", "--port", str(port),
         "--core-url", core_url, "--redis-url", redis_url, "--log-level", "WARNING"],
        stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    stack.callback(stop_process, proc)
    address = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(address)
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"Serving exited with {proc.returncode}; see {work / 'serving.log'}")
        try:
            if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                break
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("Serving did not become SERVING in 60 s")
        time.sleep(0.1)
    channel.close()
    return address


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    ).values():
        future.result(30)


def run_producer(config: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "producer.py"), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def producer_result(proc: subprocess.Popen, timeout: float = 600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the producer failed:\n{err[-4000:]}")
    return json.loads(out)


# --- reading the job and Serving ------------------------------------------------------------------------------


class JobLog:
    """The stream job's PROVENDER_STREAM_PROGRESS lines, read as the log grows."""

    def __init__(self, log_uri: str) -> None:
        self.path = Path(log_uri.removeprefix("file://"))
        self.offset = 0
        self.rest = b""
        self.batches: list[dict] = []
        self.spark: dict[int, dict[str, float]] = {}
        self.spark_lines: list[bytes] | None = None
        self.unparsed = 0
        self.stages = 0  # Spark stages run since the last progress line
        self.started: float | None = None  # when the current batch's offsets were committed (log time, 1 s)
        self.first_job: float | None = None  # when its first Spark job was submitted

    def poll(self) -> list[dict]:
        if not self.path.exists():
            return self.batches
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        prefix = job_report.PROGRESS_PREFIX.encode()
        for line in lines:
            if self.spark_lines is not None:  # Spark's own progress report: a JSON block that ends with "}"
                self.spark_lines.append(line)
                if line == b"}":
                    self._spark_progress(b"\n".join(self.spark_lines))
                    self.spark_lines = None
            elif (at := line.find(prefix)) >= 0:
                # the JVM copies the Python driver's output into the log in chunks, and its own log lines can
                # land in the middle: the line can have a Spark log line glued before or after the JSON
                try:
                    batch, _ = DECODER.raw_decode(line[at + len(prefix) :].decode(errors="replace"))
                except json.JSONDecodeError:
                    self.unparsed += 1
                    continue
                batch["end"] = datetime.fromisoformat(batch["time"]).timestamp()
                # what the batch ran: Spark stages, and the seconds from its start (its offsets committed) to
                # its first Spark job, to 1 s (Spark's log times)
                batch["stages"] = self.stages
                batch["before_first_job_s"] = (
                    self.first_job - self.started if self.started is not None and self.first_job else None
                )
                self.stages, self.started, self.first_job = 0, None, None
                self.batches.append(batch)
            elif BATCH_STARTS.search(line):
                self.started, self.first_job = self._log_time(line), None
            elif GOT_JOB.search(line):
                if self.first_job is None:
                    self.first_job = self._log_time(line)
            elif STAGE_SUBMITTED.search(line):
                self.stages += 1
            elif line.endswith(b"Streaming query made progress: {"):
                self.spark_lines = [b"{"]
        return self.batches

    @staticmethod
    def _log_time(line: bytes) -> float | None:
        match = LOG_TIME.match(line)
        if not match:
            return None
        return datetime.strptime(match.group(1).decode(), "%y/%m/%d %H:%M:%S").replace(tzinfo=UTC).timestamp()

    def _spark_progress(self, text: bytes) -> None:
        try:
            progress = json.loads(text)
        except json.JSONDecodeError:
            return
        self.spark[progress["batchId"]] = progress.get("durationMs", {})

    def spark_durations(self, batch_ids: list[int]) -> dict[str, float]:
        """The median of each part of Spark's own timing of these micro-batches (ms): addBatch is the
        foreachBatch function, walCommit and commitOffsets the checkpoint, triggerExecution the whole."""
        parts: dict[str, list[float]] = {}
        for b in batch_ids:
            for name, ms in self.spark.get(b, {}).items():
                parts.setdefault(name, []).append(ms)
        return {name: pct(values, 0.5) for name, values in sorted(parts.items())}

    def rows_read(self) -> int:
        return sum(b["rows_read"] for b in self.poll())

    def dead_lettered(self) -> int:
        return sum(b["rows_dead_lettered"] for b in self.poll())

    def tail(self, chars: int = 3000) -> str:
        return self.path.read_text(errors="replace")[-chars:] if self.path.exists() else "(no log)"


class Job:
    """A submitted stream job: its launcher handle and log."""

    def __init__(self, launcher: Launcher, job_id: str, args: StreamIngestionJobArgs) -> None:
        self.launcher = launcher
        self.submitted = time.time()
        self.launched = launcher.submit(job_id, args)
        self.log = JobLog(self.launched.log_uri)
        self.cancelled = False

    @property
    def pid(self) -> int:
        return ProcessHandle.decode(self.launched.handle, "local").pid

    def check(self) -> None:
        state, message = self.launcher.status(self.launched.handle)
        if state is not JobStatus.RUNNING:
            raise RuntimeError(f"the stream job is {state.name}: {message}\n{self.log.tail()}")

    def wait_rows(self, rows: int, timeout: float) -> float:
        """Wall-clock time at which the job's progress lines reached `rows` rows read (the end of that batch)."""
        deadline = time.monotonic() + timeout
        last_check = 0.0
        while self.log.rows_read() < rows:
            if time.monotonic() - last_check > 2:
                self.check()
                last_check = time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the stream job read {self.log.rows_read():,} of {rows:,} rows in {timeout:.0f} s\n"
                    f"{self.log.tail()}"
                )
            time.sleep(0.2)
        total = 0
        for b in self.log.batches:
            total += b["rows_read"]
            if total >= rows:
                return b["end"]
        raise AssertionError("not reached")

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.launcher.cancel(self.launched.handle)


class Serving:
    """Lookups of `seq` and `produced_us` through Serving's GetOnlineFeaturesV2 (the Feast 0.9 call)."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = serving_grpc.ServingServiceStub(self.channel)

    def lookup(self, entities: list[int]) -> list[tuple[int, int] | None]:
        """(seq, produced_us) of each entity, None where Serving has no value."""
        request = serving_pb2.GetOnlineFeaturesRequestV2(project=PROJECT)
        request.features.add(feature_table=TABLE, name="seq")
        request.features.add(feature_table=TABLE, name="produced_us")
        for e in entities:
            request.entity_rows.add().fields[ENTITY].CopyFrom(Value_pb2.Value(int64_val=e))
        response = self.stub.GetOnlineFeaturesV2(request, timeout=10)
        out: list[tuple[int, int] | None] = []
        for fv in response.field_values:
            if fv.statuses[SEQ_REF] == PRESENT:
                out.append((fv.fields[SEQ_REF].int64_val, fv.fields[PRODUCED_REF].int64_val))
            else:
                out.append(None)
        return out

    def close(self) -> None:
        self.channel.close()


# --- the machine's CPU ---------------------------------------------------------------------------------------


LABELS = (  # (a part of the command line, the name the CPU figures use), first match wins
    ("kafka.Kafka", "kafka broker"),
    ("org.apache.spark.deploy.SparkSubmit", "Spark JVM (driver and executor)"),
    ("stream_ingestion.py", "Spark Python driver"),
    ("ingestion.py", "Spark Python driver"),
    ("pyspark.daemon", "Spark Python workers"),
    ("pyspark.worker", "Spark Python workers"),
    ("provender.serving", "serving"),
    ("producer.py", "producer"),
    ("bench/stream/run.py", "poller, Core (this process)"),
    ("redis-server", "redis"),
    ("postgres", "postgres"),
)


def _label(proc: Path, name: str) -> str:
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return name
    return next((label for part, label in LABELS if part in cmdline), name)


class CpuSampler:
    """Every process's own CPU time (utime + stime), sampled every `interval` s by a thread, and whether it is
    in this benchmark's process tree (once seen in it, always counted as ours: Spark's processes outlive their
    parents when a job is cancelled). Children's times (cutime) are not used: they would count a process again
    in whoever reaps it. A process that lives less than one interval is missed."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.ticks: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.ours: set[int] = {os.getpid()}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for proc, name, fields in proc_stats():
            pid = int(proc.name)
            parents[pid] = int(fields[1])
            ticks[pid] = int(fields[11]) + int(fields[12])
            if pid not in self.names:
                self.names[pid] = _label(proc, name)
        with self.lock:
            changed = True
            while changed:
                before = len(self.ours)
                self.ours |= {pid for pid, parent in parents.items() if parent in self.ours}
                changed = len(self.ours) != before
            self.ticks.update(ticks)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def snapshot(self) -> dict[int, int]:
        self.sample()
        with self.lock:
            return dict(self.ticks)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


SAMPLER: CpuSampler | None = None


class CpuWindow:
    """The machine's busy CPU (/proc/stat) over a window, in cores: this benchmark's processes, everybody else's
    (and the busiest of those by name), and the load average."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.busy = self._busy()
        self.ticks = SAMPLER.snapshot() if SAMPLER else {}
        self.load_before = os.getloadavg()[0]

    @staticmethod
    def _busy() -> int:
        with open("/proc/stat") as f:
            values = [int(x) for x in f.readline().split()[1:9]]
        return sum(values) - values[3] - values[4]  # all but idle and iowait

    def close(self) -> dict:
        elapsed = time.monotonic() - self.began
        hz = os.sysconf("SC_CLK_TCK")
        busy = (self._busy() - self.busy) / hz / elapsed
        ours = others = 0.0
        by_name: dict[str, float] = {}
        ours_by_name: dict[str, float] = {}
        if SAMPLER:
            now = SAMPLER.snapshot()
            for pid, ticks in now.items():
                cores = (ticks - self.ticks.get(pid, 0)) / hz / elapsed
                name = SAMPLER.names.get(pid, "?")
                if pid in SAMPLER.ours:
                    ours += cores
                    ours_by_name[name] = ours_by_name.get(name, 0.0) + cores
                else:
                    others += cores
                    by_name[name] = by_name.get(name, 0.0) + cores
        top = sorted(by_name.items(), key=lambda kv: -kv[1])[:5]
        mine = sorted(ours_by_name.items(), key=lambda kv: -kv[1])
        return {
            "seconds": round(elapsed, 1),
            "machine_busy_cores": round(busy, 2),
            "benchmark_cores": round(ours, 2),
            "others_cores": round(others, 2),
            "others_top": [f"{name} {cores:.2f}" for name, cores in top if cores >= 0.01],
            "benchmark_by_part": {name: round(cores, 2) for name, cores in mine if cores >= 0.01},
            "loadavg_1m_before": round(self.load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        }


def pct(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rnd(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


# --- freshness ----------------------------------------------------------------------------------------------


class StreamRun:
    """One stream job on one topic, fed by rate phases; keeps the count of messages sent to it."""

    def __init__(self, opts, kafka: EmbeddedKafka, launcher: Launcher, redis_url: str, work: Path) -> None:
        self.opts, self.kafka, self.work = opts, kafka, work
        self.topic = f"fresh-{uuid.uuid4().hex[:8]}"
        create_topic(kafka.bootstrap_servers, self.topic, opts.partitions)
        args = stream_args(opts, kafka, self.topic, redis_url, work)
        self.job = Job(launcher, f"stream-fresh-{uuid.uuid4().hex[:8]}", args)
        self.sent = 0

    def warm_up(self, serving: Serving) -> float:
        """Send a few messages and wait until Serving shows the last: the job is up and its first batches ran."""
        began = time.monotonic()
        config = self._config(rate=20, seconds=2, keys=40, key_base=WARM_UP_KEY_BASE, seq_base=0)
        result = producer_result(run_producer(config))
        self.sent += result["sent"]
        last = WARM_UP_KEY_BASE + result["sent"] - 1
        while True:
            got = serving.lookup([last])[0]
            if got is not None and got[0] == result["sent"] - 1:
                break
            self.job.check()
            if time.monotonic() - began > STARTUP_SECONDS:
                raise RuntimeError(f"the warm-up messages did not show in Serving\n{self.job.log.tail()}")
            time.sleep(0.5)
        self.job.wait_rows(self.sent, 60)
        return time.monotonic() - began

    def _config(self, **kw) -> dict:
        return {
            "mode": "rate",
            "bootstrap": self.kafka.bootstrap_servers,
            "topic": self.topic,
            "start_at": time.time() + 1.0,
            "sample_every": 10**9,
            **kw,
        }

    def phase(self, serving: Serving, index: int, rate: int) -> dict:
        opts = self.opts
        seconds = opts.warmup + opts.seconds  # sent; only the last opts.seconds are counted
        keys = max(1, int(rate * opts.keys_seconds))
        total = int(rate * seconds)
        sample_every = max(1, round(rate / opts.samples_per_s))
        key_base, seq_base = (index + 1) * 100_000_000, (index + 1) * 1_000_000_000
        config = self._config(
            rate=rate,
            seconds=seconds,
            keys=keys,
            key_base=key_base,
            seq_base=seq_base,
            sample_every=sample_every,
        )
        start_at = config["start_at"]
        cpu: CpuWindow | None = None  # from the end of the warm-up
        proc = run_producer(config)
        first = -(-int(rate * opts.warmup) // sample_every) * sample_every
        next_i = first
        pending: dict[int, int] = {}
        fresh: list[float] = []
        sent_at_s: list[float] = []  # each sample's produce time, seconds after start_at
        overwritten = 0
        polls = 0
        poll_seconds: list[float] = []
        poll = opts.poll_ms / 1000
        drain_deadline = start_at + seconds + opts.drain_seconds
        last_check = time.monotonic()
        while True:
            now = time.time()
            if cpu is None and now >= start_at + opts.warmup:
                cpu = CpuWindow()
            due = min(total - 1, int((now - start_at) * rate))
            while next_i <= due:
                pending[next_i] = key_base + next_i % keys
                next_i += sample_every
            if pending:
                items = list(pending.items())[:1000]
                sent_at = time.time()
                values = serving.lookup([e for _, e in items])
                seen_at = time.time()
                polls += 1
                poll_seconds.append(seen_at - sent_at)
                for (i, _), value in zip(items, values, strict=True):
                    if value is None or value[0] < seq_base + i:
                        continue
                    if value[0] == seq_base + i:
                        fresh.append(seen_at - value[1] / 1e6)
                        sent_at_s.append(value[1] / 1e6 - start_at)
                    else:  # overwritten by a later message of the key before a poll saw it: from its schedule
                        overwritten += 1
                        fresh.append(seen_at - (start_at + i / rate))
                        sent_at_s.append(i / rate)
                    del pending[i]
            if next_i >= total and not pending:
                break
            if now > drain_deadline:
                break
            if time.monotonic() - last_check > 2:
                self.job.check()
                last_check = time.monotonic()
            # a job far behind leaves many samples pending: poll them less often (the error stays a few %
            # of their freshness), so that the poller and Serving do not take CPU from the job they measure
            interval = poll if len(pending) <= 200 else 4 * poll
            time.sleep(max(0.0, interval - (time.time() - now)))
        produced = producer_result(proc)
        self.sent += produced["sent"]
        cpu_use = (cpu or CpuWindow()).close()
        # no loss: the job read every message (and dead-lettered none); every key shows its last message's seq
        caught_up_at = self.job.wait_rows(self.sent, opts.drain_seconds + 60)
        lost = self.check_keys(serving, keys, produced["sent"], key_base, seq_base)
        counted_from = start_at + opts.warmup
        batches = [b for b in self.job.log.batches if counted_from <= b["end"] <= caught_up_at + 0.001]
        durations = [b["duration_seconds"] for b in batches]
        planning = [b["before_first_job_s"] for b in batches if b["before_first_job_s"] is not None]
        ends = [b["end"] for b in batches]
        gaps = [b - a for a, b in itertools.pairwise(ends)]
        return {
            "rate": rate,
            "seconds": seconds,
            "warmup_seconds": opts.warmup,
            "keys": keys,
            "sent": produced["sent"],
            "producer": produced,
            "sampled": len(fresh) + len(pending),
            "visible": len(fresh),
            "never_visible": len(pending),
            "overwritten_before_seen": overwritten,
            "freshness_p50_s": rnd(pct(fresh, 0.50)),
            "freshness_p99_s": rnd(pct(fresh, 0.99)),
            "freshness_max_s": rnd(max(fresh) if fresh else None),
            "freshness_mean_s": rnd(sum(fresh) / len(fresh) if fresh else None),
            "freshness_by_window": windows(sent_at_s, fresh, opts.window),
            "poll_interval_ms": opts.poll_ms,
            "polls": polls,
            "poll_p50_ms": rnd((pct(poll_seconds, 0.5) or 0) * 1000, 2),
            "caught_up_after_last_produce_s": rnd(caught_up_at - produced["ended_at"]),
            "job_rows_read_total": self.job.log.rows_read(),
            "sent_total": self.sent,
            "dead_lettered_total": self.job.log.dead_lettered(),
            "keys_lost_or_stale": lost,
            "batches": len(batches),
            "batch_rows_mean": rnd(
                sum(b["rows_read"] for b in batches) / len(batches) if batches else None, 1
            ),
            "batch_seconds_p50": rnd(pct(durations, 0.5)),
            "batch_seconds_max": rnd(max(durations) if durations else None),
            "batch_stages_p50": pct([b["stages"] for b in batches], 0.5),
            "batch_before_first_job_s_p50": rnd(pct(planning, 0.5)),
            "batch_interval_p50_s": rnd(pct(gaps, 0.5)),
            "batch_interval_max_s": rnd(max(gaps) if gaps else None),
            "spark_batch_ms_p50": self.job.log.spark_durations([b["batch"] for b in batches]),
            "batch_list": [
                {
                    "end_s": round(b["end"] - start_at, 2),
                    "rows": b["rows_read"],
                    "seconds": round(b["duration_seconds"], 3),
                    "stages": b["stages"],
                }
                for b in batches
            ],
            "cpu": cpu_use,
        }

    def check_keys(self, serving: Serving, keys: int, sent: int, key_base: int, seq_base: int) -> dict:
        """Every key of the phase through Serving: its value must be its last message's (retried a few seconds,
        as a progress line can come before Serving's next read)."""
        want = {key_base + k: seq_base + k + keys * ((sent - 1 - k) // keys) for k in range(min(keys, sent))}
        deadline = time.monotonic() + 10
        while True:
            missing = stale = 0
            entities = list(want)
            for start in range(0, len(entities), 1000):
                chunk = entities[start : start + 1000]
                for e, value in zip(chunk, serving.lookup(chunk), strict=True):
                    if value is None:
                        missing += 1
                    elif value[0] != want[e]:
                        stale += 1
            if (missing == stale == 0) or time.monotonic() > deadline:
                return {"keys_checked": len(want), "missing": missing, "not_last_message": stale}
            time.sleep(1)


def windows(at: list[float], fresh: list[float], width: float) -> list[dict]:
    """Freshness p50/p99 of the samples produced in each `width`-second window of the counted part."""
    out = []
    if not at:
        return out
    first = min(at)
    buckets: dict[int, list[float]] = {}
    for t, f in zip(at, fresh, strict=True):
        buckets.setdefault(int((t - first) // width), []).append(f)
    for n, values in sorted(buckets.items()):
        out.append(
            {
                "from_s": round(first + n * width, 1),
                "n": len(values),
                "p50_s": rnd(pct(values, 0.5)),
                "p99_s": rnd(pct(values, 0.99)),
            }
        )
    return out


def stream_args(opts, kafka: EmbeddedKafka, topic: str, redis_url: str, work: Path) -> StreamIngestionJobArgs:
    source = KafkaJobSource(
        bootstrap_servers=kafka.bootstrap_servers,
        topic=topic,
        message_format="avro",
        event_timestamp_column="event_timestamp",
        schema_json=SCHEMA_JSON,
    )
    return StreamIngestionJobArgs(
        project=PROJECT,
        table=job_table(work / "no-batch-source"),
        source=source,
        redis_url=redis_url,
        checkpoint_location=to_file_url(work / "checkpoints" / topic),
        dead_letter_location=to_file_url(work / "dead-letter" / topic),
        trigger_seconds=opts.trigger,
        starting_offsets="earliest",
        max_messages_per_batch=opts.max_batch,
    )


# --- sustained throughput ----------------------------------------------------------------------------------------


def make_source(folder: Path, rows: int) -> Path:
    """The throughput data as parquet: one row per key, event times (= produced_us) an hour old, 1 µs apart."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    base_us = int((time.time() - 3600) * 1e6)
    chunk = 250_000
    for start in range(0, rows, chunk):
        n = np.arange(start, min(rows, start + chunk), dtype=np.int64)
        ts = base_us + n
        table = pa.table(
            {
                ENTITY: THROUGHPUT_KEY_BASE + n,
                "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "seq": n,
                "produced_us": ts,
                **{f: rng.random(len(n), dtype=np.float32) for f in FLOATS},
            }
        )
        pq.write_table(table, folder / f"part-{start // chunk:05d}.parquet")
    return folder


def sample_hashes(client, rows: int, sample: int = 2000) -> tuple[list[int], list[dict]]:
    picks = sorted({int(x) for x in np.random.default_rng(9).integers(0, rows, sample)})
    pipe = client.pipeline(transaction=False)
    for n in picks:
        pipe.hgetall(
            redis_layout.entity_key(
                PROJECT, {ENTITY: redis_layout.encode_value(THROUGHPUT_KEY_BASE + n, ValueType.INT64)}
            )
        )
    return picks, pipe.execute()


def throughput(
    opts, kafka: EmbeddedKafka, launcher: Launcher, redis_server: EmbeddedRedis, work: Path
) -> dict:
    rows = opts.messages
    log(f"throughput: writing {rows:,} rows of parquet and preloading them into a topic")
    source = make_source(work / "throughput-source", rows)
    topic = f"bulk-{uuid.uuid4().hex[:8]}"
    create_topic(kafka.bootstrap_servers, topic, opts.partitions)
    preload = producer_result(
        run_producer(
            {"mode": "preload", "bootstrap": kafka.bootstrap_servers, "topic": topic, "source": str(source)}
        )
    )
    if preload["undelivered"] or preload["error_count"]:
        raise RuntimeError(f"preloading the topic failed: {preload}")
    log(f"preloaded {preload['sent']:,} messages in {preload['seconds']} s ({preload['rate']:,}/s)")
    client = redis_server.client()
    client.flushall()

    # the stream job, from the earliest offset
    log("throughput: the stream job works through the topic")
    cpu = CpuWindow()
    job = Job(
        launcher,
        f"stream-bulk-{uuid.uuid4().hex[:8]}",
        stream_args(opts, kafka, topic, redis_server.url, work),
    )
    memory = PeakMemory(job.pid)
    try:
        done_at = job.wait_rows(rows, STARTUP_SECONDS + 600)
    finally:
        job.cancel()
        stream_peak = memory.stop()
    stream_cpu = cpu.close()
    batches = job.log.batches
    read = sum(b["rows_read"] for b in batches)
    in_batches = sum(b["duration_seconds"] for b in batches)
    first_start = batches[0]["end"] - batches[0]["duration_seconds"]
    stream_keys = client.dbsize()
    picks, stream_hashes = sample_hashes(client, rows)
    stream = {
        "rows_read": read,
        "rows_written": sum(b["rows_written"] for b in batches),
        "dead_lettered": sum(b["rows_dead_lettered"] for b in batches),
        "batches": len(batches),
        "batch_rows": [b["rows_read"] for b in batches][:20],
        "batch_seconds": [round(b["duration_seconds"], 2) for b in batches][:20],
        "batch_stages": [b["stages"] for b in batches][:20],
        "batch_before_first_job_s": [b["before_first_job_s"] for b in batches][:20],
        "spark_batch_ms": [job.log.spark.get(b["batch"], {}) for b in batches][:20],
        "in_batches_seconds": round(in_batches, 2),
        "rows_per_s_in_batches": round(read / in_batches),
        "first_batch_start_to_last_end_s": round(done_at - first_start, 2),
        "rows_per_s_first_batch_to_done": round(read / (done_at - first_start)),
        "submit_to_done_s": round(done_at - job.submitted, 2),
        "rows_per_s_end_to_end": round(rows / (done_at - job.submitted)),
        "startup_s": round(first_start - job.submitted, 2),
        "keys_in_redis": stream_keys,
        "peak_memory_bytes": stream_peak,
        "cpu": stream_cpu,
        "log": job.launched.log_uri,
    }

    # the floor: batch ingestion of the same rows (parquet -> Redis), on the same launcher
    log("throughput: batch ingestion of the same rows (the floor)")
    client.flushall()
    now = datetime.now(UTC)
    args = IngestionJobArgs(
        project=PROJECT,
        table=job_table(source),
        redis_url=redis_server.url,
        start=now - timedelta(days=1),
        end=now + timedelta(days=1),
        dead_letter_location=to_file_url(work / "dead-letter-batch"),
    )
    cpu = CpuWindow()
    began = time.time()
    launched = launcher.submit(f"batch-{uuid.uuid4().hex[:8]}", args)
    memory = PeakMemory(ProcessHandle.decode(launched.handle, "local").pid)
    state, message = wait_for(launcher, launched.handle)
    batch_s = time.time() - began
    batch_peak = memory.stop()
    batch_cpu = cpu.close()
    if state is not JobStatus.DONE:
        raise RuntimeError(f"the batch ingestion job failed: {message} (log {launched.log_uri})")
    summary = job_report.find_summary(Path(launched.log_uri.removeprefix("file://"))) or {}
    in_job = summary.get("duration_seconds")
    _, batch_hashes = sample_hashes(client, rows)
    batch = {
        "submit_to_done_s": round(batch_s, 2),
        "rows_per_s_end_to_end": round(rows / batch_s),
        "in_job_seconds": in_job,
        "rows_per_s_in_job": round(rows / in_job) if in_job else None,
        "keys_in_redis": client.dbsize(),
        "peak_memory_bytes": batch_peak,
        "cpu": batch_cpu,
        "log": launched.log_uri,
    }
    client.flushall()
    client.close()
    return {
        "messages": rows,
        "partitions": opts.partitions,
        "preload": preload,
        "stream": stream,
        "batch": batch,
        "sampled_hashes": len(picks),
        "sampled_hashes_identical": stream_hashes == batch_hashes and all(stream_hashes),
        "ratio_in_job": round(stream["rows_per_s_in_batches"] / batch["rows_per_s_in_job"], 3)
        if batch["rows_per_s_in_job"]
        else None,
        "ratio_end_to_end": round(stream["rows_per_s_end_to_end"] / batch["rows_per_s_end_to_end"], 3),
    }


# --- report ---------------------------------------------------------------------------------------------------


def report(results: dict) -> list[str]:
    lines = []
    for p in results.get("freshness", []):
        target = TARGET_P99_S.get(p["rate"])
        verdict = ""
        if target is not None and p["freshness_p99_s"] is not None:
            verdict = f" (target < {target} s: {'ok' if p['freshness_p99_s'] < target else 'MISSED'})"
        lost = p["keys_lost_or_stale"]
        no_loss = (
            p["job_rows_read_total"] == p["sent_total"]
            and p["dead_lettered_total"] == 0
            and lost["missing"] == lost["not_last_message"] == 0
            and p["never_visible"] == 0
            and p["producer"]["undelivered"] == 0
            and p["producer"]["error_count"] == 0
        )
        prod = p["producer"]
        lines += [
            f"freshness at {p['rate']:,} msg/s ({p['sent']:,} messages over {p['keys']:,} keys in {p['seconds']} s, "
            f"the first {p['warmup_seconds']} s not counted; "
            f"producer achieved {prod['achieved_rate']:,.0f}/s, at most {prod['max_behind_schedule_s']} s behind): "
            f"p50 {p['freshness_p50_s']} s, p99 {p['freshness_p99_s']} s{verdict}, max {p['freshness_max_s']} s; "
            f"{p['visible']:,} of {p['sampled']:,} sampled messages seen "
            f"(polled every {p['poll_interval_ms']} ms, a poll took {p['poll_p50_ms']} ms at p50)",
            f"  produce -> broker ack p50 {prod['ack_p50_ms']} ms, p99 {prod['ack_p99_ms']} ms; job batches "
            f"{p['batches']}, {p['batch_rows_mean']} rows on average, each {p['batch_seconds_p50']} s at p50 "
            f"(max {p['batch_seconds_max']} s), one every {p['batch_interval_p50_s']} s at p50 "
            f"(max {p['batch_interval_max_s']} s); caught up {p['caught_up_after_last_produce_s']} s after the "
            "last produce",
            f"  in a batch (p50): {p['batch_stages_p50']} Spark stages; {p['batch_before_first_job_s_p50']} s "
            "(+-1 s) from its start (offsets committed) to its first Spark job; "
            "Spark's timing of the batches, p50 ms: "
            + ", ".join(f"{k} {v:.0f}" for k, v in p["spark_batch_ms_p50"].items()),
            f"  no loss: job read {p['job_rows_read_total']:,} of {p['sent_total']:,} messages sent, "
            f"{p['dead_lettered_total']} dead-lettered; {lost['keys_checked']:,} keys through Serving: "
            f"{lost['missing']} missing, {lost['not_last_message']} not at their last message: "
            f"{'ok' if no_loss else 'MISSED'}",
            f"  CPU: machine {p['cpu']['machine_busy_cores']} cores busy, of which this benchmark "
            f"{p['cpu']['benchmark_cores']}, others {p['cpu']['others_cores']} ({', '.join(p['cpu']['others_top'])})",
            "  freshness p50/p99 by window of produce time: "
            + ", ".join(
                f"{w['from_s']:.0f} s: {w['p50_s']}/{w['p99_s']}" for w in p.get("freshness_by_window", [])
            ),
            "  CPU of this benchmark's parts, cores: "
            + ", ".join(f"{k} {v}" for k, v in p["cpu"].get("benchmark_by_part", {}).items()),
        ]
    t = results.get("throughput")
    if t:
        s, b = t["stream"], t["batch"]
        lines += [
            f"sustained stream, {t['messages']:,} preloaded messages ({t['partitions']} partitions): "
            f"{s['rows_per_s_in_batches']:,} rows/s in its batches ({s['batches']} batches, {s['in_batches_seconds']} s); "
            f"{s['rows_per_s_end_to_end']:,} rows/s submit -> all written ({s['submit_to_done_s']} s, of which "
            f"start-up {s['startup_s']} s); peak memory {s['peak_memory_bytes'] / 1024**3:.2f} GiB",
            f"batch floor, the same rows from parquet: {b['rows_per_s_in_job']:,} rows/s in the job "
            f"({b['in_job_seconds']} s); {b['rows_per_s_end_to_end']:,} rows/s submit -> DONE ({b['submit_to_done_s']} s); "
            f"peak memory {b['peak_memory_bytes'] / 1024**3:.2f} GiB",
            f"stream / batch: {t['ratio_in_job']} in the job, {t['ratio_end_to_end']} end to end; keys "
            f"{s['keys_in_redis']:,} and {b['keys_in_redis']:,} of {t['messages']:,}; {t['sampled_hashes']} sampled "
            f"hashes identical: {'ok' if t['sampled_hashes_identical'] else 'MISSED'}; read {s['rows_read']:,}, "
            f"dead-lettered {s['dead_lettered']}",
            f"  CPU: stream run machine {s['cpu']['machine_busy_cores']} cores busy (others "
            f"{s['cpu']['others_cores']}); batch run {b['cpu']['machine_busy_cores']} (others {b['cpu']['others_cores']})",
            "  CPU of the stream run's parts, cores: "
            + ", ".join(f"{k} {v}" for k, v in s["cpu"].get("benchmark_by_part", {}).items()),
            "  CPU of the batch run's parts, cores: "
            + ", ".join(f"{k} {v}" for k, v in b["cpu"].get("benchmark_by_part", {}).items()),
        ]
    return lines


def table(results: dict) -> list[str]:
    rows = ["| figure | measured | target |", "|---|---|---|"]
    for p in results.get("freshness", []):
        target = TARGET_P99_S.get(p["rate"])
        rows.append(
            f"| freshness {p['rate']:,} msg/s | p50 {p['freshness_p50_s']} s, p99 {p['freshness_p99_s']} s, "
            f"max {p['freshness_max_s']} s ({p['visible']:,} sampled) | "
            + (f"p99 < {target} s" if target else "-")
            + " |"
        )
        lost = p["keys_lost_or_stale"]
        rows.append(
            f"| loss {p['rate']:,} msg/s | read {p['job_rows_read_total']:,} / sent {p['sent_total']:,}; "
            f"{lost['missing'] + lost['not_last_message']} of {lost['keys_checked']:,} keys wrong | none lost |"
        )
    t = results.get("throughput")
    if t:
        s, b = t["stream"], t["batch"]
        rows.append(
            f"| sustained rows/s, in the job | stream {s['rows_per_s_in_batches']:,} vs batch "
            f"{b['rows_per_s_in_job']:,} = {t['ratio_in_job']} | - |"
        )
        rows.append(
            f"| sustained rows/s, end to end | stream {s['rows_per_s_end_to_end']:,} vs batch "
            f"{b['rows_per_s_end_to_end']:,} = {t['ratio_end_to_end']} | - |"
        )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="15 s per rate, 100k messages: a few minutes")
    p.add_argument("--rates", default="1000,10000", help="messages/s, comma-separated")
    p.add_argument("--seconds", type=float, default=None, help="seconds sent at each rate (default 60)")
    p.add_argument(
        "--warmup", type=float, default=None, help="first seconds of each rate sent but not counted (30)"
    )
    p.add_argument("--window", type=float, default=15.0, help="seconds per window of the freshness trend")
    p.add_argument("--messages", type=int, default=None, help="preloaded messages for throughput (1M)")
    p.add_argument("--partitions", type=int, default=2, help="partitions of each topic (2: one per core)")
    p.add_argument(
        "--keys-seconds", type=float, default=20.0, help="a key comes back every this many seconds"
    )
    p.add_argument(
        "--samples-per-s", type=float, default=25.0, help="messages sampled for freshness per second"
    )
    p.add_argument("--poll-ms", type=float, default=50.0, help="the poller's interval")
    p.add_argument("--drain-seconds", type=float, default=60.0, help="longest wait after the last produce")
    p.add_argument("--trigger", type=float, default=1.0, help="the stream job's trigger_seconds")
    p.add_argument("--master", default="local[2]")
    p.add_argument(
        "--max-batch",
        type=int,
        default=JobSettings(staging_location="file:///unused").stream_max_messages_per_batch,
        help="the job's max_messages_per_batch (default: Core's, --stream-max-messages-per-batch; 0: no bound)",
    )
    p.add_argument("--skip", default="", help="parts to skip: freshness, throughput")
    p.add_argument(
        "--json", type=Path, default=None, help="where the figures go (bench/results/stream-*.json)"
    )
    p.add_argument("--keep", action="store_true", help="keep the work folder (job logs, Kafka, checkpoints)")
    opts = p.parse_args()
    opts.seconds = opts.seconds or (15.0 if opts.quick else 60.0)
    opts.warmup = opts.warmup if opts.warmup is not None else (5.0 if opts.quick else 30.0)
    opts.messages = opts.messages or (100_000 if opts.quick else 1_000_000)
    skip = {s for s in opts.skip.split(",") if s}
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    results: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "cores": os.cpu_count(),
    }
    work = Path(tempfile.mkdtemp(prefix="provender-bench-stream-"))
    global SAMPLER
    SAMPLER = CpuSampler()
    whole = CpuWindow()
    with ExitStack() as stack:
        if not opts.keep:
            stack.callback(shutil.rmtree, work, True)
        log(f"work folder {work}")
        jars = [str(j) for j in spark_kafka_jars()]
        redis_server = EmbeddedRedis(work / "redis").start()
        stack.callback(redis_server.stop)
        # Directly under /tmp: as root, Postgres runs as `postgres`, which must reach it (see tests/conftest.py).
        pg_dir = Path(tempfile.mkdtemp(prefix="provender-bench-pg-"))
        stack.callback(shutil.rmtree, pg_dir, True)
        postgres = EmbeddedPostgres(pg_dir, fast=True).start()
        stack.callback(postgres.destroy)
        from provender.core.app import CoreSettings, start_core

        core = start_core(CoreSettings(postgres_url=postgres.url(), port=0, host="127.0.0.1"))
        stack.callback(core.stop, 1)
        core_url = f"127.0.0.1:{core.port}"
        apply_table(core_url, work / "no-batch-source")
        serving_address = start_serving(stack, work, core_url, redis_server.url)
        kafka = EmbeddedKafka(work / "kafka").start()
        stack.callback(kafka.stop)
        launcher = create_launcher(
            "local",
            work_dir=work / "jobs",
            master=opts.master,
            jars=jars,
            conf={STREAM_LOGS_CONF: "full"},  # Spark's INFO lines time each micro-batch
        )
        serving = Serving(serving_address)
        stack.callback(serving.close)
        log(
            f"up: Kafka {kafka.bootstrap_servers}, Redis {redis_server.url}, Core {core_url}, Serving {serving_address}"
        )
        if "freshness" not in skip:
            run = StreamRun(opts, kafka, launcher, redis_server.url, work)
            try:
                log("freshness: waiting for the stream job's first batches")
                results["stream_startup_s"] = round(run.warm_up(serving), 1)
                results["freshness"] = []
                for index, rate in enumerate(int(r) for r in opts.rates.split(",")):
                    log(
                        f"freshness: {rate:,} messages/s for {opts.warmup + opts.seconds:.0f} s "
                        f"(the first {opts.warmup:.0f} s not counted)"
                    )
                    phase = run.phase(serving, index, rate)
                    results["freshness"].append(phase)
                    for line in report({"freshness": [phase]}):
                        log(line)
            finally:
                results["freshness_job_log"] = run.job.launched.log_uri
                run.job.cancel()
        if "throughput" not in skip:
            results["throughput"] = throughput(opts, kafka, launcher, redis_server, work)
        results["cpu_whole_run"] = whole.close()
        print()
        for line in report(results):
            print(line)
        print()
        for line in table(results):
            print(line)
        c = results["cpu_whole_run"]
        print(
            f"\nwhole run {c['seconds']} s: machine {c['machine_busy_cores']} of {os.cpu_count()} cores busy on "
            f"average, this benchmark {c['benchmark_cores']}, others {c['others_cores']} "
            f"({', '.join(c['others_top'])}); load average {c['loadavg_1m_before']} -> {c['loadavg_1m_after']}",
            flush=True,
        )
        out = opts.json or RESULTS / f"stream-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
