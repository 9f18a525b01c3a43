"""The job controller: turns JobService requests into job records and launches, keeps records in step with
the launcher, and answers for jobs. Knows nothing of gRPC; the launcher is chosen by name at start."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from provender.core.jobs import ids
from provender.core.jobs.model import Job, JobStatus, JobType
from provender.core.jobs.storage import StoragePolicy
from provender.core.jobs.store import JobStore
from provender.core.launchers.base import Launcher
from provender.core.metrics import CoreMetrics
from provender.core.registry import validation
from provender.core.registry.service import Registry, StoredTable
from provender.kernel.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ProvenderError,
)
from provender.kernel.jobs import args as job_args
from provender.kernel.jobs.status import CANCELLED
from provender.kernel.names import is_valid_name
from provender.kernel.redis_url import without_credentials
from provender.kernel.value_types import ValueType

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CANCELLED_BY_REQUEST = f"{CANCELLED} (CancelJob)"


@dataclass(frozen=True)
class EntitySource:
    """Where the entity rows of a retrieval are: parquet, or CSV when the URL ends in .csv."""

    file_url: str
    event_timestamp_column: str = "event_timestamp"
    field_mapping: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobSettings:
    staging_location: str  # file:///... or s3://...: retrieval outputs, dead letters and stream checkpoints
    redis_url: str = ""  # the online store ingestion writes; empty: ingestion is refused with a clear message
    pushgateway_url: str = ""
    stream_trigger_seconds: float = 1.0  # how often a stream job writes what arrived
    stream_starting_offsets: str = "earliest"  # where a stream job without a checkpoint starts reading
    stream_metrics_port: int = 0  # the port of a stream job's /metrics (0: any free port, printed in its log)
    stream_max_messages_per_batch: int = 500_000  # a backlog is read in micro-batches of at most this many
    # URL prefixes jobs may read and write (besides the staging location); empty: anywhere
    allowed_storage: list[str] = field(default_factory=list)
    restrict_storage: bool = False  # with no allowed_storage: only the staging location (else anywhere)

    def __post_init__(self) -> None:
        if not self.stream_trigger_seconds > 0:
            raise InvalidArgument(
                "stream_trigger_seconds", self.stream_trigger_seconds, "more than 0 seconds"
            )
        if self.stream_max_messages_per_batch < 0:
            raise InvalidArgument(
                "stream_max_messages_per_batch",
                self.stream_max_messages_per_batch,
                "a number of messages (0: no bound)",
            )
        if self.stream_starting_offsets not in job_args.STARTING_OFFSETS:
            raise InvalidArgument(
                "stream_starting_offsets",
                self.stream_starting_offsets,
                " or ".join(job_args.STARTING_OFFSETS),
            )


def _url_join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


class JobController:
    def __init__(
        self,
        store: JobStore,
        registry: Registry,
        launcher: Launcher,
        settings: JobSettings,
        metrics: CoreMetrics | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.launcher = launcher
        self.settings = settings
        self.metrics = metrics
        self.storage = StoragePolicy(
            settings.allowed_storage, settings.staging_location, restrict=settings.restrict_storage
        )

    # starting jobs ---------------------------------------------------------------------------------------

    def start_offline_to_online(
        self, project: str, table_name: str, start: datetime | None, end: datetime | None
    ) -> Job:
        project = validation.project_name(project)
        self._require_online_store()
        stored = self.registry.get_feature_table(project, validation.check_name("table_name", table_name))
        end = end or datetime.now(UTC)
        start = start or EPOCH
        if end <= start:
            raise InvalidArgument("end_date", end.isoformat(), f"a time after start_date {start.isoformat()}")
        table = self._readable_table(project, stored)
        request = {"project": project, "table": table_name, "start": start, "end": end, "hash": stored.hash}
        base = ids.base_id(JobType.BATCH_INGESTION, request)
        args = job_args.IngestionJobArgs(
            project=project,
            table=table,
            redis_url=without_credentials(self.settings.redis_url),
            start=start,
            end=end,
            dead_letter_location=_url_join(
                self.settings.staging_location, "dead-letter", project, table_name, base
            ),
            pushgateway_url=self.settings.pushgateway_url,
        )
        return self._launch(base, JobType.BATCH_INGESTION, project, table_name, args, stored.hash)

    def get_historical_features(
        self,
        project: str,
        feature_refs: list[str],
        entity_source: EntitySource,
        output_location: str,
        output_format: str,
    ) -> Job:
        project = validation.project_name(project)
        if not feature_refs:
            raise InvalidArgument("feature_refs", [], 'at least one reference "table:feature"')
        wanted: dict[str, list[str]] = {}
        for i, ref in enumerate(feature_refs):
            table, sep, feature = ref.partition(":")
            if not sep or not is_valid_name(table) or not is_valid_name(feature):
                raise InvalidArgument(f"feature_refs[{i}]", ref, 'a reference "table:feature"')
            if feature not in wanted.setdefault(table, []):
                wanted[table].append(feature)
        selections = []
        hashes = []
        for table, features in wanted.items():
            stored = self.registry.get_feature_table(project, table)
            spec = self._readable_table(project, stored)
            selections.append(job_args.FeatureSelection(table=spec, features=tuple(features)))
            hashes.append(stored.hash)
        self.storage.check("entity_source.file_options.file_url", entity_source.file_url)
        if output_location:
            self.storage.check("output_location", output_location)
        for i, name in enumerate(
            [entity_source.event_timestamp_column, *entity_source.field_mapping.values()]
        ):
            validation.check_name(
                "entity_source.event_timestamp_column" if i == 0 else "entity_source.field_mapping", name
            )
        if (output_format or "parquet").lower() != "parquet":
            raise InvalidArgument("output_format", output_format, "parquet")
        source_format = "csv" if entity_source.file_url.lower().endswith(".csv") else "parquet"
        request = {
            "project": project,
            "refs": sorted(feature_refs),
            "entities": entity_source.file_url,
            "output": output_location,
            "hashes": hashes,
        }
        base = ids.base_id(JobType.RETRIEVAL, request)
        location = output_location or _url_join(self.settings.staging_location, "historical", project)
        args = job_args.RetrievalJobArgs(
            project=project,
            entity_source=job_args.JobSource(
                file_url=entity_source.file_url,
                event_timestamp_column=entity_source.event_timestamp_column,
                field_mapping=dict(entity_source.field_mapping),
                file_format=source_format,
            ),
            tables=tuple(selections),
            output_location=_url_join(location, base),
            output_format=(output_format or "parquet").lower(),
        )
        return self._launch(
            base, JobType.RETRIEVAL, project, "", args, ",".join(hashes), output_uri=args.output_location
        )

    def start_stream_to_online(self, project: str, table_name: str) -> Job:
        """The stream job of a table with a Kafka stream source; idempotent per table spec: while a job of the
        same spec hash is active, that job is returned."""
        project = validation.project_name(project)
        self._require_online_store()
        stored = self.registry.get_feature_table(project, validation.check_name("table_name", table_name))
        spec_hash = stream_spec_hash(stored, self.registry.kafka_bootstrap_servers)
        base = ids.base_id(
            JobType.STREAM_INGESTION, {"project": project, "table": table_name, "hash": spec_hash}
        )
        args = self.stream_args(project, stored, base)
        return self._launch(base, JobType.STREAM_INGESTION, project, table_name, args, spec_hash)

    def stream_args(self, project: str, stored: StoredTable, base: str) -> job_args.StreamIngestionJobArgs:
        table = self._table_spec(project, stored)
        staging = self.settings.staging_location
        return job_args.StreamIngestionJobArgs(
            project=project,
            table=table,
            source=_kafka_source(stored, self.registry.kafka_bootstrap_servers),
            redis_url=without_credentials(self.settings.redis_url),
            # keyed by the spec hash, not the job id: a restarted job (a new attempt) resumes where it stopped
            checkpoint_location=_url_join(
                staging,
                "checkpoints",
                project,
                table.name,
                stream_spec_hash(stored, self.registry.kafka_bootstrap_servers),
            ),
            dead_letter_location=_url_join(staging, "dead-letter", project, table.name, base),
            trigger_seconds=self.settings.stream_trigger_seconds,
            starting_offsets=self.settings.stream_starting_offsets,
            metrics_port=self.settings.stream_metrics_port,
            max_messages_per_batch=self.settings.stream_max_messages_per_batch,
        )

    def _require_online_store(self) -> None:
        if not self.settings.redis_url:
            raise FailedPrecondition(
                "Core has no online store to ingest into: start it with --redis-url (PROVENDER_REDIS_URL)"
            )

    def _readable_table(self, project: str, stored: StoredTable) -> job_args.JobTable:
        """The table of a job that reads its batch source, which must lie in the allowed storage."""
        table = self._table_spec(project, stored)
        self.storage.check(
            f"feature table {table.name}: batch_source.file_options.file_url", table.batch_source.file_url
        )
        return table

    def _table_spec(self, project: str, stored: StoredTable) -> job_args.JobTable:
        spec = stored.spec
        if spec.batch_source.WhichOneof("options") != "file_options":
            raise FailedPrecondition(
                f"feature table {spec.name!r} has a {spec.batch_source.WhichOneof('options')} batch source; "
                "Provender's Spark jobs read file sources (parquet on file:// or s3://)"
            )
        entities = []
        for name in spec.entities:
            try:
                entity = self.registry.get_entity(project, name)
            except NotFound:
                raise FailedPrecondition(f"entity {name!r} of table {spec.name!r} no longer exists") from None
            entities.append(job_args.Column(name, ValueType(entity.spec.value_type)))
        src = spec.batch_source
        return job_args.JobTable(
            name=spec.name,
            entities=tuple(entities),
            features=tuple(job_args.Column(f.name, ValueType(f.value_type)) for f in spec.features),
            batch_source=job_args.JobSource(
                file_url=src.file_options.file_url,
                event_timestamp_column=src.event_timestamp_column,
                created_timestamp_column=src.created_timestamp_column,
                date_partition_column=src.date_partition_column,
                field_mapping=dict(src.field_mapping),
            ),
            max_age_seconds=spec.max_age.seconds,
        )

    def _launch(
        self,
        base: str,
        job_type: JobType,
        project: str,
        table_name: str,
        args: job_args.JobArgs,
        spec_hash: str,
        output_uri: str = "",
    ) -> Job:
        job, new = self.store.create_unless_active(
            base,
            job_type,
            project,
            table_name,
            self.launcher.name,
            args.to_dict() | {"kind": args.KIND},
            output_uri=output_uri,
            spec_hash=spec_hash,
        )
        if not new:
            log.info("job already active", extra={"job_id": job.id})
            return job
        return self._submit(job)

    def _submit(self, job: Job) -> Job:
        if self.metrics is not None:
            self.metrics.job_submitted(job)
        try:
            launched = self.launcher.submit(job.id, job_args.parse_job_args(_args_json(job)))
        except ProvenderError as e:
            log.warning("job submission failed", extra={"job_id": job.id, "error": str(e)})
            return self.store.set_status(job.id, JobStatus.ERROR, f"submission failed: {e}")
        except OSError as e:
            return self.store.set_status(job.id, JobStatus.ERROR, f"submission failed: {e}")
        log.info("job submitted", extra={"job_id": job.id, "launcher": self.launcher.name})
        return self.store.launched(job.id, launched.handle, launched.log_uri)

    # answering for jobs ----------------------------------------------------------------------------------

    def list_jobs(self, project: str | None, table_name: str, include_terminated: bool) -> list[Job]:
        if project:
            project = validation.project_name(project)
        if table_name:
            validation.check_name("table_name", table_name)
        return self.store.list(project, table_name, include_terminated)

    def project_of(self, job_id: str) -> str:
        """The project a job belongs to (NotFound for an unknown id), without reconciling it."""
        return self.store.get(ids.check_job_id(job_id)).project

    def get_job(self, job_id: str) -> Job:
        job = self.store.get(ids.check_job_id(job_id))
        return self.reconcile(job) if not job.status.terminal else job

    def report(self, job_id: str) -> dict[str, Any] | None:
        """What a finished job reported, or a stream job's latest micro-batch (None while a batch job runs,
        when it failed, or when its launcher keeps none)."""
        job = self.get_job(job_id)
        streaming = job.type is JobType.STREAM_INGESTION and job.status is JobStatus.RUNNING
        if not (job.status is JobStatus.DONE or streaming) or not job.handle:
            return None
        return self.launcher.report(job.handle)

    def cancel_job(self, job_id: str, reason: str = CANCELLED_BY_REQUEST) -> Job:
        job = self.store.get(ids.check_job_id(job_id))
        if job.status.terminal:
            return job
        if job.handle:
            self.launcher.cancel(job.handle)
        return self.store.set_status(job.id, JobStatus.ERROR, reason)

    def health(self, project: str, tables: list[str]) -> tuple[list[str], list[str]]:
        """Tables whose latest finished ingestion succeeded (passed), and the others (failed)."""
        project = validation.project_name(project)
        for i, name in enumerate(tables):
            self.registry.get_feature_table(project, validation.check_name(f"table_names[{i}]", name))
        latest = self.store.latest_per_table(project, tables, JobType.BATCH_INGESTION)
        passed = [t for t in tables if t in latest and latest[t].status is JobStatus.DONE]
        return passed, [t for t in tables if t not in passed]

    # keeping records in step with the launcher -----------------------------------------------------------

    def reconcile(self, job: Job) -> Job:
        """Ask the launcher about one active job and record what it says. A terminal answer is recorded for good:
        a launcher gives one only when the job can no longer change (the local launcher withdraws a job still
        queued for a warm driver that died before it says ERROR), so a record never disagrees with the job."""
        if not job.handle:
            # Created but never submitted (Core stopped in between): the launcher is idempotent per job id.
            if datetime.now(UTC) - job.created_at > timedelta(seconds=5):
                return self._submit(job)
            return job
        state, message = self.launcher.status(job.handle)
        status = state
        if status is job.status:
            return job
        log.info("job status", extra={"job_id": job.id, "status": status.name})
        return self.store.set_status(job.id, status, message)

    def reconcile_all(self, jobs: Iterable[Job] | None = None) -> None:
        for job in self.store.active() if jobs is None else jobs:
            try:
                self.reconcile(job)
            except Exception:
                log.exception("reconciling a job failed", extra={"job_id": job.id})


def stream_spec_hash(stored: StoredTable, kafka_default: str = "") -> str:
    """What a stream job runs for: the table hash (entities, features, sources), the max_age its writes expire
    by and, for a KafkaSource that names no brokers, the deployment's (`kafka_default`). A new value means a new
    job (and a new checkpoint: offsets of other brokers mean nothing)."""
    seconds = stored.spec.max_age.seconds
    what = f"{stored.hash}:{seconds}"
    source = stored.spec.stream_source
    if source.WhichOneof("options") == "kafka_options" and not source.kafka_options.bootstrap_servers:
        what += f":{kafka_default}"
    return hashlib.sha256(what.encode()).hexdigest()[:16]


def _kafka_source(stored: StoredTable, kafka_default: str = "") -> job_args.KafkaJobSource:
    """A table's Kafka stream source as the job takes it (FailedPrecondition when it has none), its brokers
    the deployment's (`kafka_default`) when it names none."""
    spec = stored.spec
    source = spec.stream_source
    if source.WhichOneof("options") != "kafka_options":
        kind = source.WhichOneof("options")
        raise FailedPrecondition(
            f"feature table {spec.name!r} has {'a ' + kind if kind else 'no'} stream source; stream ingestion "
            "reads a Kafka stream source (KafkaSource)"
        )
    kafka = source.kafka_options
    fmt = kafka.message_format.WhichOneof("format")
    if fmt == "avro_format":
        message_format, schema_json, class_path = "avro", kafka.message_format.avro_format.schema_json, ""
    elif fmt == "proto_format" and kafka.message_format.proto_format.class_path == job_args.JSON_CLASS_PATH:
        message_format, schema_json, class_path = "json", "", ""
    elif fmt == "proto_format":
        message_format, schema_json, class_path = "proto", "", kafka.message_format.proto_format.class_path
    else:
        raise FailedPrecondition(f"feature table {spec.name!r}: its Kafka source has no message format")
    if not (kafka.bootstrap_servers or kafka_default):
        raise FailedPrecondition(
            f"feature table {spec.name!r}: its KafkaSource names no bootstrap servers and Core has no default; "
            "apply the table with bootstrap_servers, or start Core with --kafka-bootstrap-servers"
        )
    return job_args.KafkaJobSource(
        bootstrap_servers=kafka.bootstrap_servers or kafka_default,
        topic=kafka.topic,
        message_format=message_format,
        event_timestamp_column=source.event_timestamp_column,
        schema_json=schema_json,
        class_path=class_path,
        created_timestamp_column=source.created_timestamp_column,
        field_mapping=dict(source.field_mapping),
    )


def _args_json(job: Job) -> str:
    import json

    return json.dumps(job.args, sort_keys=True)
