"""The platform on one machine: embedded Postgres, a private Redis, Core and Serving as local processes."""

from provender.kernel.extras import require

require("provender.local", "local")
