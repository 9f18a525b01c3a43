"""`provender serving`: run the online Serving service (feast.serving.ServingService and our columnar API)."""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from provender.server.logs import configure_logging
from provender.server.settings import env

log = logging.getLogger("provender.serving")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="provender serving", description="Run Provender Serving: online feature lookups from Redis."
    )
    p.add_argument("--port", type=int, default=env("SERVING_PORT", 6566, int),
                   help="gRPC port (PROVENDER_SERVING_PORT; default 6566)")  # fmt: skip
    p.add_argument("--host", default=env("SERVING_HOST", "0.0.0.0"),
                   help="address to listen on (PROVENDER_SERVING_HOST)")  # fmt: skip
    p.add_argument("--core-url", default=env("CORE_URL", "localhost:6565"),
                   help="Core's gRPC address, host:port (PROVENDER_CORE_URL; default localhost:6565)")  # fmt: skip
    p.add_argument("--redis-url", default=env("REDIS_URL", "redis://localhost:6379"),
                   help="the online store: redis://[user:password@]host:port[/db], rediss://... for TLS, or a "
                        "Redis Cluster seed list host:port,host:port (PROVENDER_REDIS_URL)")  # fmt: skip
    p.add_argument("--metrics-port", type=int, default=env("METRICS_PORT", 0, int),
                   help="serve Prometheus /metrics on this HTTP port; 0 turns it off (PROVENDER_METRICS_PORT)")  # fmt: skip
    p.add_argument("--spec-refresh-seconds", type=float, default=env("SPEC_REFRESH_SECONDS", 10.0, float),
                   help="how often feature table specs are reloaded from Core (PROVENDER_SPEC_REFRESH_SECONDS)")  # fmt: skip
    p.add_argument("--redis-timeout-ms", type=float, default=env("REDIS_TIMEOUT_MS", 500.0, float),
                   help="longest wait for a Redis reply (PROVENDER_REDIS_TIMEOUT_MS)")  # fmt: skip
    p.add_argument("--workers", type=int, default=env("SERVING_WORKERS", 16, int),
                   help="gRPC worker threads (PROVENDER_SERVING_WORKERS)")  # fmt: skip
    p.add_argument("--log-level", default=env("LOG_LEVEL", "INFO"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)

    from provender.kernel.errors import ProvenderError
    from provender.server.metrics import serve_metrics
    from provender.server.runner import run_until_signal
    from provender.serving.app import ServingSettings, start_serving

    settings = ServingSettings(
        redis_url=args.redis_url,
        core_url=args.core_url,
        port=args.port,
        host=args.host,
        spec_refresh_seconds=args.spec_refresh_seconds,
        redis_timeout=args.redis_timeout_ms / 1000.0,
        max_workers=args.workers,
    )
    try:
        serve_metrics(args.metrics_port)
        app = start_serving(settings)
    except (ProvenderError, OSError) as e:
        print(f"provender serving: {e}", file=sys.stderr)
        return 1
    # Everything allocated so far (modules, protobuf descriptors, grpc: ~90k objects) lives as long as the
    # process: out of the collector's sight, a full collection (rare: requests' objects die by reference count)
    # cannot pause a request for tens of milliseconds walking them.
    gc.freeze()
    run_until_signal(app.running)
    return 0


if __name__ == "__main__":
    sys.exit(main())
