"""The online benchmark's client, in a process of its own: closed-loop latency and open throughput against
Serving, and the same lookups against the two floors (Redis straight, and a bare gRPC server).

Usage: python bench/online/client.py '<json config>'   (prints one JSON object of results on stdout)

Requests are built and serialized before the timed loops, and responses are not parsed inside them (a few
are parsed and checked before); so every figure is transport + server time, as both floors are.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

import grpc
import redis
from dataset import ENTITY, FEATURES_A, FEATURES_B, PROJECT, TABLE_A, TABLE_B, Dataset

from provender.kernel.value_types import ValueType, to_value
from provender.proto.feast.serving import ServingService_pb2 as serving_pb2

ONLINE_METHOD = "/feast.serving.ServingService/GetOnlineFeaturesV2"
BARE_METHOD = "/bench.Bare/Empty"
DISTINCT_REQUESTS = 200
WARMUP = 50
TABLES = {"a": (TABLE_A, FEATURES_A), "b": (TABLE_B, FEATURES_B)}


def _identity(data: bytes) -> bytes:
    return data


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc; 0 where unreadable)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50_ms": percentile(samples, 0.50) * 1e3,
        "p99_ms": percentile(samples, 0.99) * 1e3,
        "mean_ms": sum(samples) / len(samples) * 1e3,
    }


def online_requests(rng: random.Random, entities: int, rows: int, table: str) -> list[bytes]:
    name, features = TABLES[table]
    out = []
    for _ in range(DISTINCT_REQUESTS):
        req = serving_pb2.GetOnlineFeaturesRequestV2(project=PROJECT)
        for f in features:
            req.features.add(feature_table=name, name=f)
        for _ in range(rows):
            req.entity_rows.add().fields[ENTITY].CopyFrom(to_value(rng.randrange(entities), ValueType.INT64))
        out.append(req.SerializeToString())
    return out


def check_online(call, request: bytes, rows: int, n_features: int, metadata: tuple = ()) -> None:
    response = serving_pb2.GetOnlineFeaturesResponse.FromString(call(request, timeout=10, metadata=metadata))
    assert len(response.field_values) == rows, "wrong number of rows"
    for fv in response.field_values:
        statuses = [s for k, s in fv.statuses.items() if k != ENTITY]
        assert len(statuses) == n_features and all(
            s == serving_pb2.GetOnlineFeaturesResponse.PRESENT for s in statuses
        ), "the benchmark data is not all PRESENT"


def timed(call, payloads: list, samples: int, max_seconds: float) -> list[float]:
    for i in range(WARMUP):
        call(payloads[i % len(payloads)])
    out: list[float] = []
    deadline = time.perf_counter() + max_seconds
    for i in range(samples):
        payload = payloads[i % len(payloads)]
        start = time.perf_counter()
        call(payload)
        end = time.perf_counter()
        out.append(end - start)
        if end > deadline:
            break
    return out


def serving_channel(target: str, config: dict, aio: bool = False) -> grpc.Channel:
    """A channel to Serving: TLS trusting config["tls_ca"] when the run serves TLS."""
    ca = config.get("tls_ca")
    if not ca:
        return grpc.aio.insecure_channel(target) if aio else grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(Path(ca).read_bytes())
    return grpc.aio.secure_channel(target, credentials) if aio else grpc.secure_channel(target, credentials)


def auth_metadata(config: dict | None) -> tuple[tuple[str, str], ...]:
    """The bearer token of a run whose Serving checks tokens (config["token"]), as call metadata."""
    token = (config or {}).get("token")
    return (("authorization", f"Bearer {token}"),) if token else ()


def latency(config: dict) -> dict:
    rng = random.Random(11)
    entities = config["entities"]
    channel = serving_channel(config["serving"][0], config)
    metadata = auth_metadata(config)
    online = channel.unary_unary(ONLINE_METHOD, request_serializer=_identity, response_deserializer=_identity)
    bare_channel = grpc.insecure_channel(config["bare"])
    bare = bare_channel.unary_unary(
        BARE_METHOD, request_serializer=_identity, response_deserializer=_identity
    )
    client = redis.Redis(host="127.0.0.1", port=config["redis_port"])
    dataset = Dataset(entities)
    results: dict = {"serving": {}, "redis": {}}
    results["grpc"] = summary(timed(lambda p: bare(p, timeout=10), [b""], config["grpc_samples"], 30))
    for case in config["latency"]:
        rows, table, samples = case["rows"], case["table"], case["samples"]
        name, features = TABLES[table]
        label = f"{rows}x{len(features)}"
        requests = online_requests(rng, entities, rows, table)
        check_online(online, requests[0], rows, len(features), metadata)
        results["serving"][label] = summary(
            timed(lambda p: online(p, timeout=10, metadata=metadata), requests, samples, 60)
        )
        fields = Dataset.fields(name, features)
        key_sets = [
            [dataset.key(rng.randrange(entities)) for _ in range(rows)] for _ in range(DISTINCT_REQUESTS)
        ]
        first = client.pipeline(transaction=False)
        for key in key_sets[0]:
            first.hmget(key, fields)
        assert all(v is not None for reply in first.execute() for v in reply), (
            "Redis floor reads missing data"
        )

        def redis_lookup(keys: list[bytes], fields: list[bytes] = fields) -> None:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, fields)
            pipe.execute()

        results["redis"][label] = summary(timed(redis_lookup, key_sets, samples, 60))
    channel.close()
    bare_channel.close()
    client.close()
    return results


async def _throughput_once(
    targets: list[str],
    method: str,
    payloads: list[bytes],
    concurrency: int,
    seconds: float,
    pids: dict[str, list[int]],
    config: dict | None = None,
) -> dict:
    """`config`: the run's, for TLS to Serving (None: plaintext, the bare floor)."""
    channels = [
        serving_channel(t, config, aio=True) if config else grpc.aio.insecure_channel(t) for t in targets
    ]
    calls = [
        c.unary_unary(method, request_serializer=_identity, response_deserializer=_identity) for c in channels
    ]
    metadata = auth_metadata(config)
    latencies: list[float] = []
    stop_at = 0.0

    async def worker(index: int) -> None:
        call = calls[index % len(calls)]
        i = index
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            await call(payloads[i % len(payloads)], timeout=10, metadata=metadata)
            latencies.append(time.perf_counter() - start)
            i += concurrency

    for i in range(WARMUP):  # warm every channel
        await calls[i % len(calls)](payloads[i % len(payloads)], timeout=10, metadata=metadata)
    cpu_before = {name: cpu_seconds(p) for name, p in pids.items()}
    begin = time.perf_counter()
    stop_at = begin + seconds
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - begin
    # CPU time per call of the server processes and of Redis (ticks of 10 ms: thousands of calls per level)
    cpu_us = {
        name: (cpu_seconds(p) - cpu_before[name]) / max(1, len(latencies)) * 1e6 for name, p in pids.items()
    }
    for c in channels:
        await c.close()
    return {
        "concurrency": concurrency,
        "calls_per_s": len(latencies) / elapsed,
        "cpu_us_per_call": cpu_us,
        **summary(latencies),
    }


def throughput(config: dict) -> dict:
    rng = random.Random(13)
    spec = config["throughput"]
    online_payloads = online_requests(rng, config["entities"], 1, "a")
    pids = config.get("pids", {})
    me = [os.getpid()]
    serving_pids = {"server": pids.get("serving", []), "redis": pids.get("redis", []), "client": me}
    bare_pids = {"server": pids.get("bare", []), "client": me}
    out: dict = {"serving": [], "bare": []}
    for concurrency in spec["concurrency"]:
        out["serving"].append(
            asyncio.run(
                _throughput_once(
                    config["serving"],
                    ONLINE_METHOD,
                    online_payloads,
                    concurrency,
                    spec["seconds"],
                    serving_pids,
                    config,
                )
            )
        )
        if config.get("bare"):
            out["bare"].append(
                asyncio.run(
                    _throughput_once(
                        [config["bare"]], BARE_METHOD, [b""], concurrency, spec["seconds"], bare_pids
                    )
                )
            )
    return out


def main() -> int:
    config = json.loads(sys.argv[1])
    results: dict = {}
    if config.get("latency"):
        results["latency"] = latency(config)
    if config.get("throughput"):
        results["throughput"] = throughput(config)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
