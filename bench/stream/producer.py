"""The stream benchmark's producer, in a process of its own (so that its Python does not share a GIL with the
poller): confluent-kafka, Avro by fastavro's schemaless writer, the entity as the message key.

Usage: python bench/stream/producer.py '<json config>'   (prints one JSON object of results on stdout)

- mode "rate": message i (0 <= i < rate * seconds) is due at start_at + i / rate (wall clock); it is encoded and
  produced when due, carrying the wall-clock time of that moment (event timestamp and `produced_us`); its entity is
  key_base + i % keys and its seq seq_base + i. Every `sample_every`-th message gets a delivery callback, which
  records the time from produce() to the broker's acknowledgement.
- mode "preload": the rows of the parquet files in `source` (the throughput run's data, which the batch floor
  ingests too), produced as fast as the client goes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from messages import FLOATS, avro_encoder, floats_of, message_key


def _produce(producer: Producer, topic: str, value: bytes, key: bytes, **kw) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, **kw)
            return
        except BufferError:  # the local queue is full: let librdkafka send some
            producer.poll(0.05)


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_rate(cfg: dict) -> dict:
    producer = Producer(
        {
            "bootstrap.servers": cfg["bootstrap"],
            "enable.idempotence": True,
            "linger.ms": cfg.get("linger_ms", 5),
        }
    )
    encode = avro_encoder()
    topic, rate, keys = cfg["topic"], float(cfg["rate"]), int(cfg["keys"])
    key_base, seq_base, sample_every = int(cfg["key_base"]), int(cfg["seq_base"]), int(cfg["sample_every"])
    total = int(rate * cfg["seconds"])
    start_at = float(cfg["start_at"])
    acks: list[float] = []
    errors: list[str] = []

    def on_delivery(err, _msg, sent_at: float) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            acks.append(time.time() - sent_at)

    time.sleep(max(0.0, start_at - time.time()))
    behind_max = 0.0
    i = 0
    while i < total:
        now = time.time()
        due = min(total, int((now - start_at) * rate) + 1)
        behind_max = max(behind_max, (now - start_at) - i / rate)
        while i < due:
            produced = time.time()
            seq = seq_base + i
            entity = key_base + i % keys
            value = encode(entity, seq, int(produced * 1_000_000), floats_of(seq))
            if i % sample_every == 0:
                _produce(
                    producer,
                    topic,
                    value,
                    message_key(entity),
                    on_delivery=lambda err, msg, t=produced: on_delivery(err, msg, t),
                )
            else:
                _produce(producer, topic, value, message_key(entity))
            i += 1
        producer.poll(0)
        wait = start_at + i / rate - time.time()
        if wait > 0:
            time.sleep(wait)
    ended = time.time()
    left = producer.flush(60)
    return {
        "sent": i,
        "undelivered": left,
        "errors": errors[:5],
        "error_count": len(errors),
        "seconds": round(ended - start_at, 3),
        "achieved_rate": round(i / max(1e-9, ended - start_at), 1),
        "max_behind_schedule_s": round(behind_max, 4),
        "ack_p50_ms": _ms(percentile(acks, 0.5)),
        "ack_p99_ms": _ms(percentile(acks, 0.99)),
        "ack_samples": len(acks),
        "ended_at": ended,
    }


def run_preload(cfg: dict) -> dict:
    import pyarrow.parquet as pq

    producer = Producer(
        {
            "bootstrap.servers": cfg["bootstrap"],
            "enable.idempotence": True,
            "linger.ms": 50,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
        }
    )
    encode = avro_encoder()
    topic = cfg["topic"]
    errors = 0

    def on_error(err, _msg) -> None:
        nonlocal errors
        if err is not None:
            errors += 1

    began = time.perf_counter()
    sent = 0
    for path in sorted(Path(cfg["source"]).glob("*.parquet")):
        table = pq.read_table(path)
        entity = table.column("entity_id").to_pylist()
        seq = table.column("seq").to_pylist()
        produced = table.column("produced_us").to_pylist()
        floats = list(zip(*(table.column(f).to_pylist() for f in FLOATS), strict=True))
        for n in range(table.num_rows):
            value = encode(entity[n], seq[n], produced[n], list(floats[n]))
            _produce(producer, topic, value, message_key(entity[n]), on_delivery=on_error)
            sent += 1
            if sent % 10_000 == 0:
                producer.poll(0)
    left = producer.flush(120)
    took = time.perf_counter() - began
    return {
        "sent": sent,
        "undelivered": left,
        "error_count": errors,
        "seconds": round(took, 2),
        "rate": round(sent / took),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def main() -> int:
    cfg = json.loads(sys.argv[1])
    try:
        result = run_rate(cfg) if cfg["mode"] == "rate" else run_preload(cfg)
    except KafkaException as e:
        print(f"producer failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
