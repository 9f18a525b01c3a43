"""Assembling Core: database, migrations, registry, job controller, servicers and the gRPC server(s)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provender.core import access_servicer, client_support_servicer, core_servicer, job_servicer
from provender.core.access.bindings import AccessBindings
from provender.core.access.rules import CoreAccess
from provender.core.jobs.background import BackgroundLoop
from provender.core.jobs.controller import JobController, JobSettings
from provender.core.jobs.leader import Leadership
from provender.core.jobs.schedules import Schedules
from provender.core.jobs.store import JobStore
from provender.core.jobs.streams import StreamControl
from provender.core.launchers.base import Launcher, create_launcher, launcher_class
from provender.core.metrics import CoreMetrics
from provender.core.registry.database import Database, make_engine, migrate
from provender.core.registry.service import Registry
from provender.server.authn import AuthSettings
from provender.server.metrics import RpcMetrics
from provender.server.runner import FrontDoorSettings, RunningServer, start_server
from provender.server.settings import setting
from provender.server.tls import TlsSettings

log = logging.getLogger(__name__)


@dataclass
class CoreSettings(TlsSettings, AuthSettings, FrontDoorSettings):
    """Every setting of Core, declared once: the field is the flag, the PROVENDER_* variable and the help."""

    postgres_url: str = setting(
        "",
        flag="--postgres-url",
        env="POSTGRES_URL",
        help="registry database, postgresql://user:password@host:5432/db (required)",
    )
    port: int = setting(6565, flag="--port", env="CORE_PORT", help="gRPC port")
    host: str = setting("0.0.0.0", flag="--host", env="CORE_HOST", help="address to listen on")
    metrics_port: int = setting(
        0,
        flag="--metrics-port",
        env="METRICS_PORT",
        help="serve Prometheus /metrics on this HTTP port, on the --host address; 0: off",
    )
    migrate: bool = setting(True, flag="--no-migrate", env="MIGRATE", help="do not apply migrations on start")
    log_level: str = setting(
        "INFO", flag="--log-level", env="LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR"
    )
    job_port: int = setting(
        0,
        flag="--job-port",
        env="JOB_PORT",
        group="jobs",
        help="also serve the JobService alone on this port (6568 in the chart); 0: only on --port",
    )
    spark_launcher: str = setting(
        "local", flag="--spark-launcher", env="SPARK_LAUNCHER", group="jobs", help="local | standalone | k8s"
    )
    spark_master: str = setting(
        "",
        flag="--spark-master",
        env="SPARK_MASTER",
        group="jobs",
        help="local[N] for local (default local[*]), spark://host:7077 for standalone",
    )
    spark_warm_driver: bool = setting(
        False,
        flag="--spark-warm-driver",
        env="SPARK_WARM_DRIVER",
        group="jobs",
        help="local: run jobs in one long-lived Spark driver, started on the first job and stopped when idle, "
        "instead of a spark-submit each",
    )
    staging_location: str = setting(
        "",
        flag="--staging-location",
        env="STAGING_LOCATION",
        group="jobs",
        help="file:// or s3:// folder for retrieval outputs, staged entity rows and dead letters "
        "(default: a local folder)",
    )
    allowed_storage: list[str] = setting(
        [],
        flag="--allowed-storage",
        env="ALLOWED_STORAGE",
        group="jobs",
        help="comma-separated URL prefixes (file:///data, s3://lake/features) jobs may read sources and entity "
        "files from and write outputs to, besides the staging location; empty: anywhere",
    )
    restrict_storage: bool = setting(
        False,
        flag="--restrict-storage",
        env="RESTRICT_STORAGE",
        group="jobs",
        help="jobs may use only the staging location and the --allowed-storage prefixes, even when there are none "
        "(on whenever --allowed-storage is given)",
    )
    redis_url: str = setting(
        "",
        flag="--redis-url",
        env="REDIS_URL",
        group="jobs",
        help="the online store ingestion writes: redis://, rediss:// or a cluster seed list",
    )
    pushgateway_url: str = setting(
        "",
        flag="--pushgateway-url",
        env="PUSHGATEWAY_URL",
        group="jobs",
        help="Prometheus Pushgateway the batch jobs push their metrics to",
    )
    launcher_work_dir: str = setting(
        "",
        flag="--launcher-work-dir",
        env="LAUNCHER_WORK_DIR",
        group="jobs",
        help="where launchers keep job logs and state",
    )
    spark_driver_host: str = setting(
        "",
        flag="--spark-driver-host",
        env="SPARK_DRIVER_HOST",
        group="jobs",
        help="standalone: the address Spark workers reach the driver at",
    )
    spark_conf: dict[str, str] = setting(
        {},
        flag="--spark-conf",
        env="SPARK_CONF",
        group="jobs",
        help="KEY=VALUE Spark property for every job (variable: comma-separated)",
    )
    spark_packages: list[str] = setting(
        [],
        flag="--spark-packages",
        env="SPARK_PACKAGES",
        group="jobs",
        help="comma-separated Maven coordinates, e.g. org.apache.hadoop:hadoop-aws:3.4.1 for s3://",
    )
    spark_jars: list[str] = setting(
        [],
        flag="--spark-jars",
        env="SPARK_JARS",
        group="jobs",
        help="comma-separated jars on every job's classpath (files here, or local:// paths in the k8s image), "
        "e.g. Spark's Kafka source for stream jobs",
    )
    kafka_bootstrap_servers: str = setting(
        "",
        flag="--kafka-bootstrap-servers",
        env="KAFKA_BOOTSTRAP_SERVERS",
        group="streams",
        help="this deployment's Kafka brokers (host:port,...): a table's KafkaSource that names none reads these",
    )
    stream_control: bool = setting(
        True,
        flag="--no-stream-control",
        env="STREAM_CONTROL",
        group="streams",
        help="do not keep a stream job running for every table with a Kafka stream source (start them yourself)",
    )
    stream_restart_backoff_seconds: float = setting(
        10.0,
        flag="--stream-restart-backoff-seconds",
        env="STREAM_RESTART_BACKOFF_SECONDS",
        group="streams",
        help="wait before restarting a failed stream job; doubles with each failure in a row (up to 10 min)",
    )
    stream_trigger_seconds: float = setting(
        1.0,
        flag="--stream-trigger-seconds",
        env="STREAM_TRIGGER_SECONDS",
        group="streams",
        help="how often a stream job writes the messages that arrived",
    )
    stream_starting_offsets: str = setting(
        "earliest",
        flag="--stream-starting-offsets",
        env="STREAM_STARTING_OFFSETS",
        group="streams",
        help="where a new stream job (no checkpoint yet) starts reading its topic: earliest or latest",
    )
    stream_metrics_port: int = setting(
        0,
        flag="--stream-metrics-port",
        env="STREAM_METRICS_PORT",
        group="streams",
        help="the port of each stream job's Prometheus /metrics (0: any free port, printed in the job's log)",
    )
    stream_max_messages_per_batch: int = setting(
        500_000,
        flag="--stream-max-messages-per-batch",
        env="STREAM_MAX_MESSAGES_PER_BATCH",
        group="streams",
        help="the most messages one micro-batch of a stream job reads (a backlog is read in several; 0: no bound)",
    )
    k8s_namespace: str = setting(
        "",
        flag="--k8s-namespace",
        env="K8S_NAMESPACE",
        group="jobs",
        help="k8s launcher: namespace of the SparkApplications (default: the template's, else Core's own)",
    )
    k8s_job_template: str = setting(
        "",
        flag="--k8s-job-template",
        env="K8S_JOB_TEMPLATE",
        group="jobs",
        help="k8s launcher: SparkApplication template file (the chart mounts one)",
    )
    auth_global_roles: dict[str, str] = setting(
        {},
        flag="--auth-global-role",
        env="AUTH_GLOBAL_ROLES",
        group="auth",
        help="PRINCIPAL=ROLE: a role in every project, e.g. group:ml-platform=admin or token:provender-serving=reader "
        "(variable: comma-separated)",
    )
    schedule_min_interval_seconds: float = setting(
        60.0,
        flag="--schedule-min-interval-seconds",
        env="SCHEDULE_MIN_INTERVAL_SECONDS",
        group="jobs",
        help="refuse ingestion schedules that would start jobs more often than this",
    )
    reconcile_seconds: float = setting(
        5.0,
        flag="--reconcile-seconds",
        env="RECONCILE_SECONDS",
        group="jobs",
        help="how often job records are reconciled with the launcher",
    )
    leader_timeout_seconds: float = setting(
        10.0,
        flag="--leader-timeout-seconds",
        env="LEADER_TIMEOUT_SECONDS",
        group="jobs",
        help="the leading replica (the one running reconcile, schedules and stream control) loses the lead when its "
        "Postgres session stays silent this long (a hung or cut-off process); another replica then takes over "
        "within about this time plus a second (within a second when the leader exits)",
    )


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
    """The launcher Core's settings name, its settings taken from Core's and checked now (a wrong one stops
    Core at start)."""
    cls = launcher_class(settings.spark_launcher)
    return create_launcher(settings.spark_launcher, cls.Settings.from_core(settings))


def start_core(settings: CoreSettings) -> RunningServer:
    """Migrate the database (unless told not to) and start serving; returns the running server."""
    tls = settings.server_tls()  # checked before anything starts
    authenticator = settings.authenticator()
    engine = make_engine(settings.postgres_url)
    if settings.migrate:
        revision = migrate(engine)
        log.info("registry schema at revision %s", revision, extra={"revision": revision})
    db = Database(engine)
    registry = Registry(db, settings.kafka_bootstrap_servers)
    staging = settings.staging_location or (Path(tempfile.gettempdir()) / "provender-staging").as_uri()
    metrics = core_metrics()
    controller = JobController(
        JobStore(db, on_finished=metrics.job_finished),
        registry,
        _launcher(settings),
        JobSettings(
            staging_location=staging,
            redis_url=settings.redis_url,
            pushgateway_url=settings.pushgateway_url,
            stream_trigger_seconds=settings.stream_trigger_seconds,
            stream_starting_offsets=settings.stream_starting_offsets,
            stream_metrics_port=settings.stream_metrics_port,
            stream_max_messages_per_batch=settings.stream_max_messages_per_batch,
            allowed_storage=settings.allowed_storage,
            restrict_storage=settings.restrict_storage,
        ),
        metrics=metrics,
    )
    schedules = Schedules(
        db, controller, metrics=metrics, min_interval_seconds=settings.schedule_min_interval_seconds
    )
    bindings = AccessBindings(db, settings.auth_global_roles)
    access = CoreAccess(bindings, controller.project_of)
    guard = {
        "metrics": _metrics(),
        "tls": tls,
        "audit": access.audited(),
        "authenticator": authenticator,
        "access": access if authenticator is not None else None,
        "limits": settings.front_door(),
    }
    jobs = job_servicer.register(controller, schedules, access.readable)
    running = start_server(
        [
            core_servicer.register(core_servicer.CoreServicer(registry, access.readable)),
            *jobs,
            client_support_servicer.register(
                client_support_servicer.ClientSupportServicer(controller, staging)
            ),
            access_servicer.register(access_servicer.AccessServicer(bindings)),
        ],
        port=settings.port,
        host=settings.host,
        **guard,
    )
    if settings.job_port:
        job_server = start_server(jobs, port=settings.job_port, host=settings.host, **guard)
        running.on_stop.append(lambda: job_server.stop(grace=5))
        log.info("job service listening", extra={"port": job_server.port})
    streams = (
        StreamControl(db, controller, backoff_seconds=settings.stream_restart_backoff_seconds)
        if settings.stream_control
        else None
    )
    if not (settings.allowed_storage or settings.restrict_storage):
        log.warning(
            "no --allowed-storage: jobs may read and write any location their Spark processes can reach; "
            "give the prefixes of your data to keep them to it"
        )
    if streams is not None and not streams.enabled():
        log.info("stream control is on, but Core has no --redis-url to stream into: no stream jobs")
    leadership = Leadership.for_database(engine.url, timeout_seconds=settings.leader_timeout_seconds)
    leadership.add_listener(metrics.leadership_changed)
    background = BackgroundLoop(
        controller,
        schedules,
        interval=settings.reconcile_seconds,
        streams=streams,
        leading=leadership.leading,
    )

    def tick_when_gained(leading: bool) -> None:
        if leading:
            background.wake()

    leadership.add_listener(tick_when_gained)
    leadership.start()
    background.start()
    # Background work stops first, then the lock is freed (another replica takes over at once).
    running.on_stop[0:0] = [background.stop, leadership.stop]
    running.on_stop.append(metrics.state.attach(db))
    running.on_stop.append(engine.dispose)
    running.controller = controller  # type: ignore[attr-defined]
    running.schedules = schedules  # type: ignore[attr-defined]
    running.leadership = leadership  # type: ignore[attr-defined]
    log.info(
        "core listening",
        extra={
            "port": running.port,
            "spark_launcher": settings.spark_launcher,
            "authentication": "on" if authenticator is not None else "off",
            "leader": leadership.is_leader,
        },
    )
    return running
