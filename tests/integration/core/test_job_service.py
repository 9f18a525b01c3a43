"""The JobService through gRPC with the local launcher: real spark-submit jobs writing real Redis and parquet."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from provender.core.app import CoreSettings, start_core
from provender.kernel.online import layout as redis_layout
from provender.kernel.value_types import ValueType, to_value
from provender.proto.feast.core import CoreService_pb2 as core_pb
from provender.proto.feast.core import CoreService_pb2_grpc, DataFormat_pb2, DataSource_pb2
from provender.proto.feast.core import JobService_pb2 as legacy_pb
from provender.proto.feast.core import JobService_pb2_grpc as legacy_grpc
from provender.proto.feast_spark.api import JobService_pb2 as pb
from provender.proto.feast_spark.api import JobService_pb2_grpc
from tests import factories as f

# Data ends at the current hour: keys expire at event time + max_age, so old rows would vanish from Redis at once.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=47)
DRIVERS = [1001, 1002, 1003]


def ts(when: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(when)
    return out


def write_driver_stats(folder: Path) -> pd.DataFrame:
    """Hourly rows for three drivers over two days, partitioned by date."""
    rng = np.random.default_rng(3)
    times = pd.date_range(T0, periods=48, freq="h", tz="UTC")
    frame = pd.DataFrame([(d, t) for t in times for d in DRIVERS], columns=["driver_id", "event_timestamp"])
    frame["conv_rate"] = rng.random(len(frame)).astype("float32")
    frame["trips"] = rng.integers(0, 50, len(frame)).astype("int64")
    frame["created"] = frame["event_timestamp"] + timedelta(minutes=1)
    frame["date"] = frame["event_timestamp"].dt.strftime("%Y-%m-%d")
    frame.to_parquet(folder, partition_cols=["date"], index=False)
    return frame


def file_source(url: str) -> DataSource_pb2.DataSource:
    return f.file_source(url, field_mapping={})


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory):
    """A real Pushgateway when Debian's package is installed (the ingestion job pushes its metrics there)."""
    import shutil

    if shutil.which("prometheus-pushgateway") is None:
        yield None
        return
    from tests.integration.observability.servers import Pushgateway

    gateway = Pushgateway(tmp_path_factory.mktemp("pushgateway"))
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def jobs_env(postgres, redis_server, pushgateway, tmp_path_factory):
    base = tmp_path_factory.mktemp("jobs")
    data = write_driver_stats(base / "driver_stats")
    settings = CoreSettings(
        postgres_url=postgres.create_database(f"jobs_{int(time.time() * 1000)}"),
        port=0,
        host="127.0.0.1",
        spark_launcher="local",
        spark_master="local[1]",
        staging_location=(base / "staging").as_uri(),
        redis_url=redis_server.url,
        launcher_work_dir=str(base / "launcher"),
        reconcile_seconds=1.0,
        pushgateway_url=pushgateway.url if pushgateway else "",
    )
    running = start_core(settings)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    core = CoreService_pb2_grpc.CoreServiceStub(channel)
    core.ApplyEntity(core_pb.ApplyEntityRequest(spec=f.entity("driver_id", ValueType.INT64)))
    table = f.table(
        "driver_hourly",
        features=(f.feature("conv_rate", ValueType.FLOAT), f.feature("trips", ValueType.INT64)),
        max_age_seconds=3 * 3600,
    )
    table.batch_source.CopyFrom(file_source((base / "driver_stats").as_uri()))
    core.ApplyFeatureTable(core_pb.ApplyFeatureTableRequest(table_spec=table))
    env = {
        "settings": settings,
        "running": running,
        "channel": channel,
        "jobs": JobService_pb2_grpc.JobServiceStub(channel),
        "data": data,
        "base": base,
        "pushgateway": pushgateway,
    }
    yield env
    channel.close()
    env["running"].stop(grace=1)


def wait_done(jobs, job_id: str, timeout: float = 300) -> pb.Job:
    deadline = time.monotonic() + timeout
    while True:
        job = jobs.GetJob(pb.GetJobRequest(job_id=job_id)).job
        if job.status in (pb.JOB_STATUS_DONE, pb.JOB_STATUS_ERROR):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {pb.JobStatus.Name(job.status)}"
        time.sleep(1)


