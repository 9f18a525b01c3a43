"""The platform on one machine: embedded Postgres, a private Redis, Core and Serving as local processes."""
