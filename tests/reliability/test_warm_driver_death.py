"""A job record never disagrees with what the job did when the local launcher's warm Spark driver dies (issue 15,
finding 4: a job submitted 2.45 s after the driver was killed was recorded ERROR, left in the dead driver's inbox,
run to success by the next driver, and its record stayed ERROR). A job handed to a driver that dies before taking
it is withdrawn from the inbox before its record says ERROR, and then no driver ever runs it; a job submitted while
a killed driver's JVM shuts down goes to a new driver and is recorded DONE.

Real processes throughout: Core's JobController and job records in Postgres, the local launcher, spark-submit,
the warm driver killed with SIGKILL; the controller's reconcile is called as Core's background loop calls it."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from provender.core.jobs.controller import JobController, JobSettings
from provender.core.jobs.model import Job
from provender.core.jobs.store import JobStore
from provender.core.launchers.base import JobStatus, create_launcher
from provender.core.launchers.local import LocalLauncher
from provender.core.launchers.settings import LocalSettings
from provender.core.registry.database import Database, make_engine, migrate
from provender.core.registry.service import Registry
from provender.kernel.jobs.folder import WARM_DRIVER_FOLDER, JobFolder
from provender.kernel.value_types import ValueType
from tests import factories as f

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The launcher's folder, shared by the module's tests: a test starts with the driver the previous one left
    warm (a driver's start-up and first job take most of a test's time)."""
    folder = tmp_path_factory.mktemp("warm-death") / "launcher"
    yield folder
    LocalLauncher(LocalSettings(work_dir=folder)).stop_warm_driver()


@pytest.fixture(scope="module")
def controller(postgres, redis_server, tmp_path_factory: pytest.TempPathFactory, work: Path) -> JobController:
    base = tmp_path_factory.mktemp("warm-death-data")
    source = base / "src.parquet"
    pd.DataFrame(
        {
            "driver_id": [1, 2, 3],
            "ts": pd.to_datetime([BASE, BASE, BASE]).astype("datetime64[us, UTC]"),
            "rate": [0.5, 1.5, 2.5],
        }
    ).to_parquet(source)
    engine = make_engine(postgres.create_database(f"warm_death_{os.getpid()}_{time.monotonic_ns()}"))
    migrate(engine)
    db = Database(engine)
    registry = Registry(db)
    registry.apply_entity("default", f.entity("driver_id", ValueType.INT64))
    table = f.table("driver_hourly", features=(f.feature("rate", ValueType.DOUBLE),))
    table.batch_source.CopyFrom(
        f.file_source(
            source.as_uri(),
            event_timestamp_column="ts",
            created_timestamp_column="",
            date_partition_column="",
            field_mapping={},
        )
    )
    registry.apply_feature_table("default", table)
    launcher = create_launcher("local", work_dir=work, master="local[1]", warm=True, warm_idle_seconds=120)
    settings = JobSettings(staging_location=(base / "staging").as_uri(), redis_url=redis_server.url)
    return JobController(JobStore(db), registry, launcher, settings)


def _ingest(controller: JobController, n: int) -> Job:
    """A new ingestion job of the three rows (`n` makes its window, hence its id, its own)."""
    end = BASE + timedelta(days=1, seconds=n)
    return controller.start_offline_to_online("default", "driver_hourly", BASE - timedelta(days=1), end)


def _record(controller: JobController, job: Job, timeout: float = 90) -> Job:
    """The job's record once terminal, reconciled as Core's loop does (a terminal record never changes again)."""
    deadline = time.monotonic() + timeout
    while True:
        controller.reconcile_all()
        record = controller.store.get(job.id)
        if record.status.terminal:
            return record
        assert time.monotonic() < deadline, f"job {job.id} still {record.status.name}"
        time.sleep(0.2)


def _driver_python_pid(work: Path) -> int:
    """The pid of the warm driver's Python process (its `ready` file), once it takes jobs."""
    return int((work / WARM_DRIVER_FOLDER / "ready").read_text())


def _driver_wrapper_pid(work: Path) -> int:
    """The pid of the warm driver's spark-submit wrapper (its handle), which outlives a killed Python driver until
    the JVM has noticed."""
    return int(json.loads((work / WARM_DRIVER_FOLDER / "handle").read_text())["pid"])


def _process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def _exit_code(work: Path, job: Job) -> str | None:
    path = JobFolder(work / job.id).exit_code
    return path.read_text().strip() if path.exists() else None


def _assert_record_is_true(work: Path, record: Job) -> None:
    """DONE exactly when the job exited 0; an ERROR job either failed or never ran, and never runs later."""
    code = _exit_code(work, record)
    if record.status is JobStatus.DONE:
        assert code == "0", f"{record.id} recorded DONE, exit code {code}"
    else:
        assert code != "0", f"{record.id} recorded ERROR ({record.error_message}) but the job exited 0"


def test_a_job_withdrawn_from_a_dead_drivers_inbox_never_runs(controller, work) -> None:
    first = _ingest(controller, 1)
    assert _record(controller, first).status is JobStatus.DONE
    driver = _driver_python_pid(work)
    os.kill(driver, signal.SIGSTOP)  # alive, but takes nothing from its inbox
    queued = _ingest(controller, 2)
    assert (work / WARM_DRIVER_FOLDER / "inbox" / f"{queued.id}.json").exists()
    os.killpg(os.getpgid(driver), signal.SIGKILL)  # then dies with the job still in its inbox

    record = _record(controller, queued, timeout=30)
    assert record.status is JobStatus.ERROR
    assert "never started" in record.error_message, record.error_message

    after = _ingest(controller, 3)  # the next driver: it must not run the withdrawn job
    assert _record(controller, after).status is JobStatus.DONE
    time.sleep(1.0)
    _assert_record_is_true(work, controller.store.get(queued.id))
    assert _exit_code(work, queued) == "1"  # written by the withdrawal: every later answer is this ERROR
    assert "running in the warm driver" not in JobFolder(work / queued.id).log.read_text()


def test_a_job_submitted_right_after_the_driver_is_killed_is_recorded_as_it_ran(controller, work) -> None:
    first = _ingest(controller, 11)
    assert _record(controller, first).status is JobStatus.DONE  # the driver is warm (left by the test before)

    python = _driver_python_pid(work)
    os.kill(python, signal.SIGKILL)  # its JVM takes seconds to notice and exit
    deadline = time.monotonic() + 5
    while _process_state(python) not in ("Z", "X", None):  # the signal has landed
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert _process_state(_driver_wrapper_pid(work)) not in ("Z", "X", None)  # spark-submit still runs
    queued = _ingest(controller, 12)  # the launcher must not hand it to the dying driver
    record = _record(controller, queued)

    # the next driver starts with the next job; it would find the first one if it were still in the inbox
    after = _ingest(controller, 13)
    assert _record(controller, after).status is JobStatus.DONE
    time.sleep(1.0)
    record = controller.store.get(queued.id)
    _assert_record_is_true(work, record)
    assert record.status is JobStatus.DONE, record.error_message  # not lost: a new driver ran it
