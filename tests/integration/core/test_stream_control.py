"""The stream control loop's decisions on a real registry and job store (Postgres), with a launcher that records
what it is asked and answers the states the test gives it (the stream jobs themselves run on real Spark and Kafka
in tests/integration/stream): one job per streamed table, a changed table swaps jobs once the new one runs, a
deleted table or a removed source cancels, a failed job restarts after a growing backoff, a cancelled one stays
cancelled, and two Core replicas never start two jobs for one table."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from provender.core.jobs.controller import JobController, JobSettings, stream_spec_hash
from provender.core.jobs.model import JobStatus, JobType
from provender.core.jobs.store import JobStore
from provender.core.jobs.streams import StreamControl, backoff
from provender.core.launchers.base import Launched, Launcher
from provender.core.launchers.settings import LauncherSettings
from provender.core.registry.database import Database, make_engine, migrate
from provender.core.registry.service import Registry
from provender.kernel.errors import FailedPrecondition
from provender.kernel.jobs.args import JobArgs, StreamIngestionJobArgs
from tests import factories as f


class RecordingLauncher(Launcher):
    """Records submits and cancels; a job's state is what the test sets (RUNNING unless told otherwise)."""

    name = "recording"
    Settings = LauncherSettings

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.submitted: list[tuple[str, StreamIngestionJobArgs]] = []
        self.cancelled: list[str] = []
        self.states: dict[str, tuple[JobStatus, str]] = {}

    def submit(self, job_id: str, args: JobArgs) -> Launched:
        assert isinstance(args, StreamIngestionJobArgs)
        with self.lock:
            if job_id not in self.states:
                self.submitted.append((job_id, args))
                self.states[job_id] = (JobStatus.PENDING, "")
        return Launched(job_id, f"file:///logs/{job_id}")

    def status(self, handle: str) -> tuple[JobStatus, str]:
        return self.states[handle]

    def cancel(self, handle: str) -> None:
        self.cancelled.append(handle)
        self.states[handle] = (JobStatus.ERROR, "cancelled")

    def log_uri(self, handle: str) -> str:
        return f"file:///logs/{handle}"


@pytest.fixture
def env(database_url):
    engine = make_engine(database_url)
    migrate(engine)
    db = Database(engine)
    registry = Registry(db)
    launcher = RecordingLauncher()
    settings = JobSettings(staging_location="file:///tmp/staging", redis_url="redis://127.0.0.1:6379")
    controller = JobController(JobStore(db), registry, launcher, settings)
    registry.apply_entity("default", f.entity())
    yield db, registry, launcher, controller
    engine.dispose()


def control(db, controller, **kw) -> StreamControl:
    return StreamControl(db, controller, backoff_seconds=10, **kw)


def streams(controller) -> list:
    return controller.store.list(include_terminated=True, types=[JobType.STREAM_INGESTION])


def run(launcher, controller, job_id: str) -> None:
    launcher.states[job_id] = (JobStatus.RUNNING, "")
    controller.reconcile(controller.store.get(job_id))


def test_a_streamed_table_gets_one_job_and_keeps_it(env):
    db, registry, launcher, controller = env
    registry.apply_feature_table("default", f.table())  # no stream source: nothing to do
    registry.apply_feature_table("default", f.table("driver_trips", stream=True))
    loop = control(db, controller)
    [action] = loop.tick()
    assert (action.kind, action.table) == ("start", "driver_trips")
    run(launcher, controller, action.job_id)
    assert loop.tick() == [] and loop.tick() == []
    [job] = streams(controller)
    stored = registry.get_feature_table("default", "driver_trips")
    assert (job.status, job.spec_hash) == (JobStatus.RUNNING, stream_spec_hash(stored))
    assert launcher.submitted[0][1].source.topic == "driver_trips"


def test_a_changed_table_swaps_jobs_once_the_new_one_runs(env):
    db, registry, launcher, controller = env
    registry.apply_feature_table("default", f.table("driver_trips", stream=True))
    loop = control(db, controller)
    [first] = loop.tick()
    run(launcher, controller, first.job_id)
    registry.apply_feature_table("default", f.table("driver_trips", stream=True, team="rides"))
    assert loop.tick() == []  # labels are not what a stream job runs for
    registry.apply_feature_table("default", f.table("driver_trips", stream=True, max_age_seconds=3600))
    [second] = loop.tick()
    assert second.kind == "start" and second.job_id != first.job_id
    assert launcher.cancelled == []  # the old job serves until the new one runs
    assert loop.tick() == []  # the new one is still PENDING
    run(launcher, controller, second.job_id)
    [cancel] = loop.tick()
    assert (cancel.kind, cancel.job_id) == ("cancel", first.job_id) and "new spec" in cancel.reason
    assert launcher.cancelled == [first.job_id]
    assert controller.store.get(first.job_id).error_message.startswith("cancelled by the stream control loop")


