"""The Provender client: registry, online features and jobs from one object.

    from provender import Client
    client = Client(core_url="localhost:6565", serving_url="localhost:6566")

Calls raise `provender.kernel.errors` types with the server's message; an unreachable service names its URL.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from provender import config as config_module
from provender import feast_options
from provender.access import AccessBinding, Identity
from provender.applied import Applied
from provender.channels import BearerToken, open_channel
from provender.data_source import FileSource
from provender.entity import Entity
from provender.feature import Feature
from provender.feature_table import FeatureTable
from provender.ingest import IngestResult
from provender.kernel.errors import InvalidArgument, ProvenderError, Unavailable, Unimplemented, from_status
from provender.kernel.timestamps import from_timestamp, to_timestamp
from provender.kernel.value_types import ValueType
from provender.online import OnlineResponse, build_columnar_request, build_request
from provender.proto.feast.core import CoreService_pb2 as core_pb
from provender.proto.feast.core import CoreService_pb2_grpc, DataFormat_pb2, DataSource_pb2
from provender.proto.feast.serving import ServingService_pb2_grpc
from provender.proto.feast_spark.api import JobService_pb2 as jobs_pb
from provender.proto.feast_spark.api import JobService_pb2_grpc
from provender.proto.provender.core import Access_pb2, Access_pb2_grpc
from provender.remote_job import IngestionJob, JobInfo, RemoteJob, RetrievalJob

if TYPE_CHECKING:
    from provender.stream_producer import Produced

T = TypeVar("T")
Applicable = Entity | FeatureTable


class Client:
    """Provender's client. Every option of Feast 0.9's and feast-spark's clients is accepted by its own name
    (`spark_staging_location=`, `core_enable_ssl=`, `options={...}`, FEAST_* variables): provender.feast_options
    says what each means here; settings that live on the server are accepted with a one-time notice."""

    def __init__(
        self,
        core_url: str | Mapping[str, Any] | None = None,
        serving_url: str | None = None,
        job_service_url: str | None = None,
        project: str | None = None,
        timeout: float | None = None,
        staging_location: str | None = None,
        kafka_bootstrap_servers: str | None = None,
        options: Mapping[str, Any] | None = None,
        **feast_client_options: Any,
    ) -> None:
        if isinstance(core_url, Mapping):  # Feast 0.9's Client(options) with the dict first
            options, core_url = {**core_url, **(options or {})}, None
        given = {**(options or {}), **feast_client_options}
        feast_options.check_names(given)
        feast_options.notice(given)
        mapped = {feast_options.CLIENT[k]: v for k, v in given.items() if k in feast_options.CLIENT}
        ours = {
            "core_url": core_url,
            "serving_url": serving_url,
            "job_service_url": job_service_url,
            "project": project,
            "timeout": timeout,
            "staging_location": staging_location,
            "kafka_bootstrap_servers": kafka_bootstrap_servers,
        }
        mapped.update({k: v for k, v in ours.items() if v is not None})
        self.config = config_module.resolve(**mapped)
        self._project = self.config.project
        self._channels: dict[str, grpc.Channel] = {}
        self._entity_types: dict[str, dict[str, ValueType]] = {}
        self._feature_types: dict[str, dict[str, ValueType]] = {}
        self._columnar_ok = True
        self._staging_location = self.config.staging_location
        self._token = BearerToken(self.config)
        self._reports: dict[str, dict[str, Any]] = {}

    # plumbing --------------------------------------------------------------------------------------------

    @property
    def project(self) -> str:
        return self._project

    def set_project(self, project: str | None = None) -> None:
        self._project = project or self.config.project

    def _project_or_default(self, project: str | None) -> str:
        return project if project is not None else self._project

    def _channel(self, service: str) -> grpc.Channel:
        """The channel to "core", "serving" or "jobs" (Core's own unless job_service_url is set)."""
        if service not in self._channels:
            c = self.config
            url, ssl, cert = {
                "core": (c.core_url, c.core_enable_ssl, c.core_server_ssl_cert),
                "serving": (c.serving_url, c.serving_enable_ssl, c.serving_server_ssl_cert),
                "jobs": (c.jobs_url, c.jobs_enable_ssl, c.jobs_server_ssl_cert),
            }[service]
            self._channels[service] = open_channel(url, ssl, cert)
        return self._channels[service]

    @property
    def core(self) -> CoreService_pb2_grpc.CoreServiceStub:
        return CoreService_pb2_grpc.CoreServiceStub(self._channel("core"))

    @property
    def serving(self) -> ServingService_pb2_grpc.ServingServiceStub:
        return ServingService_pb2_grpc.ServingServiceStub(self._channel("serving"))

    @property
    def jobs(self) -> JobService_pb2_grpc.JobServiceStub:
        return JobService_pb2_grpc.JobServiceStub(self._channel("jobs"))

    def _call(
        self, service: str, url: str, method: Callable[..., T], request: Any, timeout: float | None = None
    ) -> T:
        timeout = self.config.timeout if timeout is None else timeout
        try:
            return method(request, timeout=timeout, metadata=self._token.metadata())
        except grpc.RpcError as e:
            code, details = e.code(), e.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE and ("DNS" in details or "resolve" in details.lower()):
                raise Unavailable(
                    f"cannot reach Provender {service} at {url}: the host name does not resolve; check the "
                    f"{service} URL (host:port) ({details})"
                ) from None
            if code == grpc.StatusCode.UNAVAILABLE and "connect" in details.lower():
                raise Unavailable(
                    f"cannot reach Provender {service} at {url}: is it running? ({details})"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise Unavailable(
                    f"Provender {service} at {url} did not answer within {timeout:g}s"
                ) from None
            raise from_status(code.name, details) from None

    def _core_call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        return self._call("Core", self.config.core_url, method, request, timeout)

    def _serving_call(self, method: Callable[..., T], request: Any) -> T:
        return self._call("Serving", self.config.serving_url, method, request)

    def _jobs_call(self, method: Callable[..., T], request: Any) -> T:
        return self._call("JobService", self.config.jobs_url, method, request)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # registry --------------------------------------------------------------------------------------------

    def version(self) -> dict[str, str]:
        import provender

        core = self._core_call(self.core.GetFeastCoreVersion, core_pb.GetFeastCoreVersionRequest()).version
        return {"sdk": provender.__version__, "core": core}

    def apply(self, objects: Applicable | Iterable[Applicable], project: str | None = None) -> Applied:
        """Create or update entities and feature tables (entities first); returns them as stored, a list that
        renders as a table in notebooks."""
        items = [objects] if isinstance(objects, Entity | FeatureTable) else list(objects)
        for i, obj in enumerate(items):
            if not isinstance(obj, Entity | FeatureTable):
                raise InvalidArgument(f"objects[{i}]", type(obj).__name__, "an Entity or a FeatureTable")
        ordered = sorted(items, key=lambda o: 0 if isinstance(o, Entity) else 1)
        project = self._project_or_default(project)
        applied = Applied()
        for obj in ordered:
            if isinstance(obj, Entity):
                r = self._core_call(
                    self.core.ApplyEntity,
                    core_pb.ApplyEntityRequest(spec=obj.to_proto(), project=project),
                    self.config.apply_timeout,
                )
                applied.append(Entity.from_proto(r.entity))
            else:
                r2 = self._core_call(
                    self.core.ApplyFeatureTable,
                    core_pb.ApplyFeatureTableRequest(table_spec=obj.to_proto(), project=project),
                    self.config.apply_timeout,
                )
                applied.append(FeatureTable.from_proto(r2.table))
        self._entity_types.pop(project, None)
        self._feature_types.pop(project, None)
        return applied

    def apply_entity(self, entities: Entity | Iterable[Entity], project: str | None = None) -> Applied:
        """Feast 0.9's name for applying entities."""
        return self.apply(entities, project=project)

    def apply_feature_table(
        self, feature_tables: FeatureTable | Iterable[FeatureTable], project: str | None = None
    ) -> Applied:
        """Feast 0.9's name for applying feature tables."""
        return self.apply(feature_tables, project=project)

    def get_entity(self, name: str, project: str | None = None) -> Entity:
        r = self._core_call(
            self.core.GetEntity,
            core_pb.GetEntityRequest(name=name, project=self._project_or_default(project)),
        )
        return Entity.from_proto(r.entity)

    def list_entities(
        self, project: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Entity]:
        f = core_pb.ListEntitiesRequest.Filter(
            project=self._project_or_default(project), labels=dict(labels or {})
        )
        r = self._core_call(self.core.ListEntities, core_pb.ListEntitiesRequest(filter=f))
        return [Entity.from_proto(e) for e in r.entities]

    def get_feature_table(self, name: str, project: str | None = None) -> FeatureTable:
        r = self._core_call(
            self.core.GetFeatureTable,
            core_pb.GetFeatureTableRequest(name=name, project=self._project_or_default(project)),
        )
        return FeatureTable.from_proto(r.table)

    def list_feature_tables(
        self, project: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[FeatureTable]:
        f = core_pb.ListFeatureTablesRequest.Filter(
            project=self._project_or_default(project), labels=dict(labels or {})
        )
        r = self._core_call(self.core.ListFeatureTables, core_pb.ListFeatureTablesRequest(filter=f))
        return [FeatureTable.from_proto(t) for t in r.tables]

    def delete_feature_table(self, name: str, project: str | None = None) -> None:
        self._core_call(
            self.core.DeleteFeatureTable,
            core_pb.DeleteFeatureTableRequest(name=name, project=self._project_or_default(project)),
        )

    def list_features_by_ref(
        self,
        project: str | None = None,
        entities: Iterable[str] = (),
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Feature]:
        """Features keyed "table:feature" of tables that have all `entities`, with all `labels`."""
        f = core_pb.ListFeaturesRequest.Filter(
            project=self._project_or_default(project), entities=list(entities), labels=dict(labels or {})
        )
        r = self._core_call(self.core.ListFeatures, core_pb.ListFeaturesRequest(filter=f))
        return {ref: Feature.from_proto(spec) for ref, spec in sorted(r.features.items())}

    def list_projects(self) -> list[str]:
        return list(self._core_call(self.core.ListProjects, core_pb.ListProjectsRequest()).projects)

    def create_project(self, name: str) -> None:
        self._core_call(self.core.CreateProject, core_pb.CreateProjectRequest(name=name))

    def archive_project(self, name: str) -> None:
        self._core_call(self.core.ArchiveProject, core_pb.ArchiveProjectRequest(name=name))

    # access: roles per project -------------------------------------------------------------------------

    @property
    def _access(self) -> Access_pb2_grpc.AccessServiceStub:
        return Access_pb2_grpc.AccessServiceStub(self._channel("core"))

    def grant_access(self, principal: str, role: str, project: str | None = None) -> AccessBinding:
        """Give `principal` (user:..., group:..., token:..., cert:...) `role` (reader, writer, admin) in the
        project ("*": every project); replaces its role there. Needs the admin role in that project."""
        request = Access_pb2.GrantAccessRequest(
            project=self._project_or_default(project), principal=principal, role=role
        )
        return AccessBinding.from_proto(self._core_call(self._access.GrantAccess, request).binding)

    def revoke_access(self, principal: str, project: str | None = None) -> None:
        """Take `principal`'s role in the project away. Needs the admin role in that project."""
        request = Access_pb2.RevokeAccessRequest(
            project=self._project_or_default(project), principal=principal
        )
        self._core_call(self._access.RevokeAccess, request)

    def list_access(self, project: str | None = None) -> list[AccessBinding]:
        """The roles in a project (with those in every project); `project="*"` or "": every binding."""
        wanted = self._project_or_default(project)
        request = Access_pb2.ListAccessBindingsRequest(project="" if wanted == "*" else wanted)
        return [
            AccessBinding.from_proto(b)
            for b in self._core_call(self._access.ListAccessBindings, request).bindings
        ]

    def whoami(self) -> Identity:
        """Who Core takes this client for, and the identities (groups) its roles can come through."""
        r = self._core_call(self._access.WhoAmI, Access_pb2.WhoAmIRequest())
        return Identity(r.principal, tuple(r.identities), r.authenticated)

    # data: ingest, online, historical -------------------------------------------------------------------

    def _types_of_entities(self, project: str) -> dict[str, ValueType]:
        if project not in self._entity_types:
            self._entity_types[project] = {e.name: e.value_type for e in self.list_entities(project=project)}
        return self._entity_types[project]

    def _check_entity_names(self, project: str, rows: list[Mapping[str, Any]]) -> dict[str, ValueType]:
        """The project's entity types, after checking every key of the rows names one of its entities (the
        registry is read again before a name is called unknown)."""
        import difflib

        types = self._types_of_entities(project)
        if all(name in types for row in rows for name in row):
            return types
        self._entity_types.pop(project, None)
        types = self._types_of_entities(project)
        for i, row in enumerate(rows):
            for name in row:
                if name not in types:
                    close = difflib.get_close_matches(name, list(types), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    known = ", ".join(sorted(types)) or "none yet"
                    raise InvalidArgument(
                        f"entity_rows[{i}]", name, f"an entity of project {project!r} ({known}){hint}"
                    )
        return types

    def _types_of_features(self, project: str, refs: list[str]) -> dict[str, ValueType]:
        """ "table:feature" -> declared type, for the refs asked (the registry is read again when one is new)."""
        known = self._feature_types.get(project, {})
        if any(ref not in known for ref in refs):
            known = {
                f"{t.name}:{f.name}": f.dtype
                for t in self.list_feature_tables(project=project)
                for f in t.features
            }
            self._feature_types[project] = known
        return {ref: known[ref] for ref in refs if ref in known}

    def ingest(
        self,
        feature_table: str | FeatureTable,
        source: Any,
        project: str | None = None,
        **feast_options: Any,
    ) -> IngestResult:
        """Write a DataFrame (or a parquet/CSV file) into the table's batch source as parquet, partitioned by
        its date partition column. Every column is checked against the table first; nothing is written when
        one is missing or a value does not fit its type. The source's created-timestamp column may be left out
        (written as nulls). Feast 0.9's chunk_size, max_workers and timeout are accepted and not needed."""
        import pandas as pd

        from provender import ingest as writer

        unknown = sorted(set(feast_options) - {"chunk_size", "max_workers", "timeout"})
        if unknown:
            raise TypeError(f"ingest() got unexpected keyword arguments {unknown}")
        project = self._project_or_default(project)
        name = feature_table.name if isinstance(feature_table, FeatureTable) else feature_table
        spec = self.get_feature_table(name, project=project)
        data = source
        if isinstance(data, str | Path):
            path = str(data)
            data = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
        if not isinstance(data, pd.DataFrame):
            raise InvalidArgument(
                "source", type(data).__name__, "a pandas DataFrame or the path of a parquet or CSV file"
            )
        arrow = writer.to_arrow(data, spec, self._types_of_entities(project))
        return writer.write(arrow, spec)

    def get_online_features(
        self,
        feature_refs: Iterable[str],
        entity_rows: Iterable[Mapping[str, Any]],
        project: str | None = None,
    ) -> OnlineResponse:
        """The latest values of `feature_refs` ("table:feature") for each entity row, with a status each."""
        project = self._project_or_default(project)
        refs, rows = list(feature_refs), list(entity_rows)
        try:
            types = self._check_entity_names(project, rows)
            columns = {**types, **self._types_of_features(project, refs)}
        except Unavailable:
            types, columns = {}, {}  # Core unreachable: type entity values from Python, as Feast 0.9 does
        columnar = build_columnar_request(refs, rows, project, types) if self._columnar_ok else None
        if columnar is not None:
            try:
                answer = self._call(
                    "Serving",
                    self.config.serving_url,
                    self._columnar_stub.GetOnlineFeaturesColumnar,
                    columnar,
                )
                return OnlineResponse.from_columnar(columnar, answer, columns)
            except Unimplemented:
                self._columnar_ok = False  # a Feast-only server: use the row API from now on
        request = build_request(refs, rows, project, types)
        entities = dict.fromkeys(name for row in request.entity_rows for name in row.fields)
        order = [*entities, *(f"{r.feature_table}:{r.name}" for r in request.features)]
        answer = self._serving_call(self.serving.GetOnlineFeaturesV2, request)
        return OnlineResponse.from_rows(answer, order, columns)

    @property
    def _columnar_stub(self) -> Any:
        from provender.proto.provender.serving import ColumnarServing_pb2_grpc

        return ColumnarServing_pb2_grpc.ColumnarServingServiceStub(self._channel("serving"))

    def staging_location(self) -> str:
        """Where entity DataFrames are staged: the client's staging_location (spark_staging_location in Feast
        0.9 terms), else the one Core was started with."""
        if not self._staging_location:
            from provender.proto.provender.core import ClientSupport_pb2, ClientSupport_pb2_grpc

            stub = ClientSupport_pb2_grpc.ClientSupportServiceStub(self._channel("core"))
            try:
                answer = self._core_call(stub.GetClientDefaults, ClientSupport_pb2.GetClientDefaultsRequest())
                self._staging_location = answer.staging_location
            except Unimplemented:
                pass
        if not self._staging_location:
            raise InvalidArgument(
                "staging_location",
                "",
                "a folder the jobs can read, to stage the entity rows in: Client(staging_location=...) or "
                "spark_staging_location=..., PROVENDER_STAGING_LOCATION (Core did not say where its own is)",
            )
        return self._staging_location

    def _stage(self, frame: Any) -> str:
        import pandas as pd

        from provender.storage import filesystem, join

        url = join(self.staging_location(), "entities", f"{uuid.uuid4().hex}.parquet")
        frame = frame.copy()
        # To microseconds (Spark's precision), keeping the column's zone: naive stays naive (the job reads it as
        # UTC) and so comes back naive; tz-aware goes in, and comes back, as UTC.
        times = pd.to_datetime(frame["event_timestamp"])
        if times.dt.tz is not None:
            frame["event_timestamp"] = times.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        else:
            frame["event_timestamp"] = times.astype("datetime64[us]")
        fs, path = filesystem(url)
        try:
            fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(path) as out:
                frame.to_parquet(out, index=False)
        except OSError as e:
            raise InvalidArgument(
                "staging_location", self.staging_location(), f"a location this process can write ({e})"
            ) from None
        return url

    def get_historical_features(
        self,
        feature_refs: Iterable[str],
        entity_source: Any,
        output_location: str | None = None,
        project: str | None = None,
    ) -> RetrievalJob:
        """Start a point-in-time correct retrieval for the entity rows: a DataFrame with the entity columns and
        `event_timestamp` (staged under the staging location), the URL or path of a parquet or CSV file, or a
        FileSource. Returns the job; `.to_df()` waits and reads the output with the DataFrame's own dtypes."""
        import pandas as pd

        from provender.storage import join, to_url

        project = self._project_or_default(project)
        timestamp_column = "event_timestamp"
        dtypes: dict[str, Any] = {}
        if isinstance(entity_source, pd.DataFrame):
            if "event_timestamp" not in entity_source.columns:
                raise InvalidArgument(
                    "entity_source columns",
                    list(entity_source.columns),
                    "the entity columns and event_timestamp",
                )
            dtypes = dict(entity_source.dtypes)
            url = self._stage(entity_source)
        elif isinstance(entity_source, str | Path):
            url = to_url(entity_source)
        elif isinstance(entity_source, FileSource):
            url, timestamp_column = entity_source.file_url, entity_source.event_timestamp_column
        else:
            raise InvalidArgument(
                "entity_source", type(entity_source).__name__, "a DataFrame, a FileSource, a path or a URL"
            )
        if output_location is None and self.config.historical_feature_output_location:
            output_location = join(self.config.historical_feature_output_location, uuid.uuid4().hex)
        file_format = DataFormat_pb2.FileFormat(parquet_format=DataFormat_pb2.FileFormat.ParquetFormat())
        source = DataSource_pb2.DataSource(
            type=DataSource_pb2.DataSource.BATCH_FILE,
            event_timestamp_column=timestamp_column,
            file_options=DataSource_pb2.DataSource.FileOptions(file_format=file_format, file_url=url),
        )
        request = jobs_pb.GetHistoricalFeaturesRequest(
            feature_refs=list(feature_refs),
            entity_source=source,
            project=project,
            output_location=output_location or "",
            output_format=self.config.historical_feature_output_format,
        )
        answer = self._jobs_call(self.jobs.GetHistoricalFeatures, request)
        return RetrievalJob(
            answer.id,
            answer.output_file_uri,
            self.get_job,
            self.cancel_job,
            entity_dtypes=dtypes,
            timeout=self.config.job_timeout,
            start_time=from_timestamp(answer.job_start_time) if answer.HasField("job_start_time") else None,
            log_uri=answer.log_uri,
        )

    # jobs ------------------------------------------------------------------------------------------------

    def start_offline_to_online_ingestion(
        self, feature_table: str | FeatureTable, start: datetime, end: datetime, project: str | None = None
    ) -> IngestionJob:
        """Load the table's batch data with start <= event time < end into the online store."""
        name = feature_table.name if isinstance(feature_table, FeatureTable) else feature_table
        request = jobs_pb.StartOfflineToOnlineIngestionJobRequest(
            project=self._project_or_default(project),
            table_name=name,
            start_date=to_timestamp(start),
            end_date=to_timestamp(end),
        )
        answer = self._jobs_call(self.jobs.StartOfflineToOnlineIngestionJob, request)
        return IngestionJob(
            answer.id,
            self.get_job,
            self.cancel_job,
            table_name=name,
            timeout=self.config.job_timeout,
            start_time=from_timestamp(answer.job_start_time) if answer.HasField("job_start_time") else None,
            log_uri=answer.log_uri,
        )

    def start_stream_to_online_ingestion(
        self,
        feature_table: str | FeatureTable,
        extra_jars: Iterable[str] | None = None,
        project: str | None = None,
    ) -> IngestionJob:
        """Start the table's stream ingestion (Feast 0.9's name; extra_jars are the server's business)."""
        name = feature_table.name if isinstance(feature_table, FeatureTable) else feature_table
        request = jobs_pb.StartStreamToOnlineIngestionJobRequest(
            project=self._project_or_default(project), table_name=name
        )
        answer = self._jobs_call(self.jobs.StartStreamToOnlineIngestionJob, request)
        return IngestionJob(
            answer.id, self.get_job, self.cancel_job, table_name=name, timeout=self.config.job_timeout
        )

    def produce_to_stream(
        self, feature_table: str | FeatureTable, df: Any, project: str | None = None, timeout: float = 30.0
    ) -> Produced:
        """Send the rows of a pandas DataFrame (columns: the message's fields) to the table's Kafka topic, in its
        message format; returns when Kafka acknowledged them. For notebooks and tests; needs provender[kafka]."""
        from provender.data_source import KafkaSource
        from provender.stream_producer import produce

        table = (
            feature_table
            if isinstance(feature_table, FeatureTable)
            else self.get_feature_table(feature_table, project)
        )
        source = table.stream_source
        if not isinstance(source, KafkaSource):
            raise InvalidArgument(
                "feature_table", table.name, "a feature table with a KafkaSource stream source"
            )
        if not source.bootstrap_servers:  # the deployment's Kafka, as Core's stream job reads it
            if not self.config.kafka_bootstrap_servers:
                raise InvalidArgument(
                    "kafka_bootstrap_servers",
                    "",
                    f"the deployment's Kafka brokers (host:port,...), as table {table.name!r}'s KafkaSource "
                    "names none: Client(kafka_bootstrap_servers=...) or PROVENDER_KAFKA_BOOTSTRAP_SERVERS",
                )
            source = dataclasses.replace(source, bootstrap_servers=self.config.kafka_bootstrap_servers)
        return produce(source, df, timeout)

    def schedule_offline_to_online_ingestion(
        self,
        feature_table: str | FeatureTable,
        ingestion_timespan: int,
        cron_schedule: str,
        project: str | None = None,
    ) -> None:
        """Ingest the last `ingestion_timespan` days on the cron schedule (e.g. "0 * * * *")."""
        name = feature_table.name if isinstance(feature_table, FeatureTable) else feature_table
        self._jobs_call(
            self.jobs.ScheduleOfflineToOnlineIngestionJob,
            jobs_pb.ScheduleOfflineToOnlineIngestionJobRequest(
                project=self._project_or_default(project),
                table_name=name,
                ingestion_timespan=ingestion_timespan,
                cron_schedule=cron_schedule,
            ),
        )

    def unschedule_offline_to_online_ingestion(
        self, feature_table: str | FeatureTable, project: str | None = None
    ) -> None:
        name = feature_table.name if isinstance(feature_table, FeatureTable) else feature_table
        self._jobs_call(
            self.jobs.UnscheduleOfflineToOnlineIngestionJob,
            jobs_pb.UnscheduleOfflineToOnlineIngestionJobRequest(
                project=self._project_or_default(project), table_name=name
            ),
        )

    def list_jobs(
        self,
        include_terminated: bool = True,
        table_name: str | None = "",
        project: str | None = None,
        job_type: str | None = None,
    ) -> list[JobInfo]:
        """Jobs, newest first; `job_type`: "batch", "stream" or "retrieval" (default: all)."""
        types = {
            "batch": "BATCH_INGESTION_JOB",
            "stream": "STREAM_INGESTION_JOB",
            "retrieval": "RETRIEVAL_JOB",
        }
        if job_type is not None and job_type not in types:
            raise InvalidArgument("job_type", job_type, "batch, stream or retrieval")
        request = jobs_pb.ListJobsRequest(
            include_terminated=include_terminated, table_name=table_name or "", project=project or ""
        )
        jobs = [JobInfo.from_proto(j) for j in self._jobs_call(self.jobs.ListJobs, request).jobs]
        return [j for j in jobs if job_type is None or j.type == types[job_type]]

    def get_job(self, job_id: str) -> JobInfo:
        """The job's state; once it is DONE, with what it reported (rows read, written, ...)."""
        job = self._jobs_call(self.jobs.GetJob, jobs_pb.GetJobRequest(job_id=job_id)).job
        streaming = job.type == jobs_pb.STREAM_INGESTION_JOB and job.status == jobs_pb.JOB_STATUS_RUNNING
        report = (
            self._job_report(job_id, keep=not streaming)
            if job.status == jobs_pb.JOB_STATUS_DONE or streaming
            else None
        )
        return JobInfo.from_proto(job, report)

    def get_job_by_id(self, job_id: str) -> RemoteJob:
        """The job as an object with Feast 0.9's methods (get_status, cancel, ...), as Feast 0.9 names it."""
        info = self.get_job(job_id)
        common: dict[str, Any] = {
            "timeout": self.config.job_timeout,
            "start_time": info.start_time,
            "log_uri": info.log_uri,
        }
        if info.type == "RETRIEVAL_JOB":
            return RetrievalJob(job_id, info.output_location, self.get_job, self.cancel_job, **common)
        return IngestionJob(job_id, self.get_job, self.cancel_job, table_name=info.table_name, **common)

    def _job_report(self, job_id: str, keep: bool = True) -> dict[str, Any]:
        """What the job reported (a finished job's report never changes: `keep` it; a stream's is its latest)."""
        import json

        from provender.proto.provender.core import ClientSupport_pb2, ClientSupport_pb2_grpc

        if job_id not in self._reports:
            stub = ClientSupport_pb2_grpc.ClientSupportServiceStub(self._channel("core"))
            try:
                answer = self._core_call(
                    stub.GetJobReport, ClientSupport_pb2.GetJobReportRequest(job_id=job_id)
                )
            except ProvenderError:  # a server without it, or a JobService apart from Core: no report
                return {}
            report = json.loads(answer.summary_json) if answer.summary_json else {}
            if not keep:
                return report
            self._reports[job_id] = report
        return self._reports[job_id]

    def cancel_job(self, job_id: str) -> None:
        self._jobs_call(self.jobs.CancelJob, jobs_pb.CancelJobRequest(job_id=job_id))
