"""Historical retrieval benchmark (docs/benchmarks.md, "Historical retrieval"), on this machine.

Data: a source of S rows (default 14M) of K entity keys x 10 FLOAT features over 90 days, and an entity set of N rows
(default 1M) with random timestamps (some keys absent from the source), max_age 30 days. In the same run:
- oracle and floor: DuckDB `ASOF LEFT JOIN` on the same files, written to parquet, in a process of its own
  (best of two runs);
- the job: submitted to the local launcher with its warm driver (a long-lived Spark driver that has run two
  retrievals of 1M source rows before the clock starts), timed from submit to a parquet output readable by pandas;
- output identical to the oracle (same rows, same values, NaN where the oracle has NULL);
- the same at 10 % of the data, and with 3 x the entity rows (growth); peak memory of the driver's processes.
Prints one summary line per figure with its target and ratio; exits 0 whatever the figures (it measures).

Usage: python bench/retrieval/run.py [--source-rows S] [--entity-rows N] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from provender.core.launchers.base import JobStatus
from provender.core.launchers.local import LocalLauncher
from provender.core.launchers.settings import LocalSettings
from provender.core.launchers.spark_submit import ProcessHandle
from provender.kernel.jobs.args import (
    Column,
    FeatureSelection,
    JobSource,
    JobTable,
    RetrievalJobArgs,
    to_file_url,
)
from provender.kernel.value_types import ValueType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import PeakMemory, wait_for

FEATURES = [f"f{i}" for i in range(10)]
TABLE = "bench_features"
MAX_AGE = 30 * 86_400
T0_US = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
SPAN_US = 90 * 86_400 * 1_000_000
TARGET_VS_DUCKDB = 2.5
TARGET_SMALL_VS_FULL = 0.5
TARGET_GROWTH = 3.3
TARGET_PEAK_BYTES = 4 * 1024**3

DUCKDB_SCRIPT = r"""
import sys, time, duckdb
source, entities, out, max_age = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
feats = ", ".join(f'CASE WHEN e.event_timestamp - f.event_timestamp <= INTERVAL {max_age} SECOND THEN f."{c}" END AS "bench_features__{c}"'
                  for c in [f"f{i}" for i in range(10)])