def start_ingestion(jobs, start: datetime, end: datetime) -> pb.StartOfflineToOnlineIngestionJobResponse:
    return jobs.StartOfflineToOnlineIngestionJob(
        pb.StartOfflineToOnlineIngestionJobRequest(
            table_name="driver_hourly", start_date=ts(start), end_date=ts(end)
        )
    )


def test_ingestion_writes_the_latest_rows_to_redis(jobs_env, redis_server):
    jobs, data = jobs_env["jobs"], jobs_env["data"]
    end = T0 + timedelta(hours=48)
    started = start_ingestion(jobs, T0, end)
    assert started.table_name == "driver_hourly" and started.id.startswith("ingest-")
    job = wait_done(jobs, started.id)
    assert job.status == pb.JOB_STATUS_DONE, job.error_message
    assert job.batch_ingestion.table_name == "driver_hourly" and job.log_uri

    client = redis_server.client()
    window = data[(data.event_timestamp >= T0) & (data.event_timestamp < end)]
    for driver in DRIVERS:
        latest = window[window.driver_id == driver].sort_values("event_timestamp").iloc[-1]
        key = redis_layout.entity_key("default", {"driver_id": to_value(driver, ValueType.INT64)})
        stored = client.hgetall(key)
        conv = redis_layout.decode_value(stored[redis_layout.feature_field("driver_hourly", "conv_rate")])
        trips = redis_layout.decode_value(stored[redis_layout.feature_field("driver_hourly", "trips")])
        assert conv.float_val == pytest.approx(float(latest.conv_rate))
        assert trips.int64_val == int(latest.trips)
        when = redis_layout.decode_timestamp_ns(stored[redis_layout.ts_field("driver_hourly")])
        assert when == pd.Timestamp(latest.event_timestamp).value

    health = jobs.GetHealthMetrics(pb.GetHealthMetricsRequest(table_names=["driver_hourly"]))
    assert list(health.passed) == ["driver_hourly"] and list(health.failed) == []

    gateway = jobs_env["pushgateway"]
    if gateway is not None:  # the real job pushed its figures, grouped by table, carrying its job id
        pushed = gateway.metrics_text()
        group = 'feature_table="driver_hourly",instance="",job="provender_ingestion",project="default"'
        ours = [line for line in pushed.splitlines() if line.startswith("provender_ingestion_rows_written")]
        assert f"provender_ingestion_rows_written{{{group}}} {len(DRIVERS)}" in ours, ours
        assert f'job_id="{started.id}"' in pushed and 'outcome="success"' in pushed


def test_historical_retrieval_is_point_in_time_correct(jobs_env):
    jobs, data, base = jobs_env["jobs"], jobs_env["data"], jobs_env["base"]
    entities = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1003, 1001, 9999],
            "event_timestamp": pd.to_datetime(
                [
                    T0 + timedelta(hours=5, minutes=30),
                    T0 + timedelta(hours=10),
                    T0 - timedelta(hours=1),
                    T0 + timedelta(hours=47, minutes=59),
                    T0 + timedelta(hours=3),
                ],
                utc=True,
            ),
        }
    )
    entity_file = base / "entities.parquet"
    entities.to_parquet(entity_file, index=False)
    source = DataSource_pb2.DataSource(
        type=DataSource_pb2.DataSource.BATCH_FILE,
        event_timestamp_column="event_timestamp",
        file_options=DataSource_pb2.DataSource.FileOptions(
            file_format=DataFormat_pb2.FileFormat(parquet_format=DataFormat_pb2.FileFormat.ParquetFormat()),
            file_url=entity_file.as_uri(),
        ),
    )
    answer = jobs.GetHistoricalFeatures(
        pb.GetHistoricalFeaturesRequest(
            feature_refs=["driver_hourly:conv_rate", "driver_hourly:trips"],
            entity_source=source,
            output_location=(base / "out").as_uri(),
        )
    )
    assert answer.output_file_uri.startswith((base / "out").as_uri())
    job = wait_done(jobs, answer.id)
    assert job.status == pb.JOB_STATUS_DONE, job.error_message
    assert job.retrieval.output_location == answer.output_file_uri

    got = pd.read_parquet(answer.output_file_uri.removeprefix("file://"))
    got = got.sort_values(["event_timestamp", "driver_id"]).reset_index(drop=True)
    # Oracle: the latest row at or before each entity row's time, within max_age (3 h).
    oracle = pd.merge_asof(
        entities.sort_values("event_timestamp"),
        data.sort_values("event_timestamp")[["event_timestamp", "driver_id", "conv_rate", "trips"]].assign(
            feature_time=lambda d: d.event_timestamp
        ),
        on="event_timestamp",
        by="driver_id",
        tolerance=pd.Timedelta(hours=3),
        direction="backward",
    ).reset_index(drop=True)
    assert list(got.driver_id) == list(oracle.driver_id)
    np.testing.assert_allclose(
        got["driver_hourly__conv_rate"].astype(float), oracle["conv_rate"].astype(float)
    )
    assert got["driver_hourly__trips"].isna().tolist() == oracle["trips"].isna().tolist()
    assert (
        got["driver_hourly__trips"].dropna().astype(int).tolist()
        == oracle["trips"].dropna().astype(int).tolist()
    )


