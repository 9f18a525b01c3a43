"""Provender jobs: the Spark applications (offline-to-online ingestion, historical retrieval, the local warm driver)."""

from provender.kernel.extras import require

require("provender.jobs", "spark")