began = time.perf_counter()
con.execute(f'''COPY (
    SELECT e.request_id, e.entity_id, e.event_timestamp, {feats}
    FROM read_parquet('{entities}') e ASOF LEFT JOIN read_parquet('{source}/*.parquet') f
      ON e.entity_id = f.entity_id AND e.event_timestamp >= f.event_timestamp
) TO '{out}' (FORMAT parquet)''')
print(time.perf_counter() - began)
"""


def make_source(folder: Path, rows: int, keys: int, seed: int = 1) -> None:
    """`rows` feature rows over `keys` keys; event times distinct within a key (no ties: the oracle is exact)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    chunk = 2_000_000
    for n, start in enumerate(range(0, rows, chunk)):
        size = min(chunk, rows - start)
        ids = rng.integers(0, keys, size)
        # distinct per (key, time): the row index breaks any tie in the microseconds
        ev = T0_US + (rng.integers(0, SPAN_US // 1000, size) * 1000) + (np.arange(start, start + size) % 1000)
        table = pa.table(
            {
                "entity_id": ids.astype(np.int64),
                "event_timestamp": pa.array(ev, pa.timestamp("us", tz="UTC")),
                **{f: rng.random(size, dtype=np.float32) for f in FEATURES},
            }
        )
        pq.write_table(table, folder / f"part-{n:04d}.parquet")


def make_entities(path: Path, rows: int, keys: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "request_id": np.arange(rows, dtype=np.int64),
            "entity_id": rng.integers(0, int(keys * 1.05), rows).astype(np.int64),  # 5 % of keys absent
            "event_timestamp": pa.array(
                T0_US + rng.integers(0, SPAN_US + 10 * 86_400 * 10**6, rows), pa.timestamp("us", tz="UTC")
            ),
        }
    )
    pq.write_table(table, path)


def run_duckdb(source: Path, entities: Path, out: Path) -> tuple[float, float]:
    """(query seconds as DuckDB reports them, process wall seconds)."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", DUCKDB_SCRIPT, str(source), str(entities), str(out), str(MAX_AGE)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1]), time.perf_counter() - began


def run_spark(launcher: LocalLauncher, source: Path, entities: Path, out: Path) -> tuple[float, int]:
    table = JobTable(
        TABLE,
        (Column("entity_id", ValueType.INT64),),
        tuple(Column(f, ValueType.FLOAT) for f in FEATURES),
        JobSource(to_file_url(source), "event_timestamp"),
        MAX_AGE,
    )
    args = RetrievalJobArgs(
        project="bench",
        entity_source=JobSource(to_file_url(entities), "event_timestamp"),
        tables=(FeatureSelection(table, tuple(FEATURES)),),
        output_location=to_file_url(out),
    )
    began = time.perf_counter()
    launched = launcher.submit(f"retrieval-{out.name}-{time.time_ns()}", args)
    memory = PeakMemory(ProcessHandle.decode(launched.handle, launcher.name).pid)
    state, message = wait_for(launcher, launched.handle)
    if state is not JobStatus.DONE:
        raise SystemExit(f"the retrieval job failed: {message} (log: {launched.log_uri})")
    pq.ParquetDataset(out).schema  # readable  # noqa: B018
    elapsed = time.perf_counter() - began
    return elapsed, memory.stop()


def identical(spark_out: Path, duck_out: Path) -> tuple[bool, str]:
    cols = ["request_id", *[f"{TABLE}__{f}" for f in FEATURES]]
    got = pd.read_parquet(spark_out, columns=cols).sort_values("request_id").reset_index(drop=True)
    want = pd.read_parquet(duck_out, columns=cols).sort_values("request_id").reset_index(drop=True)
    if len(got) != len(want) or not (got["request_id"].to_numpy() == want["request_id"].to_numpy()).all():
        return False, f"rows differ: {len(got)} vs {len(want)}"
    for c in cols[1:]:
        a = got[c].to_numpy(dtype="float64", na_value=np.nan)
        b = want[c].to_numpy(dtype="float64", na_value=np.nan)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if not same.all():
            return False, f"{c}: {int((~same).sum())} values differ"
    nulls = int(np.isnan(got[cols[1]].to_numpy(dtype="float64", na_value=np.nan)).sum())
    return True, f"{len(got):,} rows, {nulls:,} without a feature row"


def measure(
    launcher: LocalLauncher,
    tmp: Path,
    name: str,
    source_rows: int,
    entity_rows: int,
    keys: int,
    source: Path | None = None,
) -> dict:
    if source is None:
        source = tmp / f"source-{source_rows}"
        print(f"# {name}: writing {source_rows:,} source rows", flush=True)
        make_source(source, source_rows, keys)
    entities = tmp / f"entities-{name}.parquet"
    make_entities(entities, entity_rows, keys, seed=entity_rows)
    # the floor is the best of two DuckDB runs (the machine is noisy; a floor should not be inflated by it)
    duck_runs = [run_duckdb(source, entities, tmp / f"duck-{name}.parquet") for _ in range(2)]
    duck_query_s, duck_wall_s = min(duck_runs)
    spark_s, peak = run_spark(launcher, source, entities, tmp / f"spark-{name}")
    same, detail = identical(tmp / f"spark-{name}", tmp / f"duck-{name}.parquet")
    return {
        "name": name,
        "source_rows": source_rows,
        "entity_rows": entity_rows,
        "spark_seconds": round(spark_s, 2),
        "duckdb_seconds": round(duck_query_s, 2),
        "duckdb_process_seconds": round(duck_wall_s, 2),
        "ratio_to_duckdb": round(spark_s / duck_query_s, 2),
        "peak_memory_bytes": peak,
        "identical_to_oracle": same,
        "detail": detail,
        "source": str(source),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-rows", type=int, default=14_000_000)
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="1.4M source rows, 100k entity rows")
    parser.add_argument("--no-growth", action="store_true", help="skip the 3 x entity rows run")
    parser.add_argument("--driver-memory", default="3g")
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args()
    source_rows, entity_rows = (1_400_000, 100_000) if opts.quick else (opts.source_rows, opts.entity_rows)
    keys = max(1, source_rows // 14)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    tmp = Path(tempfile.mkdtemp(prefix="provender-bench-retrieval-"))
    launcher = LocalLauncher(
        LocalSettings(work_dir=tmp / "jobs", warm=True, conf={"spark.driver.memory": opts.driver_memory})
    )
    results = []
    try:
        # Warm: a long-lived driver has run retrievals before (JVM up, code generated, Python workers started).
        make_source(tmp / "warm-source", 1_000_000, 70_000)
        make_entities(tmp / "warm-entities.parquet", 100_000, 70_000, seed=3)
        for n in range(2):
            run_spark(launcher, tmp / "warm-source", tmp / "warm-entities.parquet", tmp / f"warm-out-{n}")
        full = measure(launcher, tmp, "full", source_rows, entity_rows, keys)
        results.append(full)
        small = measure(launcher, tmp, "10pct", source_rows // 10, entity_rows // 10, max(1, keys // 10))
        results.append(small)
        grown = None
        if not opts.no_growth:
            grown = measure(
                launcher, tmp, "3x-entities", source_rows, entity_rows * 3, keys, source=Path(full["source"])
            )
            results.append(grown)
    finally:
        launcher.stop_warm_driver()
        shutil.rmtree(tmp, ignore_errors=True)

    def ok(flag: bool) -> str:
        return "OK" if flag else "MISS"

    for r in results:
        name = f"retrieval {r['entity_rows']:,} entity rows x {r['source_rows']:,} source rows"
        print(
            f"{name}: output identical to the DuckDB oracle: {ok(r['identical_to_oracle'])} ({r['detail']})"
        )
        print(
            f"{name}: Spark (warm) {r['spark_seconds']} s, DuckDB ASOF {r['duckdb_seconds']} s, ratio "
            f"{r['ratio_to_duckdb']} (target <= {TARGET_VS_DUCKDB}: {ok(r['ratio_to_duckdb'] <= TARGET_VS_DUCKDB)})"
        )
        print(
            f"{name}: peak memory (the Spark driver's processes) {r['peak_memory_bytes'] / 1024**3:.2f} GiB "
            f"(target <= 4 GiB: {ok(r['peak_memory_bytes'] <= TARGET_PEAK_BYTES)})"
        )
    small_ratio = results[1]["spark_seconds"] / results[0]["duckdb_seconds"]
    print(
        f"retrieval at 10 % of the data: Spark {results[1]['spark_seconds']} s = {small_ratio:.2f} x the full-size DuckDB "
        f"time (target <= {TARGET_SMALL_VS_FULL}: {ok(small_ratio <= TARGET_SMALL_VS_FULL)})"
    )
    if grown is not None:
        growth = grown["spark_seconds"] / full["spark_seconds"]
        print(
            f"retrieval growth: 3 x the entity rows costs {growth:.2f} x the time (target <= {TARGET_GROWTH}: {ok(growth <= TARGET_GROWTH)})"
        )
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
