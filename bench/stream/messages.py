"""The stream benchmark's messages: one Avro record schema (schemaless binary, as Feast 0.9's producers write it)
for the freshness and the throughput runs, and the feature table it feeds.

Each message carries its entity, its sequence number in its run (`seq`), the wall-clock time it was produced in
microseconds, twice: as the event timestamp (so that a later message of a key always wins the write rule) and as a
feature (`produced_us`, so that Serving returns it), and 10 FLOAT features (the ingestion benchmark's width).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable

PROJECT = "bench_stream"
TABLE = "stream_bench"
ENTITY = "entity_id"
FLOATS = [f"f{i}" for i in range(10)]
MAX_AGE_SECONDS = 86_400
SCHEMA = {
    "type": "record",
    "name": "BenchEvent",
    "fields": [
        {"name": ENTITY, "type": "long"},
        {"name": "event_timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "seq", "type": "long"},
        {"name": "produced_us", "type": "long"},
        *({"name": f, "type": "float"} for f in FLOATS),
    ],
}
SCHEMA_JSON = json.dumps(SCHEMA)


def avro_encoder() -> Callable[[int, int, int, list[float]], bytes]:
    """encode(entity, seq, produced_us, floats) -> the message's schemaless Avro bytes (fastavro)."""
    import fastavro

    parsed = fastavro.parse_schema(SCHEMA)
    writer = fastavro.schemaless_writer

    def encode(entity: int, seq: int, produced_us: int, floats: list[float]) -> bytes:
        record = {ENTITY: entity, "event_timestamp": produced_us, "seq": seq, "produced_us": produced_us}
        record.update(zip(FLOATS, floats, strict=True))
        out = io.BytesIO()
        writer(out, parsed, record)
        return out.getvalue()

    return encode


def message_key(entity: int) -> bytes:
    """The Kafka key: the entity, so that every version of one entity goes to one partition, in order."""
    return struct.pack(">q", entity)


def floats_of(seq: int) -> list[float]:
    """Cheap, deterministic feature values for message `seq` of a rate run."""
    return [((seq * 31 + j) % 1000) / 1000.0 for j in range(len(FLOATS))]
