"""The online benchmark's data: table A (10 FLOAT features) and table B (50 FLOAT features) on one INT64 entity,
N entities written to Redis with the one encoding module (provender.kernel.online.layout), as ingestion would.

Values are drawn from a small pool of pre-encoded random floats, so loading 1M entities takes seconds of Python;
the bytes of each hash are exactly what docs/protocol.md prescribes.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from provender.kernel.online.layout import KeyEncoder, encode_value, feature_field, table_row_fields
from provender.kernel.value_types import ValueType

PROJECT = "bench"
ENTITY = "entity_id"
TABLE_A = "table_a"
TABLE_B = "table_b"
FEATURES_A = [f"fa{i}" for i in range(10)]
FEATURES_B = [f"fb{i}" for i in range(50)]
MAX_AGE_SECONDS = 7 * 86400
VALUE_BLOCKS = 16
BATCH = 2000


@dataclass(frozen=True)
class Dataset:
    entities: int

    def key(self, entity_id: int) -> bytes:
        return _ENCODER.encode([encode_value(entity_id, ValueType.INT64)])

    @staticmethod
    def fields(table: str, features: list[str], with_ts: bool = True) -> list[bytes]:
        """The hash fields a lookup of these features reads (as Serving does: features, then `_ts:`)."""
        out = [feature_field(table, f) for f in features]
        return [*out, b"_ts:" + table.encode()] if with_ts else out


_ENCODER = KeyEncoder(PROJECT, [ENTITY])


def _bulk(parts: list[bytes]) -> bytes:
    return b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def load(client, entities: int, seed: int = 7) -> float:
    """HSET every entity's hash (tables A and B, with `_ts:` and `_ex:`); returns the seconds it took."""
    rng = random.Random(seed)
    now = time.time_ns()
    blocks: list[tuple[int, bytes]] = []
    for _ in range(VALUE_BLOCKS):
        fields: dict[bytes, bytes] = {}
        for table, names in ((TABLE_A, FEATURES_A), (TABLE_B, FEATURES_B)):
            row = {n: (rng.random(), ValueType.FLOAT) for n in names}
            fields.update(table_row_fields(table, row, now, MAX_AGE_SECONDS))
        flat = [x for kv in fields.items() for x in kv]
        blocks.append((len(flat), _bulk(flat)))
    start = time.perf_counter()
    conn = client.connection_pool.get_connection()
    try:
        for first in range(0, entities, BATCH):
            chunk = []
            last = min(entities, first + BATCH)
            for i in range(first, last):
                key = _ENCODER.encode([encode_value(i, ValueType.INT64)])
                n, block = blocks[i % VALUE_BLOCKS]
                chunk.append(b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n" % (n + 2, len(key), key) + block)
            conn.send_packed_command([b"".join(chunk)])
            for _ in range(last - first):
                conn.read_response()
    finally:
        client.connection_pool.release(conn)
    return time.perf_counter() - start
