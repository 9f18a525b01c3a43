"""The JobService over gRPC, registered twice: as feast_spark.api.JobService (feast-spark's client) and as the
legacy feast.core.JobService (the plain feast.Client). One implementation; each registration converts with its
own generated messages, and the legacy one has no schedules, health metrics, project filter or error_message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

import grpc

from provender.core.jobs.controller import EntitySource, JobController
from provender.core.jobs.model import Job, JobType
from provender.core.jobs.schedules import Schedules
from provender.kernel.errors import InvalidArgument
from provender.kernel.timestamps import checked_timestamp, to_timestamp
from provender.proto.feast.core import JobService_pb2 as legacy_pb
from provender.proto.feast.core import JobService_pb2_grpc as legacy_grpc
from provender.proto.feast_spark.api import JobService_pb2 as spark_pb
from provender.proto.feast_spark.api import JobService_pb2_grpc as spark_grpc
from provender.server.runner import Registration


def job_proto(pb: ModuleType, job: Job) -> Any:
    out = pb.Job(
        id=job.id,
        type=job.type.value,
        status=job.status.value,
        hash=job.spec_hash,
        start_time=to_timestamp(job.started_at or job.created_at),
        log_uri=job.log_uri,
    )
    if job.type is JobType.RETRIEVAL:
        out.retrieval.output_location = job.output_uri
    elif job.type is JobType.BATCH_INGESTION:
        out.batch_ingestion.table_name = job.table_name
    else:
        out.stream_ingestion.table_name = job.table_name
    if "error_message" in pb.Job.DESCRIPTOR.fields_by_name:
        out.error_message = job.error_message
    return out


def _optional_time(request: Any, field: str) -> datetime | None:
    return checked_timestamp(field, getattr(request, field)) if request.HasField(field) else None


def entity_source_of(source: Any) -> EntitySource:
    """The entity rows of a retrieval: a file source (parquet, or CSV by its .csv name)."""
    if source.WhichOneof("options") != "file_options" or not source.file_options.file_url:
        raise InvalidArgument(
            "entity_source",
            source.WhichOneof("options") or "unset",
            "a file source with a file_url (parquet or .csv)",
        )
    return EntitySource(
        file_url=source.file_options.file_url,
        event_timestamp_column=source.event_timestamp_column or "event_timestamp",
        field_mapping=dict(source.field_mapping),
    )


class _JobServicer:
    """The RPCs both JobService names share; `pb` is the generated module of the name being served."""

    pb: ModuleType

    def __init__(
        self,
        controller: JobController,
        schedules: Schedules,
        readable: Callable[[str], bool] = lambda p: True,
    ) -> None:
        """`readable`: may the caller being served read a project (ListJobs answers only those jobs)."""
        self.controller = controller
        self.schedules = schedules
        self.readable = readable

    def StartOfflineToOnlineIngestionJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        job = self.controller.start_offline_to_online(
            request.project,
            request.table_name,
            _optional_time(request, "start_date"),
            _optional_time(request, "end_date"),
        )
        return self.pb.StartOfflineToOnlineIngestionJobResponse(
            id=job.id,
            job_start_time=to_timestamp(job.created_at),
            table_name=job.table_name,
            log_uri=job.log_uri,
        )

    def GetHistoricalFeatures(self, request: Any, context: grpc.ServicerContext) -> Any:
        job = self.controller.get_historical_features(
            request.project,
            list(request.feature_refs),
            entity_source_of(request.entity_source),
            request.output_location,
            request.output_format,
        )
        return self.pb.GetHistoricalFeaturesResponse(
            id=job.id,
            output_file_uri=job.output_uri,
            job_start_time=to_timestamp(job.created_at),
            log_uri=job.log_uri,
        )

    def StartStreamToOnlineIngestionJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        job = self.controller.start_stream_to_online(request.project, request.table_name)
        return self.pb.StartStreamToOnlineIngestionJobResponse(
            id=job.id,
            job_start_time=to_timestamp(job.created_at),
            table_name=job.table_name,
            log_uri=job.log_uri,
        )

    def ListJobs(self, request: Any, context: grpc.ServicerContext) -> Any:
        # The legacy request has no project field: all projects then.
        project = (
            request.project if "project" in request.DESCRIPTOR.fields_by_name and request.project else None
        )
        jobs = self.controller.list_jobs(project, request.table_name, request.include_terminated)
        return self.pb.ListJobsResponse(
            jobs=[job_proto(self.pb, j) for j in jobs if self.readable(j.project)]
        )

    def GetJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.pb.GetJobResponse(job=job_proto(self.pb, self.controller.get_job(request.job_id)))

    def CancelJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.controller.cancel_job(request.job_id)
        return self.pb.CancelJobResponse()


class SparkJobServicer(_JobServicer, spark_grpc.JobServiceServicer):
    """feast_spark.api.JobService."""

    pb = spark_pb

    def ScheduleOfflineToOnlineIngestionJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.schedules.schedule(
            request.project, request.table_name, request.ingestion_timespan, request.cron_schedule
        )
        return spark_pb.ScheduleOfflineToOnlineIngestionJobResponse()

    def UnscheduleOfflineToOnlineIngestionJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.schedules.unschedule(request.project, request.table_name)
        return spark_pb.UnscheduleOfflineToOnlineIngestionJobResponse()

    def GetHealthMetrics(self, request: Any, context: grpc.ServicerContext) -> Any:
        passed, failed = self.controller.health(request.project, list(request.table_names))
        return spark_pb.GetHealthMetricsResponse(passed=passed, failed=failed)


class LegacyJobServicer(_JobServicer, legacy_grpc.JobServiceServicer):
    """feast.core.JobService, as the plain Feast 0.9 client calls it."""

    pb = legacy_pb


def register(
    controller: JobController, schedules: Schedules, readable: Callable[[str], bool] = lambda p: True
) -> list[Registration]:
    """Registrations of both service names for provender.server.runner.start_server."""

    def spark(server: grpc.Server) -> str:
        spark_grpc.add_JobServiceServicer_to_server(SparkJobServicer(controller, schedules, readable), server)
        return spark_pb.DESCRIPTOR.services_by_name["JobService"].full_name

    def legacy(server: grpc.Server) -> str:
        legacy_grpc.add_JobServiceServicer_to_server(
            LegacyJobServicer(controller, schedules, readable), server
        )
        return legacy_pb.DESCRIPTOR.services_by_name["JobService"].full_name

    return [spark, legacy]