def test_same_request_is_the_same_job_and_cancel_stops_it(jobs_env):
    jobs = jobs_env["jobs"]
    first = start_ingestion(jobs, T0, T0 + timedelta(hours=2))
    again = start_ingestion(jobs, T0, T0 + timedelta(hours=2))
    assert again.id == first.id  # active: not launched twice
    jobs.CancelJob(pb.CancelJobRequest(job_id=first.id))
    job = jobs.GetJob(pb.GetJobRequest(job_id=first.id)).job
    assert job.status == pb.JOB_STATUS_ERROR and "cancelled" in job.error_message
    rerun = start_ingestion(jobs, T0, T0 + timedelta(hours=2))
    assert rerun.id == f"{first.id}-2"  # a new attempt after a finished one
    jobs.CancelJob(pb.CancelJobRequest(job_id=rerun.id))
    listed = jobs.ListJobs(pb.ListJobsRequest(include_terminated=True, table_name="driver_hourly")).jobs
    assert {first.id, rerun.id} <= {j.id for j in listed}
    assert all(j.id not in {first.id, rerun.id} for j in jobs.ListJobs(pb.ListJobsRequest()).jobs)


def test_core_restart_mid_job_reconciles_without_duplicating(jobs_env):
    settings, jobs = jobs_env["settings"], jobs_env["jobs"]
    started = start_ingestion(jobs, T0 + timedelta(hours=1), T0 + timedelta(hours=20))
    jobs_env["channel"].close()
    jobs_env["running"].stop(grace=1)  # Core goes away while the Spark job runs

    running = start_core(settings)  # a new Core on the same database
    jobs_env["running"] = running
    jobs_env["channel"] = channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    jobs_env["jobs"] = jobs = JobService_pb2_grpc.JobServiceStub(channel)

    assert start_ingestion(jobs, T0 + timedelta(hours=1), T0 + timedelta(hours=20)).id == started.id
    job = wait_done(jobs, started.id)
    assert job.status == pb.JOB_STATUS_DONE, job.error_message
    same_base = [
        j
        for j in jobs.ListJobs(pb.ListJobsRequest(include_terminated=True)).jobs
        if j.id.startswith(started.id)
    ]
    assert [j.id for j in same_base] == [started.id]


