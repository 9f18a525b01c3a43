"""Provender Core: the registry (CoreService) and the JobService."""

from provender.kernel.extras import require

require("provender.core", "server")
