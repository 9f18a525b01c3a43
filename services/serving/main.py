"""`provender serving`: run the online Serving service (feast.serving.ServingService and our columnar API)."""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from provender.server.logs import configure_logging
from provender.server.settings import build_parser, read

log = logging.getLogger("provender.serving")


def parser() -> argparse.ArgumentParser:
    """Every flag is a field of ServingSettings (provender.server.settings)."""
    from provender.serving.app import ServingSettings

    return build_parser(
        ServingSettings, "provender serving", "Run Provender Serving: online feature lookups from Redis."
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from provender.kernel.errors import ProvenderError
    from provender.server.metrics import serve_metrics
    from provender.server.runner import run_until_signal
    from provender.serving.app import ServingSettings, start_serving

    settings = read(ServingSettings, args)
    configure_logging(settings.log_level)
    try:
        serve_metrics(
            settings.metrics_port, settings.host, tls=settings.server_tls() if settings.metrics_tls else None
        )
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