def test_a_kafka_source_without_brokers_reads_cores_default_and_moves_with_it(env, database_url):
    """A KafkaSource applied with no brokers reads Core's --kafka-bootstrap-servers (the chart's
    kafka.bootstrapServers); a new default is other brokers: a new job with its own checkpoint. Tables that name
    their brokers keep their job."""
    db, _, launcher, controller = env

    def core_with(default: str):
        registry = Registry(db, kafka_bootstrap_servers=default)
        return registry, JobController(JobStore(db), registry, launcher, controller.settings)

    registry, first_core = core_with("kafka-a:9092")
    spec = f.table("driver_trips", stream=True)
    spec.stream_source.kafka_options.bootstrap_servers = ""
    registry.apply_feature_table("default", spec)
    registry.apply_feature_table("default", f.table("named", stream=True))
    loop = control(db, first_core)
    started = {a.table: a.job_id for a in loop.tick()}
    assert dict(launcher.submitted)[started["driver_trips"]].source.bootstrap_servers == "kafka-a:9092"
    named_servers = dict(launcher.submitted)[started["named"]].source.bootstrap_servers
    assert named_servers == f.table(stream=True).stream_source.kafka_options.bootstrap_servers
    for job_id in started.values():
        run(launcher, first_core, job_id)

    _, moved = core_with("kafka-b:9092")
    loop = control(db, moved)
    [start] = loop.tick()  # only the table that uses the default
    assert start.table == "driver_trips"
    args = dict(launcher.submitted)[start.job_id]
    assert args.source.bootstrap_servers == "kafka-b:9092"
    old_args = dict(launcher.submitted)[started["driver_trips"]]
    assert args.checkpoint_location != old_args.checkpoint_location

    _, without = core_with("")
    with pytest.raises(FailedPrecondition, match="--kafka-bootstrap-servers"):
        without.start_stream_to_online("default", "driver_trips")


@pytest.mark.parametrize("how", ["delete the table", "remove its stream source"])
def test_a_table_without_a_stream_any_more_loses_its_job(env, how):
    db, registry, launcher, controller = env
    registry.apply_feature_table("default", f.table("driver_trips", stream=True))
    loop = control(db, controller)
    [started] = loop.tick()
    run(launcher, controller, started.job_id)
    if how == "delete the table":
        registry.delete_feature_table("default", "driver_trips")
    else:
        registry.apply_feature_table("default", f.table("driver_trips"))
    [cancel] = loop.tick()
    assert (cancel.kind, cancel.job_id) == ("cancel", started.job_id)
    assert loop.tick() == []
    assert controller.store.get(started.job_id).status is JobStatus.ERROR


def test_a_failed_job_restarts_after_a_backoff_that_grows(env):
    db, registry, launcher, controller = env
    registry.apply_feature_table("default", f.table("driver_trips", stream=True))
    loop = control(db, controller)
    [first] = loop.tick()
    ids = [first.job_id]
    for attempt in (1, 2, 3):
        launcher.states[ids[-1]] = (JobStatus.ERROR, f"Kafka unreachable ({attempt})")
        failed = controller.reconcile(controller.store.get(ids[-1]))
        assert failed.status is JobStatus.ERROR
        wait = backoff(attempt, 10, 600)
        assert wait == timedelta(seconds=10 * 2 ** (attempt - 1))
        assert loop.tick(now=failed.finished_at + wait - timedelta(seconds=1)) == []  # not yet
        [restart] = loop.tick(now=failed.finished_at + wait)
        assert restart.kind == "restart" and f"({attempt})" in restart.reason
        ids.append(restart.job_id)
    assert ids == [first.job_id, f"{first.job_id}-2", f"{first.job_id}-3", f"{first.job_id}-4"]
    # every failure stays in its own record
    assert [controller.store.get(i).error_message for i in ids[:3]] == [
        "Kafka unreachable (1)", "Kafka unreachable (2)", "Kafka unreachable (3)"
    ]  # fmt: skip


def test_a_job_cancelled_by_request_stays_cancelled_until_the_table_changes(env):
    db, registry, _, controller = env
    registry.apply_feature_table("default", f.table("driver_trips", stream=True))
    loop = control(db, controller)
    [started] = loop.tick()
    controller.cancel_job(started.job_id)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert loop.tick(now=later) == []
    registry.apply_feature_table("default", f.table("driver_trips", stream=True, max_age_seconds=60))
    [again] = loop.tick(now=later)
    assert again.kind == "start"


def test_two_replicas_never_start_two_jobs_for_one_table(env, database_url):
    _, registry, launcher, controller = env
    for i in range(5):
        registry.apply_feature_table("default", f.table(f"trips_{i}", stream=True))
    replicas = []
    for _ in range(2):  # each replica: its own engine, store and controller, one launcher (the cluster)
        engine = make_engine(database_url)
        other = Database(engine)
        replicas.append(
            control(other, JobController(JobStore(other), Registry(other), launcher, controller.settings))
        )
    barrier = threading.Barrier(2)

    def ticks(loop: StreamControl) -> int:
        barrier.wait()
        return sum(len(loop.tick()) for _ in range(20))

    with ThreadPoolExecutor(2) as pool:
        assert sum(pool.map(ticks, replicas)) == 5
    jobs = streams(controller)
    assert sorted(j.table_name for j in jobs) == [f"trips_{i}" for i in range(5)]
    assert len(launcher.submitted) == 5


def test_a_core_without_an_online_store_starts_no_stream(env):
    db, registry, launcher, controller = env
    registry.apply_feature_table("default", f.table("driver_trips", stream=True))
    no_redis = JobController(
        controller.store, registry, launcher, JobSettings(staging_location="file:///tmp/s")
    )
    assert control(db, no_redis).tick() == [] and launcher.submitted == []
