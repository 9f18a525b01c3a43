"""Two minutes of mixed load on Core and Serving as users start them (their own processes, their own Redis and
Postgres), with faults on the way: Redis hung then killed, Postgres hung then killed. Throughout, and after:

- no call is ever answered INTERNAL or UNKNOWN (a bug of ours);
- lookups of stored rows are right whenever Redis is up, Postgres faults included (Serving keeps its specs);
  they fail only while Redis is away, and only UNAVAILABLE or DEADLINE_EXCEEDED;
- registry writes fail only while Postgres is away; unknown names are NOT_FOUND and garbage INVALID_ARGUMENT;
- clients that stall never stop the rest;
- memory stays within budget (RSS growth after warm-up), both services are SERVING at the end, the last write is
  in the registry and every stored value reads back exactly.

PROVENDER_SOAK_SECONDS shortens or lengthens the run (default 120, the figure docs/operations.md gives).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from provender.kernel.value_types import ValueType
from provender.local.ports import free_port
from provender.local.postgres import EmbeddedPostgres
from provender.local.redis import EmbeddedRedis
from provender.proto.feast.core import CoreService_pb2 as core_pb2
from provender.proto.feast.core import CoreService_pb2_grpc
from provender.proto.feast.serving import ServingService_pb2_grpc
from tests.factories import entity, table
from tests.integration.serving.online_store import as_rows, request, write_row
from tests.reliability.test_slow_clients import Stalled

SOAK_SECONDS = float(os.environ.get("PROVENDER_SOAK_SECONDS", "120"))
ROWS = 200
MEMORY_BUDGET_MB = 64  # RSS growth of each service from warm-up to the end
GRACE = 3.0  # seconds after a fault ends in which its errors are still its own
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _postgres_pids(server: EmbeddedPostgres) -> list[int]:
    """The postmaster and every process it started (its backends): all of them, for a hung server."""
    postmaster = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


@dataclass
class Log:
    """Outcomes of one kind of call: (time, status code name)."""

    calls: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wrong: list[str] = field(default_factory=list)  # what the wrong answers were
    details: list[str] = field(default_factory=list)  # the first failures' messages

    def add(self, code: str) -> None:
        with self.lock:
            self.calls.append((time.monotonic(), code))

    def codes(self) -> Counter:
        return Counter(code for _, code in self.calls)

    def failures(self, since: float) -> list[tuple[float, str]]:
        """(seconds after `since`, code) of the calls that did not succeed, for messages."""
        return [(round(t - since, 2), code) for t, code in self.calls if code != "OK"][:40]

    def outside(self, windows: list[tuple[float, float]]) -> Counter:
        """Codes of the calls made outside every window (each extended by GRACE)."""
        return Counter(code for t, code in self.calls if not any(lo <= t <= hi + GRACE for lo, hi in windows))


def _wait_serving(target: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            assert proc.poll() is None, f"{target} exited"
            assert time.monotonic() < deadline, f"{target} did not become SERVING"
            time.sleep(0.2)


@pytest.fixture
def platform() -> Iterator[dict]:
    base = Path(tempfile.mkdtemp(prefix="provender-soak-"))
    postgres = EmbeddedPostgres(base / "pg", fast=True).start()
    redis = EmbeddedRedis(
        base / "redis", extra_args=["--appendonly", "yes", "--appendfsync", "always"]
    ).start()
    core_port, serving_port = free_port(), free_port()
    env = {**os.environ, "PROVENDER_POSTGRES_URL": postgres.url(), "PROVENDER_REDIS_URL": redis.url,
           "PROVENDER_CORE_URL": f"127.0.0.1:{core_port}", "PROVENDER_REQUEST_RECEIVE_SECONDS": "2"}  # fmt: skip
    core = subprocess.Popen(
        [sys.executable, "-m", "provender.cli", "core", "--port", str(core_port), "--host", "127.0.0.1",
         "--log-level", "WARNING"], env=env, stdout=subprocess.DEVNULL, stderr=(base / "core.log").open("wb"),
    )  # fmt: skip
    serving = subprocess.Popen(
        [sys.executable, "-m", "provender.serving.main", "--port", str(serving_port), "--host", "127.0.0.1",
         "--log-level", "WARNING"], env=env, stdout=subprocess.DEVNULL, stderr=(base / "serving.log").open("wb"),
    )  # fmt: skip
    try:
        _wait_serving(f"127.0.0.1:{core_port}", core)
        _wait_serving(f"127.0.0.1:{serving_port}", serving)
        yield {"core": f"127.0.0.1:{core_port}", "serving": f"127.0.0.1:{serving_port}", "postgres": postgres,
               "redis": redis, "core_proc": core, "serving_proc": serving}  # fmt: skip
    finally:
        for proc in (serving, core):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        redis.stop()
        postgres.destroy()
        for log in ("core.log", "serving.log"):
            text = (base / log).read_text(errors="replace")
            assert "unhandled error" not in text, text[-3000:]  # a call answered INTERNAL
        shutil.rmtree(base, ignore_errors=True)


def _loop(stop: threading.Event, log: Log, call: Callable[[], str]) -> None:
    while not stop.is_set():
        try:
            log.add(call())
        except grpc.RpcError as e:
            log.add(e.code().name)
            if len(log.details) < 5 and e.code().name not in ("OK", "NOT_FOUND", "INVALID_ARGUMENT"):
                log.details.append(f"{time.monotonic():.2f} {e.code().name}: {e.details()}"[:400])
        except AssertionError as e:
            log.add("WRONG_ANSWER")
            log.wrong.append(str(e)[:2000])


def test_two_minutes_of_mixed_load_with_faults(platform) -> None:
    core_channel = grpc.insecure_channel(platform["core"])
    serving_channel = grpc.insecure_channel(platform["serving"])
    for channel in (core_channel, serving_channel):  # connected before the clock starts
        grpc.channel_ready_future(channel).result(timeout=30)
    core = CoreService_pb2_grpc.CoreServiceStub(core_channel)
    serving = ServingService_pb2_grpc.ServingServiceStub(serving_channel)
    redis = platform["redis"]
    core.ApplyEntity(core_pb2.ApplyEntityRequest(spec=entity("driver_id")), timeout=10)
    core.ApplyFeatureTable(
        core_pb2.ApplyFeatureTableRequest(table_spec=table("driver_hourly", max_age_seconds=0))
    )
    client = redis.client()
    for i in range(ROWS):
        write_row(client, "default", {"driver_id": (i, ValueType.INT64)}, "driver_hourly",
                  {"trips": (i * 7, ValueType.INT64)})  # fmt: skip
    client.close()

    def lookup() -> str:
        ids = random.sample(range(ROWS), 10)
        rows = as_rows(serving.GetOnlineFeaturesV2(
            request("", ["driver_hourly:trips"], [{"driver_id": i} for i in ids]), timeout=2))  # fmt: skip
        assert [r["driver_hourly:trips"] for r in rows] == [(i * 7, "PRESENT") for i in ids]
        return "OK"

    def unknown() -> str:
        serving.GetOnlineFeaturesV2(
            request("", [f"t_{uuid.uuid4().hex * 3}:f"], [{"driver_id": 1}]), timeout=2
        )
        return "OK"

    def garbage() -> str:
        method = random.choice([("serving", "/feast.serving.ServingService/GetOnlineFeaturesV2"),
                                ("core", "/feast.core.CoreService/ApplyEntity")])  # fmt: skip
        channel = serving_channel if method[0] == "serving" else core_channel
        channel.unary_unary(method[1])(b"\x0a\xff\xff\xff" + os.urandom(random.randint(0, 64)), timeout=2)
        return "OK"

    written: list[str] = []

    def writer() -> str:
        label = str(len(written))
        core.ApplyFeatureTable(core_pb2.ApplyFeatureTableRequest(
            table_spec=table("driver_hourly", max_age_seconds=0, round=label)), timeout=3)  # fmt: skip
        written.append(label)
        time.sleep(0.05)
        return "OK"

    logs = {name: Log() for name in ("lookup", "unknown", "garbage", "writer")}
    calls = {"lookup": lookup, "unknown": unknown, "garbage": garbage, "writer": writer}
    stop = threading.Event()
    threads = [threading.Thread(target=_loop, args=(stop, logs[name], calls[name]), daemon=True)
               for name in ("lookup", "lookup", "unknown", "garbage", "writer")]  # fmt: skip
    stalled: list[Stalled] = []
    redis_down: list[tuple[float, float]] = []
    postgres_down: list[tuple[float, float]] = []
    memory: dict[str, list[float]] = {"core": [], "serving": []}
    start = time.monotonic()

    def at(fraction: float) -> None:
        time.sleep(max(0.0, start + fraction * SOAK_SECONDS - time.monotonic()))

    def sample_memory() -> None:
        memory["core"].append(_rss_mb(platform["core_proc"].pid))
        memory["serving"].append(_rss_mb(platform["serving_proc"].pid))

    print(f"load starts at {start:.2f}; Serving at {platform['serving']}, Core at {platform['core']}")
    for thread in threads:
        thread.start()
    try:
        stalled += [Stalled(platform["serving"], "/feast.serving.ServingService/GetOnlineFeaturesV2", 20),
                    Stalled(platform["core"], "/feast.core.CoreService/ListProjects", 20)]  # fmt: skip
        at(0.15)
        sample_memory()  # warmed up
        at(0.25)  # Redis hung (SIGSTOP) for 3 s
        began = time.monotonic()
        os.kill(redis.pid, signal.SIGSTOP)
        time.sleep(3)
        os.kill(redis.pid, signal.SIGCONT)
        redis_down.append((began, time.monotonic()))
        at(0.4)  # Redis killed, restarted from its append-only file
        began = time.monotonic()
        os.kill(redis.pid, signal.SIGKILL)
        redis.stop()
        redis.start()
        redis_down.append((began, time.monotonic()))
        at(0.55)  # Postgres hung (every process of it stopped) for 3 s
        began = time.monotonic()
        pids = _postgres_pids(platform["postgres"])
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(3)
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        postgres_down.append((began, time.monotonic()))
        at(0.7)  # Postgres killed (immediate shutdown: no checkpoint) and started again
        began = time.monotonic()
        platform["postgres"].stop(mode="immediate")
        platform["postgres"].start()
        postgres_down.append((began, time.monotonic()))
        stalled += [Stalled(platform["serving"], "/feast.serving.ServingService/GetOnlineFeaturesV2", 20)]
        at(1.0)
        sample_memory()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for s in stalled:
            s.close()

    everything = sum((log.codes() for log in logs.values()), Counter())
    wrong = [w for log in logs.values() for w in log.wrong]
    assert not ({c.name for c in NEVER} | {"WRONG_ANSWER"}) & set(everything), (everything, wrong[:3])
    windows = {"redis": [(round(a - start, 2), round(b - start, 2)) for a, b in redis_down],
               "postgres": [(round(a - start, 2), round(b - start, 2)) for a, b in postgres_down]}  # fmt: skip
    lookups = logs["lookup"].outside(redis_down)
    assert lookups == Counter(OK=lookups["OK"]), (
        windows,
        logs["lookup"].failures(start),
        logs["lookup"].details,
    )
    assert set(logs["lookup"].codes()) <= {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}, logs["lookup"].codes()
    assert logs["lookup"].codes()["OK"] > 100 * SOAK_SECONDS / 120
    assert set(logs["unknown"].outside(postgres_down)) <= {"NOT_FOUND", "UNAVAILABLE", "DEADLINE_EXCEEDED"}
    assert logs["unknown"].outside(postgres_down + redis_down)["NOT_FOUND"] > 0
    assert set(logs["garbage"].codes()) <= {"INVALID_ARGUMENT"}, logs["garbage"].codes()
    writes = logs["writer"].outside(postgres_down)
    assert writes == Counter(OK=writes["OK"]) and writes["OK"] > 0, logs["writer"].codes()
    growth = {name: values[-1] - values[0] for name, values in memory.items()}
    assert all(g <= MEMORY_BUDGET_MB for g in growth.values()), (growth, memory)

    for target in (platform["core"], platform["serving"]):
        with grpc.insecure_channel(target) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.SERVING, target
    got = core.GetFeatureTable(core_pb2.GetFeatureTableRequest(name="driver_hourly"), timeout=5)
    assert got.table.spec.labels["round"] == written[-1]
    rows = as_rows(serving.GetOnlineFeaturesV2(
        request("", ["driver_hourly:trips"], [{"driver_id": i} for i in range(ROWS)]), timeout=10))  # fmt: skip
    assert [r["driver_hourly:trips"] for r in rows] == [(i * 7, "PRESENT") for i in range(ROWS)]
    assert platform["core_proc"].poll() is None and platform["serving_proc"].poll() is None
    print(f"soak: {dict(everything)}; memory growth MB {growth}; Redis down {redis_down}; Postgres down "
          f"{postgres_down}")  # fmt: skip
    core_channel.close()
    serving_channel.close()
