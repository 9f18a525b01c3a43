"""`provender core`: run Core (CoreService + JobService), or `provender core migrate` the registry schema."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from provender.core.app import CoreSettings
from provender.server.logs import configure_logging
from provender.server.settings import build_parser, read

log = logging.getLogger("provender.core")


COMMANDS = {
    "serve": "serve (the default)",
    "migrate": "apply the registry's database migrations and exit",
    "stop-warm-driver": "stop the local launcher's warm Spark driver in --launcher-work-dir",
}


def parser() -> argparse.ArgumentParser:
    """Every flag is a field of CoreSettings (provender.server.settings), plus the command."""
    p = build_parser(CoreSettings, "provender core", "Run Provender Core: the registry and the jobs.")
    p.add_argument("command", nargs="?", choices=list(COMMANDS), default="serve",
                   help="; ".join(f"{k}: {v}" for k, v in COMMANDS.items()))  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = read(CoreSettings, args)
    configure_logging(settings.log_level)
    if args.command == "stop-warm-driver":
        if not settings.launcher_work_dir:
            print("provender core stop-warm-driver: --launcher-work-dir is required", file=sys.stderr)
            return 2
        from provender.core.launchers.local import LocalLauncher
        from provender.core.launchers.settings import LocalSettings

        LocalLauncher(LocalSettings(work_dir=Path(settings.launcher_work_dir))).stop_warm_driver()
        return 0
    if not settings.postgres_url:
        print("provender core: --postgres-url (or PROVENDER_POSTGRES_URL) is required", file=sys.stderr)
        return 2

    from provender.core.registry.database import make_engine, migrate
    from provender.kernel.errors import ProvenderError

    try:
        if args.command == "migrate":
            engine = make_engine(settings.postgres_url)
            print(f"registry schema at revision {migrate(engine)}")
            engine.dispose()
            return 0

        from provender.core.app import start_core
        from provender.server.metrics import serve_metrics
        from provender.server.runner import run_until_signal

        serve_metrics(
            settings.metrics_port, settings.host, tls=settings.server_tls() if settings.metrics_tls else None
        )
        running = start_core(settings)
    except ProvenderError as e:
        print(f"provender core: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"provender core: {e}", file=sys.stderr)
        return 1
    run_until_signal(running)
    return 0


if __name__ == "__main__":
    sys.exit(main())
