"""Offline→online ingestion benchmark (docs/benchmarks.md, "Offline → online ingestion"), everything on loopback.

Data: parquet with N entities (default 1M) x 10 FLOAT features, 1 row each, and a variant with 5 rows per entity
(deduplication). For each variant, in the same run:
- floor: the same hashes, pre-encoded, written by one redis-py pipeline (HSET + EXPIREAT per key) into a fresh Redis;
- the job, submitted with the local launcher and timed from submit to DONE, its processes' peak memory (RSS sum)
  sampled: "cold", a `spark-submit --master local[*]` of its own (Spark start-up in the time), and "warm", in the
  launcher's long-lived driver (started, and warmed up by two small ingestions, before the clock starts);
- the bytes: every key's count and a sample of keys compared with the floor's hashes and with redis_layout.
Prints one summary line per figure with its target and ratio; exits 0 whatever the figures (it measures).

Usage: python bench/ingest/run.py [--entities N] [--quick] [--variants 1,5] [--driver cold|warm|both] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from provender.core.launchers.base import JobStatus, Launcher, create_launcher
from provender.core.launchers.spark_submit import ProcessHandle
from provender.kernel.jobs import report as job_report
from provender.kernel.jobs.args import Column, IngestionJobArgs, JobSource, JobTable, to_file_url
from provender.kernel.online import columns as columnar_encoding
from provender.kernel.online import layout as redis_layout
from provender.kernel.value_types import ValueType
from provender.local.redis import EmbeddedRedis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import PeakMemory, wait_for

PROJECT = "bench"
TABLE = "ingest_bench"
FEATURES = [f"f{i}" for i in range(10)]
MAX_AGE = 30 * 86_400
TARGET_ROWS_PER_S = 100_000
TARGET_FLOOR_RATIO = 0.8
TARGET_PEAK_BYTES = 2 * 1024**3


def bench_table(source: Path) -> JobTable:
    return JobTable(
        TABLE,
        (Column("entity_id", ValueType.INT64),),
        tuple(Column(f, ValueType.FLOAT) for f in FEATURES),
        JobSource(to_file_url(source), "event_timestamp"),
        MAX_AGE,
    )


def make_source(folder: Path, entities: int, rows_per_entity: int, now: datetime) -> tuple[Path, dict]:
    """The parquet source, and the latest row of each entity (what Redis must hold) as numpy columns."""
    rng = np.random.default_rng(rows_per_entity)
    folder.mkdir(parents=True, exist_ok=True)
    base_us = int((now - timedelta(hours=6)).timestamp() * 1e6)
    latest: dict = {}
    chunk = 250_000
    for start in range(0, entities, chunk):
        ids = np.arange(start, min(entities, start + chunk), dtype=np.int64)
        reps = np.repeat(ids, rows_per_entity)
        ev = base_us + rng.integers(0, 3_600_000_000, len(reps))
        values = {f: rng.random(len(reps), dtype=np.float32) for f in FEATURES}
        order = rng.permutation(len(reps))
        table = pa.table(
            {
                "entity_id": reps[order],
                "event_timestamp": pa.array(ev[order], pa.timestamp("us", tz="UTC")),
                **{f: values[f][order] for f in FEATURES},
            }
        )
        pq.write_table(table, folder / f"part-{start // chunk:05d}.parquet")
        # the latest row per entity (event times are distinct with overwhelming likelihood; ties: the greatest values)
        grouped_ev = ev.reshape(-1, rows_per_entity)
        pick = np.argmax(grouped_ev, axis=1) + np.arange(len(ids)) * rows_per_entity
        latest.setdefault("entity_id", []).append(ids)
        latest.setdefault("event_us", []).append(ev[pick])
        for f in FEATURES:
            latest.setdefault(f, []).append(values[f][pick])
    return folder, {k: np.concatenate(v) for k, v in latest.items()}


def encode_floor(latest: dict) -> list[tuple[bytes, list[bytes], int]]:
    """The hashes docs/protocol.md prescribes, encoded before the clock starts: (key, HSET args, EXPIREAT)."""
    keys = columnar_encoding.encode_keys(
        PROJECT, {"entity_id": pa.array(latest["entity_id"])}, {"entity_id": ValueType.INT64}
    ).to_pylist()
    event_ns = latest["event_us"].astype(np.int64) * 1000
    ts = columnar_encoding.encode_timestamps_ns(event_ns).to_pylist()
    ex = columnar_encoding.encode_timestamps_ns(redis_layout.expiry_ns(event_ns, MAX_AGE)).to_pylist()
    expire_at = columnar_encoding.expire_at_seconds(event_ns, MAX_AGE).tolist()
    values = {
        f: columnar_encoding.encode_values(pa.array(latest[f]), ValueType.FLOAT).to_pylist() for f in FEATURES
    }
    fields = [redis_layout.feature_field(TABLE, f) for f in FEATURES]
    ts_field, ex_field = redis_layout.ts_field(TABLE), redis_layout.ex_field(TABLE)
    out = []
    for i, key in enumerate(keys):
        args: list[bytes] = [ts_field, ts[i], ex_field, ex[i]]
        for field, f in zip(fields, FEATURES, strict=True):
            args += [field, values[f][i]]
        out.append((key, args, expire_at[i]))
    return out


def run_floor(redis_url_port: int, hashes: list[tuple[bytes, list[bytes], int]]) -> float:
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_url_port)
    client.flushall()
    began = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for n, (key, args, at) in enumerate(hashes, 1):
        pipe.execute_command("HSET", key, *args)
        pipe.execute_command("EXPIREAT", key, at)
        if n % 10_000 == 0:
            pipe.execute()
    pipe.execute()
    elapsed = time.perf_counter() - began
    client.close()
    return elapsed


def snapshot(port: int, keys: list[bytes]) -> list[tuple[dict, int]]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.hgetall(k)
        pipe.pttl(k)  # as Redis 6 can (EXPIRETIME is Redis 7's): the expiry is the server's clock plus it
    replies = pipe.execute()
    seconds, micros = client.time()
    client.close()
    now_ms = seconds * 1000 + micros / 1000
    return [
        (fields, -1 if ttl == -1 else round((now_ms + ttl) / 1000))
        for fields, ttl in zip(replies[::2], replies[1::2], strict=True)
    ]


def run_variant(
    tmp: Path,
    redis_server: EmbeddedRedis,
    entities: int,
    rows_per_entity: int,
    launchers: dict[str, Launcher],
) -> list[dict]:
    """The floor, then the job on each launcher ("cold": a spark-submit for the job; "warm": the local
    launcher's long-lived driver, already running)."""
    now = datetime.now(UTC)
    print(
        f"# variant {rows_per_entity} row(s)/entity: writing {entities * rows_per_entity:,} rows of parquet",
        flush=True,
    )
    source, latest = make_source(tmp / f"src-{rows_per_entity}", entities, rows_per_entity, now)
    hashes = encode_floor(latest)
    floor_s = run_floor(redis_server.port, hashes)
    sample_idx = random.Random(1).sample(range(len(hashes)), min(2000, len(hashes)))
    sample_keys = [hashes[i][0] for i in sample_idx]
    floor_state = snapshot(redis_server.port, sample_keys)
    # independent check of the floor itself against redis_layout's scalar encoding
    for j, i in enumerate(sample_idx[:200]):
        ev_ns = int(latest["event_us"][i]) * 1000
        expected = redis_layout.table_row_fields(
            TABLE, {f: (float(latest[f][i]), ValueType.FLOAT) for f in FEATURES}, ev_ns, MAX_AGE
        )
        assert floor_state[j][0] == expected, "floor hash differs from redis_layout"
        assert sample_keys[j] == redis_layout.entity_key(
            PROJECT, {"entity_id": redis_layout.encode_value(int(latest["entity_id"][i]), ValueType.INT64)}
        )
    client = redis_server.client()
    client.flushall()

    table = bench_table(source)
    args = IngestionJobArgs(
        project=PROJECT,
        table=table,
        redis_url=redis_server.url,
        start=now - timedelta(days=1),
        end=now + timedelta(days=1),
        dead_letter_location=to_file_url(tmp / f"dead-{rows_per_entity}"),
    )
    results = []
    for driver, launcher in launchers.items():
        client.flushall()
        began = time.perf_counter()
        launched = launcher.submit(f"ingest-{rows_per_entity}-{driver}", args)
        memory = PeakMemory(ProcessHandle.decode(launched.handle, "local").pid)
        state, message = wait_for(launcher, launched.handle)
        job_s = time.perf_counter() - began
        peak = memory.stop()
        if state is not JobStatus.DONE:
            raise SystemExit(f"ingestion job failed: {message} (log {launched.log_uri})")
        results.append(
            _result(driver, rows_per_entity, entities, len(hashes), job_s, floor_s, peak, launched.log_uri)
            | {
                "keys_in_redis": client.dbsize(),
                "sample_bytes_identical_to_floor": snapshot(redis_server.port, sample_keys) == floor_state,
            }
        )
    client.flushall()
    client.close()
    return results


def _result(
    driver: str,
    rows_per_entity: int,
    entities: int,
    rows_written: int,
    job_s: float,
    floor_s: float,
    peak: int,
    log_uri: str,
) -> dict:
    in_job = _in_job_seconds(log_uri)
    return {
        "driver": driver,
        "rows_per_entity": rows_per_entity,
        "source_rows": entities * rows_per_entity,
        "rows_written": rows_written,
        "job_seconds": round(job_s, 2),
        "job_rows_per_s": round(rows_written / job_s),
        "in_job_seconds": in_job,  # the job's own duration (its run(), after Spark start-up)
        "floor_seconds": round(floor_s, 2),
        "floor_rows_per_s": round(rows_written / floor_s),
        "ratio_to_floor": round((rows_written / job_s) / (rows_written / floor_s), 3),
        "peak_memory_bytes": peak,
        "log": log_uri,
    }


def warm_up(tmp: Path, redis_server: EmbeddedRedis, launcher: Launcher) -> None:
    """Start the warm driver and run two small ingestions in it (JVM up, code compiled, Python workers started),
    as a driver that has served jobs before would be."""
    now = datetime.now(UTC)
    source, _ = make_source(tmp / "src-warm-up", 50_000, 1, now)
    table = bench_table(source)
    for n in range(2):
        args = IngestionJobArgs(
            project="warm-up",
            table=table,
            redis_url=redis_server.url,
            start=now - timedelta(days=1),
            end=now + timedelta(days=1),
            dead_letter_location=to_file_url(tmp / "dead-warm-up"),
        )
        launched = launcher.submit(f"warm-up-{n}", args)
        state, message = wait_for(launcher, launched.handle)
        if state is not JobStatus.DONE:
            raise SystemExit(f"warm-up ingestion failed: {message} (log {launched.log_uri})")
    redis_server.client().flushall()


def _in_job_seconds(log_uri: str) -> float | None:
    """The duration the job reports in its summary line (from the Spark session's start to its summary)."""
    log = Path(log_uri.removeprefix("file://"))
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(job_report.SUMMARY_PREFIX):
            return float(json.loads(line[len(job_report.SUMMARY_PREFIX) :])["duration_seconds"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100k entities")
    parser.add_argument("--variants", default="1,5", help="rows per entity, comma-separated")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument(
        "--driver",
        choices=["cold", "warm", "both"],
        default="both",
        help="cold: a spark-submit per job (Spark start-up in the time); warm: the local launcher's warm driver",
    )
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args()
    entities = 100_000 if opts.quick else opts.entities
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    tmp = Path(tempfile.mkdtemp(prefix="provender-bench-ingest-"))
    results = []
    conf = {"spark.sql.shuffle.partitions": "8", "spark.driver.memory": "1g"}
    launchers: dict[str, Launcher] = {}
    if opts.driver in ("cold", "both"):
        launchers["cold"] = create_launcher(
            "local", work_dir=tmp / "jobs-cold", master=opts.master, conf=conf
        )
    if opts.driver in ("warm", "both"):
        launchers["warm"] = create_launcher(
            "local", work_dir=tmp / "jobs-warm", master=opts.master, conf=conf, warm=True
        )
    try:
        with EmbeddedRedis(tmp / "redis") as redis_server:
            if "warm" in launchers:
                warm_up(tmp, redis_server, launchers["warm"])
            for variant in (int(v) for v in opts.variants.split(",")):
                for r in run_variant(tmp, redis_server, entities, variant, launchers):
                    results.append(r)
                    name = f"ingest {entities:,} entities x {variant} row(s), {r['driver']} driver"
                    print(
                        f"{name}: job {r['job_seconds']} s = {r['job_rows_per_s']:,} rows/s (target >= {TARGET_ROWS_PER_S:,}: "
                        f"{'OK' if r['job_rows_per_s'] >= TARGET_ROWS_PER_S else 'MISS'}); "
                        f"of which in the job's run() {r['in_job_seconds']} s"
                    )
                    print(
                        f"{name}: floor (one redis-py pipeline) {r['floor_seconds']} s = {r['floor_rows_per_s']:,} rows/s; "
                        f"job/floor = {r['ratio_to_floor']} (target >= {TARGET_FLOOR_RATIO}: "
                        f"{'OK' if r['ratio_to_floor'] >= TARGET_FLOOR_RATIO else 'MISS'})"
                    )
                    print(
                        f"{name}: peak memory of the job's processes {r['peak_memory_bytes'] / 1024**3:.2f} GiB "
                        f"(target <= 2 GiB: {'OK' if r['peak_memory_bytes'] <= TARGET_PEAK_BYTES else 'MISS'})"
                    )
                    ok = r["keys_in_redis"] == r["rows_written"] and r["sample_bytes_identical_to_floor"]
                    print(
                        f"{name}: Redis keys {r['keys_in_redis']:,} of {r['rows_written']:,}, sampled hashes and expiries "
                        f"identical to the PROTOCOL floor: {'OK' if ok else 'MISS'}",
                        flush=True,
                    )
    finally:
        if "warm" in launchers:
            launchers["warm"].stop_warm_driver()  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
