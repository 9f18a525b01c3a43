"""The Provender client: registry, online features and jobs from one object.

    from provender import Client
    client = Client(core_url="localhost:6565", serving_url="localhost:6566")

Calls raise `provender.errors` types with the server's message; an unreachable service names its URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc

from provender import config as config_module
from provender.entity import Entity
from provender.errors import InvalidArgument, Unavailable, Unimplemented, from_status
from provender.feature import Feature
from provender.feature_table import FeatureTable
from provender.ingest import IngestResult
from provender.online import OnlineResponse, build_columnar_request, build_request
from provender.proto.feast.core import CoreService_pb2 as core_pb
from provender.proto.feast.core import CoreService_pb2_grpc, DataFormat_pb2, DataSource_pb2
from provender.proto.feast.serving import ServingService_pb2_grpc
from provender.proto.feast_spark.api import JobService_pb2 as jobs_pb
from provender.proto.feast_spark.api import JobService_pb2_grpc
from provender.remote_job import IngestionJob, JobInfo, RetrievalJob
from provender.timestamps import to_timestamp
from provender.value_type import ValueType

T = TypeVar("T")
Applicable = Entity | FeatureTable


class Client:
    def __init__(
        self,
        core_url: str | None = None,
        serving_url: str | None = None,
        job_service_url: str | None = None,
        project: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.config = config_module.resolve(
            core_url=core_url,
            serving_url=serving_url,
            job_service_url=job_service_url,
            project=project,
            timeout=timeout,
        )
        self._project = self.config.project
        self._channels: dict[str, grpc.Channel] = {}
        self._entity_types: dict[str, dict[str, ValueType]] = {}
        self._columnar_ok = True

    # plumbing --------------------------------------------------------------------------------------------

    @property
    def project(self) -> str:
        return self._project

    def set_project(self, project: str) -> None:
        self._project = project

    def _project_or_default(self, project: str | None) -> str:
        return project if project is not None else self._project

    def _channel(self, url: str) -> grpc.Channel:
        if url not in self._channels:
            self._channels[url] = grpc.insecure_channel(url)
        return self._channels[url]

    @property
    def core(self) -> CoreService_pb2_grpc.CoreServiceStub:
        return CoreService_pb2_grpc.CoreServiceStub(self._channel(self.config.core_url))

    @property
    def serving(self) -> ServingService_pb2_grpc.ServingServiceStub:
        return ServingService_pb2_grpc.ServingServiceStub(self._channel(self.config.serving_url))

    @property
    def jobs(self) -> JobService_pb2_grpc.JobServiceStub:
        return JobService_pb2_grpc.JobServiceStub(self._channel(self.config.jobs_url))

    def _call(self, service: str, url: str, method: Callable[..., T], request: Any) -> T:
        try:
            return method(request, timeout=self.config.timeout)
        except grpc.RpcError as e:
            code, details = e.code(), e.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE and ("connect" in details.lower() or "DNS" in details):
                raise Unavailable(
                    f"cannot reach Provender {service} at {url}: is it running? ({details})"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise Unavailable(
                    f"Provender {service} at {url} did not answer within {self.config.timeout:g}s"
                ) from None
            raise from_status(code.name, details) from None

    def _core_call(self, method: Callable[..., T], request: Any) -> T:
        return self._call("Core", self.config.core_url, method, request)

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

    def apply(
        self, objects: Applicable | Iterable[Applicable], project: str | None = None
    ) -> list[Applicable]:
        """Create or update entities and feature tables (entities first); returns them as stored."""
        items = [objects] if isinstance(objects, Entity | FeatureTable) else list(objects)
        for i, obj in enumerate(items):
            if not isinstance(obj, Entity | FeatureTable):
                raise InvalidArgument(f"objects[{i}]", type(obj).__name__, "an Entity or a FeatureTable")
        ordered = sorted(items, key=lambda o: 0 if isinstance(o, Entity) else 1)
        project = self._project_or_default(project)
        applied: list[Applicable] = []
        for obj in ordered:
            if isinstance(obj, Entity):
                r = self._core_call(
                    self.core.ApplyEntity, core_pb.ApplyEntityRequest(spec=obj.to_proto(), project=project)
                )
                applied.append(Entity.from_proto(r.entity))
            else:
                r2 = self._core_call(
                    self.core.ApplyFeatureTable,
                    core_pb.ApplyFeatureTableRequest(table_spec=obj.to_proto(), project=project),
                )
                applied.append(FeatureTable.from_proto(r2.table))
        return applied

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

    # data: ingest, online, historical -------------------------------------------------------------------

    def _types_of_entities(self, project: str) -> dict[str, ValueType]:
        if project not in self._entity_types:
            self._entity_types[project] = {e.name: e.value_type for e in self.list_entities(project=project)}
        return self._entity_types[project]

    def ingest(self, table: str | FeatureTable, data: Any, project: str | None = None) -> IngestResult:
        """Write a DataFrame (or a parquet/CSV file) into the table's batch source as parquet, partitioned by
        its date partition column. Every column is checked against the table first; nothing is written when
        one is missing or a value does not fit its type."""
        import pandas as pd

        from provender import ingest as writer

        project = self._project_or_default(project)
        name = table.name if isinstance(table, FeatureTable) else table
        spec = self.get_feature_table(name, project=project)
        if isinstance(data, str | Path):
            path = str(data)
            data = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
        if not isinstance(data, pd.DataFrame):
            raise InvalidArgument(
                "data", type(data).__name__, "a pandas DataFrame or the path of a parquet or CSV file"
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
        try:
            types = self._types_of_entities(project)
        except Unavailable:
            types = {}  # Core unreachable: type entity values from Python, as Feast 0.9 does
        refs, rows = list(feature_refs), list(entity_rows)
        columnar = build_columnar_request(refs, rows, project, types) if self._columnar_ok else None
        if columnar is not None:
            try:
                answer = self._call(
                    "Serving",
                    self.config.serving_url,
                    self._columnar_stub.GetOnlineFeaturesColumnar,
                    columnar,
                )
                return OnlineResponse.from_columnar(columnar, answer)
            except Unimplemented:
                self._columnar_ok = False  # a Feast-only server: use the row API from now on
        request = build_request(refs, rows, project, types)
        entities = dict.fromkeys(name for row in request.entity_rows for name in row.fields)
        order = [*entities, *(f"{r.feature_table}:{r.name}" for r in request.features)]
        return OnlineResponse.from_rows(self._serving_call(self.serving.GetOnlineFeaturesV2, request), order)

    @property
    def _columnar_stub(self) -> Any:
        from provender.proto.provender.serving import ColumnarServing_pb2_grpc

        return ColumnarServing_pb2_grpc.ColumnarServingServiceStub(self._channel(self.config.serving_url))

    def get_historical_features(
        self,
        feature_refs: Iterable[str],
        entity_source: Any,
        project: str | None = None,
        output_location: str | None = None,
    ) -> RetrievalJob:
        """Start a point-in-time correct retrieval for the entity rows (a DataFrame with the entity columns and
        `event_timestamp`, or the URL/path of a parquet or CSV file); returns the job (`.to_df()` waits)."""
        import pandas as pd

        from provender.storage import filesystem, join, to_url

        project = self._project_or_default(project)
        if isinstance(entity_source, pd.DataFrame):
            if "event_timestamp" not in entity_source.columns:
                raise InvalidArgument(
                    "entity_source columns",
                    list(entity_source.columns),
                    "the entity columns and event_timestamp",
                )
            if not self.config.staging_location:
                raise InvalidArgument(
                    "staging_location",
                    "",
                    "a folder the jobs can read, to stage the entity rows in (PROVENDER_STAGING_LOCATION, "
                    "or `provender local up` prints it as staging=...)",
                )
            url = join(self.config.staging_location, "entities", f"{uuid.uuid4().hex}.parquet")
            frame = entity_source.copy()
            frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).astype(
                "datetime64[us, UTC]"
            )
            fs, path = filesystem(url)
            fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(path) as out:
                frame.to_parquet(out, index=False)
        elif isinstance(entity_source, str | Path):
            url = to_url(entity_source)
        else:
            raise InvalidArgument(
                "entity_source", type(entity_source).__name__, "a DataFrame, a path or a URL"
            )
        source = DataSource_pb2.DataSource(
            type=DataSource_pb2.DataSource.BATCH_FILE,
            event_timestamp_column="event_timestamp",
            file_options=DataSource_pb2.DataSource.FileOptions(
                file_format=DataFormat_pb2.FileFormat(
                    parquet_format=DataFormat_pb2.FileFormat.ParquetFormat()
                ),
                file_url=url,
            ),
        )
        request = jobs_pb.GetHistoricalFeaturesRequest(
            feature_refs=list(feature_refs),
            entity_source=source,
            project=project,
            output_location=output_location or "",
            output_format="parquet",
        )
        answer = self._jobs_call(self.jobs.GetHistoricalFeatures, request)
        return RetrievalJob(answer.id, answer.output_file_uri, self.get_job, self.cancel_job)

    # jobs ------------------------------------------------------------------------------------------------

    def start_offline_to_online_ingestion(
        self, table: str | FeatureTable, start: datetime, end: datetime, project: str | None = None
    ) -> IngestionJob:
        """Load the table's batch data with start <= event time < end into the online store."""
        name = table.name if isinstance(table, FeatureTable) else table
        request = jobs_pb.StartOfflineToOnlineIngestionJobRequest(
            project=self._project_or_default(project),
            table_name=name,
            start_date=to_timestamp(start),
            end_date=to_timestamp(end),
        )
        answer = self._jobs_call(self.jobs.StartOfflineToOnlineIngestionJob, request)
        return IngestionJob(answer.id, self.get_job, self.cancel_job)

    def schedule_offline_to_online_ingestion(
        self,
        table: str | FeatureTable,
        ingestion_timespan: int,
        cron_schedule: str,
        project: str | None = None,
    ) -> None:
        """Ingest the last `ingestion_timespan` days on the cron schedule (e.g. "0 * * * *")."""
        name = table.name if isinstance(table, FeatureTable) else table
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
        self, table: str | FeatureTable, project: str | None = None
    ) -> None:
        name = table.name if isinstance(table, FeatureTable) else table
        self._jobs_call(
            self.jobs.UnscheduleOfflineToOnlineIngestionJob,
            jobs_pb.UnscheduleOfflineToOnlineIngestionJobRequest(
                project=self._project_or_default(project), table_name=name
            ),
        )

    def list_jobs(
        self, include_terminated: bool = True, table_name: str = "", project: str | None = None
    ) -> list[JobInfo]:
        request = jobs_pb.ListJobsRequest(
            include_terminated=include_terminated, table_name=table_name, project=project or ""
        )
        return [JobInfo.from_proto(j) for j in self._jobs_call(self.jobs.ListJobs, request).jobs]

    def get_job(self, job_id: str) -> JobInfo:
        return JobInfo.from_proto(self._jobs_call(self.jobs.GetJob, jobs_pb.GetJobRequest(job_id=job_id)).job)

    def cancel_job(self, job_id: str) -> None:
        self._jobs_call(self.jobs.CancelJob, jobs_pb.CancelJobRequest(job_id=job_id))
