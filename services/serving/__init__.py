"""Provender Serving: low-latency online feature lookups from Redis."""

from provender.kernel.extras import require

require("provender.serving", "server")
