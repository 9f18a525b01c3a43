"""SDK configuration precedence: keyword > environment > config file > defaults."""

from __future__ import annotations

import pytest

from provender.config import resolve


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config"
    monkeypatch.setenv("PROVENDER_CONFIG", str(path))
    for name in ("CORE_URL", "SERVING_URL", "JOB_SERVICE_URL", "PROJECT", "TIMEOUT"):
        monkeypatch.delenv(f"PROVENDER_{name}", raising=False)
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
