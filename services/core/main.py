"""`provender core`: run Core (CoreService + JobService), or `provender core migrate` the registry schema."""

from __future__ import annotations

import argparse
import logging
import sys

from provender.core.app import CoreSettings
from provender.server.logs import configure_logging
from provender.server.settings import env

log = logging.getLogger("provender.core")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. spark.executor.memory=4g")
    return key.strip(), value


def _flag(text: str) -> bool:
    """A boolean environment setting: 1/true/yes/on or 0/false/no/off."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


_flag.__name__ = "1/true/yes/on or 0/false/no/off"


def _env_conf() -> list[tuple[str, str]]:
    raw = env("SPARK_CONF", "")
    return [_key_value(item) for item in raw.split(",") if item.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="provender core", description="Run Provender Core: the registry and the jobs."
    )
    p.add_argument("command", nargs="?", choices=["serve", "migrate", "stop-warm-driver"], default="serve",
                   help="serve (default); migrate: apply the registry's database migrations and exit; "
                        "stop-warm-driver: stop the local launcher's warm Spark driver in --launcher-work-dir")  # fmt: skip
    p.add_argument(
        "--port", type=int, default=env("CORE_PORT", 6565, int), help="gRPC port (PROVENDER_CORE_PORT)"
    )
    p.add_argument("--host", default=env("CORE_HOST", "0.0.0.0"), help="address to listen on")
    p.add_argument("--postgres-url", default=env("POSTGRES_URL", ""),
                   help="registry database, postgresql://user:password@host:5432/db (PROVENDER_POSTGRES_URL)")  # fmt: skip
    p.add_argument("--metrics-port", type=int, default=env("METRICS_PORT", 0, int),
                   help="serve Prometheus /metrics on this HTTP port; 0 turns it off (PROVENDER_METRICS_PORT)")  # fmt: skip
    p.add_argument("--no-migrate", action="store_true", help="do not apply migrations on start")
    jobs = p.add_argument_group("jobs")
    jobs.add_argument("--job-port", type=int, default=env("JOB_PORT", 0, int),
                      help="also serve the JobService alone on this port, e.g. 6568 (PROVENDER_JOB_PORT)")  # fmt: skip
    jobs.add_argument("--spark-launcher", default=env("SPARK_LAUNCHER", "local"),
                      help="local | standalone | k8s (PROVENDER_SPARK_LAUNCHER)")  # fmt: skip
    jobs.add_argument("--spark-master", default=env("SPARK_MASTER", ""),
                      help="local[N] for local, spark://host:7077 for standalone (PROVENDER_SPARK_MASTER)")  # fmt: skip
    jobs.add_argument("--spark-warm-driver", action="store_true", default=env("SPARK_WARM_DRIVER", False, _flag),
                      help="local: run jobs in one long-lived Spark driver, started on the first job and stopped when idle, instead of a spark-submit each (PROVENDER_SPARK_WARM_DRIVER=1)")  # fmt: skip
    jobs.add_argument("--staging-location", default=env("STAGING_LOCATION", ""),
                      help="file:// or s3:// folder for retrieval outputs and dead letters (PROVENDER_STAGING_LOCATION)")  # fmt: skip
    jobs.add_argument("--redis-url", default=env("REDIS_URL", ""),
                      help="the online store ingestion writes: redis://, rediss:// or a cluster seed list (PROVENDER_REDIS_URL)")  # fmt: skip
    jobs.add_argument("--pushgateway-url", default=env("PUSHGATEWAY_URL", ""),
                      help="Prometheus Pushgateway the batch jobs push their metrics to (PROVENDER_PUSHGATEWAY_URL)")  # fmt: skip
    jobs.add_argument("--launcher-work-dir", default=env("LAUNCHER_WORK_DIR", ""),
                      help="where launchers keep job logs (PROVENDER_LAUNCHER_WORK_DIR)")  # fmt: skip
    jobs.add_argument("--spark-driver-host", default=env("SPARK_DRIVER_HOST", ""),
                      help="standalone: the address Spark workers reach the driver at (PROVENDER_SPARK_DRIVER_HOST)")  # fmt: skip
    jobs.add_argument("--spark-conf", action="append", type=_key_value, default=_env_conf(),
                      help="KEY=VALUE Spark property for every job, repeatable (PROVENDER_SPARK_CONF: comma-separated)")  # fmt: skip
    jobs.add_argument("--spark-packages", default=env("SPARK_PACKAGES", ""),
                      help="comma-separated Maven coordinates, e.g. org.apache.hadoop:hadoop-aws:3.4.1 for s3:// (PROVENDER_SPARK_PACKAGES)")  # fmt: skip
    jobs.add_argument("--k8s-namespace", default=env("K8S_NAMESPACE", ""),
                      help="k8s launcher: namespace of the SparkApplications (PROVENDER_K8S_NAMESPACE)")  # fmt: skip
    jobs.add_argument("--k8s-job-template", default=env("K8S_JOB_TEMPLATE", ""),
                      help="k8s launcher: SparkApplication template file (PROVENDER_K8S_JOB_TEMPLATE)")  # fmt: skip
    jobs.add_argument("--reconcile-seconds", type=float, default=env("RECONCILE_SECONDS", 5.0, float),
                      help="how often job records are reconciled with the launcher (PROVENDER_RECONCILE_SECONDS)")  # fmt: skip
    p.add_argument("--log-level", default=env("LOG_LEVEL", "INFO"))
    return p


def settings_from_args(args: argparse.Namespace) -> CoreSettings:
    """Core's settings from its parsed flags (every flag reaches the settings: tests/unit/test_core_flags.py)."""
    return CoreSettings(
        postgres_url=args.postgres_url,
        port=args.port,
        host=args.host,
        migrate=not args.no_migrate,
        job_port=args.job_port,
        spark_launcher=args.spark_launcher,
        spark_master=args.spark_master,
        spark_warm_driver=args.spark_warm_driver,
        staging_location=args.staging_location,
        redis_url=args.redis_url,
        pushgateway_url=args.pushgateway_url,
        launcher_work_dir=args.launcher_work_dir,
        reconcile_seconds=args.reconcile_seconds,
        spark_driver_host=args.spark_driver_host,
        spark_conf=dict(args.spark_conf),
        spark_packages=[p for p in args.spark_packages.split(",") if p],
        k8s_namespace=args.k8s_namespace,
        k8s_job_template=args.k8s_job_template,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    if args.command == "stop-warm-driver":
        if not args.launcher_work_dir:
            print("provender core stop-warm-driver: --launcher-work-dir is required", file=sys.stderr)
            return 2
        from provender.core.launchers.local import LocalLauncher

        LocalLauncher(args.launcher_work_dir).stop_warm_driver()
        return 0
    if not args.postgres_url:
        print("provender core: --postgres-url (or PROVENDER_POSTGRES_URL) is required", file=sys.stderr)
        return 2

    from provender.core.registry.database import make_engine, migrate
    from provender.kernel.errors import ProvenderError

    try:
        if args.command == "migrate":
            engine = make_engine(args.postgres_url)
            print(f"registry schema at revision {migrate(engine)}")
            engine.dispose()
            return 0

        from provender.core.app import start_core
        from provender.server.metrics import serve_metrics
        from provender.server.runner import run_until_signal

        serve_metrics(args.metrics_port)
        running = start_core(settings_from_args(args))
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
