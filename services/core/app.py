"""Assembling Core: database, migrations, registry, job controller, servicers and the gRPC server(s)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from provender.core import client_support_servicer, core_servicer, job_servicer
from provender.core.jobs.background import BackgroundLoop
from provender.core.jobs.controller import JobController, JobSettings
from provender.core.jobs.schedules import Schedules
from provender.core.jobs.store import JobStore
from provender.core.launchers.base import Launcher, create_launcher
from provender.core.metrics import CoreMetrics
from provender.core.registry.database import Database, make_engine, migrate
from provender.core.registry.service import Registry
from provender.server.metrics import RpcMetrics
from provender.server.runner import RunningServer, start_server

log = logging.getLogger(__name__)


@dataclass
class CoreSettings:
    postgres_url: str
    port: int = 6565
    host: str = "0.0.0.0"
    migrate: bool = True
    job_port: int = 0  # also serve the JobService alone on this port (6568 in the chart); 0: only on `port`
    spark_launcher: str = "local"
    spark_master: str = ""  # local: local[*] by default; standalone: spark://host:7077
    spark_warm_driver: bool = False  # local: jobs run in one long-lived Spark driver (no start-up per job)
    staging_location: str = ""  # where retrieval outputs and dead letters go; default a local folder
    redis_url: str = ""  # the online store ingestion jobs write
    pushgateway_url: str = ""
    launcher_work_dir: str = ""  # where launchers keep job logs and state
    spark_driver_host: str = ""  # standalone: the address workers reach the driver (Core's pod or host) at
    spark_conf: dict[str, str] = field(default_factory=dict)  # extra Spark properties for every job
    spark_packages: list[str] = field(default_factory=list)  # Maven coordinates, e.g. hadoop-aws for s3://
    k8s_namespace: str = ""  # k8s: where SparkApplications go (default: the template's, else Core's own)
    k8s_job_template: str = ""  # k8s: SparkApplication template file (the chart mounts one)
    reconcile_seconds: float = 5.0


_METRICS: RpcMetrics | None = None
_CORE_METRICS: CoreMetrics | None = None


def _metrics() -> RpcMetrics:
    # prometheus_client's registry is process-wide: create the collectors once per process.
    global _METRICS
    if _METRICS is None:
        _METRICS = RpcMetrics()
    return _METRICS


def core_metrics() -> CoreMetrics:
    """Core's job counters and registry/job gauges, once per process (the latest started Core is read)."""
    global _CORE_METRICS
    if _CORE_METRICS is None:
        _CORE_METRICS = CoreMetrics()
    return _CORE_METRICS


def _launcher(settings: CoreSettings) -> Launcher:
    work_dir = settings.launcher_work_dir or str(Path(tempfile.gettempdir()) / "provender-jobs")
    options: dict[str, object] = {"work_dir": work_dir}
    if settings.spark_conf:
        options["conf"] = dict(settings.spark_conf)
    if settings.spark_launcher in ("local", "standalone") and settings.spark_packages:
        options["packages"] = list(settings.spark_packages)
    if settings.spark_launcher == "local":
        options["warm"] = settings.spark_warm_driver
        if settings.spark_master:
            options["master"] = settings.spark_master
    elif settings.spark_launcher == "standalone":
        options.update(master_url=settings.spark_master, driver_host=settings.spark_driver_host)
    elif settings.spark_launcher == "k8s":
        options.update(namespace=settings.k8s_namespace, job_template=settings.k8s_job_template)
    return create_launcher(settings.spark_launcher, **options)


def start_core(settings: CoreSettings) -> RunningServer:
    """Migrate the database (unless told not to) and start serving; returns the running server."""
    engine = make_engine(settings.postgres_url)
    if settings.migrate:
        revision = migrate(engine)
        log.info("registry schema at revision %s", revision, extra={"revision": revision})
    db = Database(engine)
    registry = Registry(db)
    staging = settings.staging_location or (Path(tempfile.gettempdir()) / "provender-staging").as_uri()
    metrics = core_metrics()
    controller = JobController(
        JobStore(db, on_finished=metrics.job_finished),
        registry,
        _launcher(settings),
        JobSettings(
            staging_location=staging, redis_url=settings.redis_url, pushgateway_url=settings.pushgateway_url
        ),
        metrics=metrics,
    )
    schedules = Schedules(db, controller, metrics=metrics)
    jobs = job_servicer.register(controller, schedules)
    running = start_server(
        [
            core_servicer.register(core_servicer.CoreServicer(registry)),
            *jobs,
            client_support_servicer.register(
                client_support_servicer.ClientSupportServicer(controller, staging)
            ),
        ],
        port=settings.port,
        host=settings.host,
        metrics=_metrics(),
    )
    if settings.job_port:
        job_server = start_server(jobs, port=settings.job_port, host=settings.host, metrics=_metrics())
        running.on_stop.append(lambda: job_server.stop(grace=5))
        log.info("job service listening", extra={"port": job_server.port})
    background = BackgroundLoop(controller, schedules, interval=settings.reconcile_seconds).start()
    running.on_stop.insert(0, background.stop)
    running.on_stop.append(metrics.state.attach(db))
    running.on_stop.append(engine.dispose)
    running.controller = controller  # type: ignore[attr-defined]
    running.schedules = schedules  # type: ignore[attr-defined]
    log.info("core listening", extra={"port": running.port, "spark_launcher": settings.spark_launcher})
    return running