def test_schedules_survive_restart_and_start_jobs(jobs_env):
    jobs, running = jobs_env["jobs"], jobs_env["running"]
    with pytest.raises(grpc.RpcError) as bad:
        jobs.ScheduleOfflineToOnlineIngestionJob(
            pb.ScheduleOfflineToOnlineIngestionJobRequest(
                table_name="driver_hourly", ingestion_timespan=1, cron_schedule="every hour"
            )
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "cron_schedule" in bad.value.details()
    for too_often, every in (("* * * * * *", "1 s"), ("* * * * * */20", "20 s")):
        with pytest.raises(grpc.RpcError) as bad:  # a sixth field: seconds; the default minimum is a minute
            jobs.ScheduleOfflineToOnlineIngestionJob(
                pb.ScheduleOfflineToOnlineIngestionJobRequest(
                    table_name="driver_hourly", ingestion_timespan=1, cron_schedule=too_often
                )
            )
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, too_often
        assert (
            f"starts one every {every}" in bad.value.details() and "at most every 60 s" in bad.value.details()
        )
    jobs.ScheduleOfflineToOnlineIngestionJob(
        pb.ScheduleOfflineToOnlineIngestionJobRequest(
            table_name="driver_hourly", ingestion_timespan=2, cron_schedule="0 * * * *"
        )
    )
    schedules = running.schedules.list()
    assert [(s.table_name, s.cron, s.ingestion_timespan_days) for s in schedules] == [
        ("driver_hourly", "0 * * * *", 2)
    ]
    started = running.schedules.run_due(now=schedules[0].next_run_at + timedelta(seconds=1))
    assert len(started) == 1
    jobs.CancelJob(pb.CancelJobRequest(job_id=started[0]))
    after = running.schedules.list()[0]
    assert after.last_job_id == started[0] and after.next_run_at > schedules[0].next_run_at
    jobs.UnscheduleOfflineToOnlineIngestionJob(
        pb.UnscheduleOfflineToOnlineIngestionJobRequest(table_name="driver_hourly")
    )
    assert running.schedules.list() == []
    with pytest.raises(grpc.RpcError) as gone:
        jobs.UnscheduleOfflineToOnlineIngestionJob(
            pb.UnscheduleOfflineToOnlineIngestionJobRequest(table_name="driver_hourly")
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_errors_name_what_is_wrong(jobs_env):
    jobs = jobs_env["jobs"]

    def code_of(call, request) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as info:
            call(request)
        return info.value.code(), info.value.details()

    code, msg = code_of(
        jobs.StartOfflineToOnlineIngestionJob, pb.StartOfflineToOnlineIngestionJobRequest(table_name="ghost")
    )
    assert code == grpc.StatusCode.NOT_FOUND and "ghost" in msg
    code, msg = code_of(
        jobs.StartOfflineToOnlineIngestionJob,
        pb.StartOfflineToOnlineIngestionJobRequest(
            table_name="driver_hourly", start_date=ts(T0), end_date=ts(T0)
        ),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "end_date" in msg
    code, msg = code_of(
        jobs.GetHistoricalFeatures, pb.GetHistoricalFeaturesRequest(feature_refs=["no_colon"])
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, msg = code_of(
        jobs.StartStreamToOnlineIngestionJob,
        pb.StartStreamToOnlineIngestionJobRequest(table_name="driver_hourly"),
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "no stream source" in msg
    code, msg = code_of(jobs.GetJob, pb.GetJobRequest(job_id="ingest-0000000000000000"))
    assert code == grpc.StatusCode.NOT_FOUND and "ingest-0000000000000000" in msg
    code, msg = code_of(jobs.GetJob, pb.GetJobRequest(job_id="nope"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("job_id")


def test_core_without_an_online_store_refuses_ingestion_clearly(jobs_env):
    settings = jobs_env["settings"]
    from dataclasses import replace

    running = start_core(replace(settings, redis_url=""))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            jobs = JobService_pb2_grpc.JobServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                jobs.StartOfflineToOnlineIngestionJob(
                    pb.StartOfflineToOnlineIngestionJobRequest(table_name="driver_hourly")
                )
            assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "--redis-url" in info.value.details()
    finally:
        running.stop(grace=1)


def test_legacy_service_name_lists_and_gets_jobs(jobs_env):
    legacy = legacy_grpc.JobServiceStub(jobs_env["channel"])
    listed = legacy.ListJobs(legacy_pb.ListJobsRequest(include_terminated=True)).jobs
    assert listed, "the jobs of the earlier tests are listed without a project"
    got = legacy.GetJob(legacy_pb.GetJobRequest(job_id=listed[0].id)).job
    assert (
        got.id == listed[0].id and got.type == legacy_pb.BATCH_INGESTION_JOB
    ) or got.type == legacy_pb.RETRIEVAL_JOB
