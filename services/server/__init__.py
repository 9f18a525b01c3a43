"""gRPC transport shared by Core and Serving: error mapping, metrics, health, reflection, shutdown."""

from provender.kernel.extras import require

require("provender.server", "server")
