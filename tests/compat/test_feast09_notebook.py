"""A Kubeflow-style Feast 0.9 notebook (examples/feast09/) against Provender: the original on the real Feast 0.9
and feast-spark SDK, which writes the batch source itself (Client.ingest: nanosecond parquet, no created-timestamp
column) and starts the jobs; and its port, which differs only in its imports, on our SDK. After each run, what
the notebook left behind (the training set it read, the online values) is checked against an oracle computed with
pandas from the source files the run wrote: values and dtypes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from provender import Client
from tests.conftest import running_platform

pytestmark = pytest.mark.compat

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "feast09"
ORIGINAL = EXAMPLES / "driver_statistics_feast09.ipynb"
PORTED = EXAMPLES / "driver_statistics.ipynb"
FEATURES = ["avg_daily_trips", "conv_rate", "acc_rate"]
MAX_AGE = timedelta(days=2)


@pytest.fixture(scope="module")
def platform(postgres, redis_server, tmp_path_factory):
    with running_platform(
        postgres, redis_server, tmp_path_factory.mktemp("feast09-notebook"), "notebook"
    ) as p:
        yield {
            "FEAST_CORE_URL": p.core_url,
            "FEAST_SERVING_URL": p.serving_url,
            "FEAST_JOB_SERVICE_URL": p.core_url,
        }


def code_lines(path: Path) -> list[list[str]]:
    """The lines of each cell (markdown too: the port must keep the text as well)."""
    notebook = nbformat.read(path, as_version=4)
    return [cell.source.splitlines() for cell in notebook.cells]


def as_script(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def test_the_port_differs_from_the_original_only_in_its_imports():
    original, ported = code_lines(ORIGINAL), code_lines(PORTED)
    assert len(original) == len(ported)
    changed = [
        (a, b)
        for cell_a, cell_b in zip(original, ported, strict=True)
        for a, b in zip(cell_a, cell_b, strict=True)
        if a != b
    ]
    assert changed, "the port must change its imports"
    for a, b in changed:
        assert a.startswith(("from feast", "import feast")), a
        assert b.startswith("from provender import "), b
    assert all(len(a) == len(b) for a, b in zip(original, ported, strict=True))


def check_what_the_notebook_left(urls: dict[str, str], data: Path, run_started: pd.Timestamp) -> None:
    """The training set of the run's retrieval and the online values, against pandas over the run's source."""
    source = pd.read_parquet(data / "driver_statistics").drop(columns=["date"])
    source["datetime"] = pd.to_datetime(source["datetime"], utc=True)  # naive from Feast's ingest: UTC
    source = source.sort_values("datetime")

    client = Client(core_url=urls["FEAST_CORE_URL"], serving_url=urls["FEAST_SERVING_URL"])
    retrievals = [
        j
        for j in client.list_jobs()
        if j.type == "RETRIEVAL_JOB" and j.start_time is not None and j.start_time >= run_started
    ]
    assert [j.status for j in retrievals] == ["DONE"]
    training = pd.read_parquet(retrievals[0].output_location)  # as the notebook's user reads it
    assert str(training["event_timestamp"].dtype).startswith("datetime64[")  # a timestamp, not int64 ns
    assert training["event_timestamp"].dt.tz is None  # naive in (Feast 0.9's utcnow()), naive out
    training = training.sort_values(["event_timestamp", "driver_id"]).reset_index(drop=True)

    entity_rows = training[["driver_id", "event_timestamp"]]
    as_of = pd.merge_asof(
        entity_rows.assign(
            at=entity_rows["event_timestamp"].dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
        ),
        source.rename(columns={"datetime": "at"}).astype({"at": "datetime64[ns, UTC]"}),
        on="at",
        by="driver_id",
        tolerance=pd.Timedelta(MAX_AGE),
        direction="backward",
        allow_exact_matches=True,
    )
    expected = entity_rows.assign(**{f"driver_statistics__{f}": as_of[f] for f in FEATURES}).astype(
        {"driver_statistics__avg_daily_trips": "float64"}
    )  # pandas' int column with a missing value
    pd.testing.assert_frame_equal(training, expected)
    assert training["driver_statistics__conv_rate"].dtype == "float32"
    assert training["driver_statistics__avg_daily_trips"].isna().sum() == 1  # the row 100 h back

    latest = source.groupby("driver_id").last()
    online = client.get_online_features(
        ["driver_statistics:avg_daily_trips", "driver_statistics:conv_rate"],
        [{"driver_id": 1001}, {"driver_id": 1002}],
    ).to_df()
    assert (
        online["driver_statistics:avg_daily_trips"].tolist()
        == latest.loc[[1001, 1002], "avg_daily_trips"].tolist()
    )
    assert online["driver_statistics:conv_rate"].tolist() == latest.loc[[1001, 1002], "conv_rate"].tolist()


def test_the_original_runs_unchanged_on_the_feast09_sdk(feast09, platform, tmp_path):
    script = tmp_path / "notebook.py"
    script.write_text(as_script(ORIGINAL))
    data = tmp_path / "data"
    started = pd.Timestamp.now(tz="UTC").floor("s")
    run = feast09.run(
        [str(feast09.python), str(script)], timeout=600, DEMO_DATA_URL=data.as_uri(), **platform
    )
    assert run.returncode == 0, run.stdout + run.stderr
    check_what_the_notebook_left(platform, data, started)


def test_the_port_runs_on_provender(platform, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    data = tmp_path / "data"
    for name, value in {**platform, "DEMO_DATA_URL": data.as_uri()}.items():
        monkeypatch.setenv(name, value)  # the kernel inherits the environment, as on a notebook server
    monkeypatch.setenv("PROVENDER_CONFIG", str(tmp_path / "no-config"))
    started = pd.Timestamp.now(tz="UTC").floor("s")
    notebook = nbformat.read(PORTED, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    check_what_the_notebook_left(platform, data, started)
