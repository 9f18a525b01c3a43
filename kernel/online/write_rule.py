"""The ingestion write rule: the Lua script (write_rows.lua beside this file) that writes rows to the online store
atomically per key, never over a newer row, and how its calls are cut. The argument layout is at the top of the
script; provender.jobs.redis_sink builds the calls."""

from __future__ import annotations

from importlib import resources

WRITE_ROWS_LUA: str = resources.files(__package__).joinpath("write_rows.lua").read_text(encoding="utf-8")

KEYS_PER_CALL = 64  # keys per script call: amortises the call; well under 1 ms of Redis time per call
