"""SDK configuration: precedence (keyword > PROVENDER_* > FEAST_* > config file > defaults), Feast 0.9's option
names, and service addresses checked before anything is sent."""

from __future__ import annotations

import os
import warnings

import pytest

from provender import Client, feast_options
from provender.config import resolve
from provender.feast_options import ALL, CLIENT, ON_SERVER, ServerSideOption
from provender.kernel.errors import InvalidArgument


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config"
    monkeypatch.setenv("PROVENDER_CONFIG", str(path))
    for name in list(os.environ):
        if name.startswith(("PROVENDER_", "FEAST_")) and name != "PROVENDER_CONFIG":
            monkeypatch.delenv(name)
    return path


def test_defaults(config_file):
    c = resolve()
    assert (c.core_url, c.serving_url, c.project, c.jobs_url) == (
        "localhost:6565",
        "localhost:6566",
        "default",
        "localhost:6565",
    )


def test_precedence(config_file, monkeypatch):
    config_file.write_text(
        'core_url = "file:6565"\nserving_url = "file:6566"\nproject = "fromfile"\ntimeout = 5\n'
    )
    assert resolve().core_url == "file:6565" and resolve().timeout == 5.0
    monkeypatch.setenv("PROVENDER_CORE_URL", "env:6565")
    assert resolve().core_url == "env:6565" and resolve().serving_url == "file:6566"
    assert resolve(core_url="kw:6565").core_url == "kw:6565"
    assert resolve(core_url=None).core_url == "env:6565"
    assert resolve(job_service_url="jobs:6568").jobs_url == "jobs:6568"


def test_bad_config_file_names_the_problem(config_file):
    config_file.write_text("core_url = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        resolve()
    config_file.write_text('cor_url = "x"\n')
    with pytest.raises(ValueError, match=r"unknown settings \['cor_url'\]"):
        resolve()


def test_feast_environment_variables_are_fallbacks(config_file, monkeypatch):
    monkeypatch.setenv("FEAST_CORE_URL", "feast-core:6565")
    monkeypatch.setenv("FEAST_SPARK_STAGING_LOCATION", "s3://bucket/staging")
    monkeypatch.setenv("FEAST_HISTORICAL_FEATURE_OUTPUT_LOCATION", "s3://bucket/out")
    monkeypatch.setenv("FEAST_CORE_ENABLE_SSL", "True")
    c = resolve()
    assert (c.core_url, c.staging_location, c.historical_feature_output_location) == (
        "feast-core:6565",
        "s3://bucket/staging",
        "s3://bucket/out",
    )
    assert c.core_enable_ssl is True
    monkeypatch.setenv("PROVENDER_CORE_URL", "ours:6565")
    assert resolve().core_url == "ours:6565"  # our own variable wins over Feast's


def test_a_notebooks_feast09_client_builds_and_server_settings_give_one_notice_each(config_file, monkeypatch):
    monkeypatch.setattr(feast_options, "_noticed", set())  # notices are once per process
    options = {
        "spark_launcher": "k8s",
        "spark_staging_location": "gs://bucket/staging",
        "spark_k8s_namespace": "spark-operator",
        "redis_host": "redis",
        "historical_feature_output_location": "gs://bucket/historical",
        "historical_feature_output_format": "parquet",
        "grpc_connection_timeout": "12",
        "batch_feature_request_wait_time_seconds": "900",
        "enable_auth": "False",
        "auth_provider": "google",
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = Client(core_url="core:6565", serving_url="serving:6566", **options)
        Client(core_url="core:6565", options=options)  # Feast's options={...} form; no second notice
    notices = [str(w.message) for w in caught if w.category is ServerSideOption]
    assert sorted(n.split("'")[1] for n in notices) == ["redis_host", "spark_k8s_namespace", "spark_launcher"]
    assert all(w.filename == __file__ for w in caught)  # the notice points at the user's line
    c = first.config
    assert (c.staging_location, c.timeout, c.job_timeout) == ("gs://bucket/staging", 12.0, 900.0)
    assert c.historical_feature_output_location == "gs://bucket/historical"


def test_every_feast09_option_is_known_and_a_typo_is_not():
    assert set(CLIENT).isdisjoint(ON_SERVER)
    assert {"core_url", "spark_staging_location", "redis_host", "oauth_client_id", "telemetry"} <= ALL
    with pytest.raises(TypeError, match="did you mean serving_url"):
        Client(servng_url="x:6566")


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("http://core.example:6565", "host:port with no scheme, e.g. core.example:6565"),
        ("grpc://core:6565/", "host:port with no scheme, e.g. core:6565"),
        ("core.example", "host:port, e.g. core.example:6565"),
        ("core:port", "host:port, e.g. localhost:6565"),
    ],
)
def test_a_malformed_address_says_what_an_address_looks_like(config_file, given, said):
    with pytest.raises(InvalidArgument, match="Core URL") as e:
        resolve(core_url=given)
    assert said in str(e.value) and repr(given) in str(e.value)


@pytest.mark.parametrize(
    "good", ["localhost:6565", "10.0.0.1:6565", "[::1]:6565", "dns:///core:6565", "unix:/tmp/s"]
)
def test_well_formed_addresses_pass(config_file, good):
    assert resolve(core_url=good).core_url == good
