"""Provender Serving: low-latency online feature lookups from Redis."""
