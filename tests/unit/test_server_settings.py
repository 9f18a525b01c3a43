"""Server settings declared once: every field of Core's and Serving's settings is reachable by its flag and by its
PROVENDER_* variable, with the help naming the variable; and Core's settings reach the launcher."""

from __future__ import annotations

import dataclasses
import os

import pytest

from provender.core.app import CoreSettings, _launcher
from provender.core.main import parser as core_parser
from provender.server.settings import ENV_PREFIX, flag_fields, read
from provender.serving.app import ServingSettings
from provender.serving.main import parser as serving_parser

CASES = [(CoreSettings, core_parser), (ServingSettings, serving_parser)]


def a_value(field: dataclasses.Field) -> tuple[str, object]:
    """A value other than the default, as a flag or variable spells it, and as the settings hold it."""
    kind = field.type.replace(" ", "")
    if kind == "int":
        return "4242", 4242
    if kind == "float":
        return "2.5", 2.5
    if kind == "dict[str,str]":
        return "spark.a=b", {"spark.a": "b"}
    if kind == "list[str]":
        return "x:y:1,z:w:2", ["x:y:1", "z:w:2"]
    return f"from-{field.name}", f"from-{field.name}"


@pytest.fixture(autouse=True)
def no_provender_environment(monkeypatch):
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)


@pytest.mark.parametrize(("settings", "parser"), CASES, ids=["core", "serving"])
def test_every_field_has_a_flag_that_sets_it(settings, parser):
    for field in flag_fields(settings):
        meta = field.metadata["flag"]
        if field.type == "bool":
            argv, expected = [meta.flag], not field.default
        else:
            text, expected = a_value(field)
            argv = [meta.flag, text]
        assert getattr(read(settings, parser().parse_args(argv)), field.name) == expected, meta.flag
        assert f"{ENV_PREFIX}{meta.env}" in parser().format_help()


@pytest.mark.parametrize(("settings", "parser"), CASES, ids=["core", "serving"])
def test_every_field_has_a_variable_that_sets_its_default(settings, parser, monkeypatch):
    for field in flag_fields(settings):
        meta = field.metadata["flag"]
        text, expected = (
            ("0" if field.default else "1", not field.default) if field.type == "bool" else a_value(field)
        )
        monkeypatch.setenv(ENV_PREFIX + meta.env, text)
        assert getattr(read(settings, parser().parse_args([])), field.name) == expected, meta.env
        monkeypatch.delenv(ENV_PREFIX + meta.env)


def test_only_settings_that_are_not_options_lack_a_flag():
    without = {f.name for s, _ in CASES for f in dataclasses.fields(s) if "flag" not in f.metadata}
    assert without == {"redis_connect_timeout"}


def test_core_settings_reach_the_launcher(monkeypatch, tmp_path):
    argv = ["--spark-launcher", "standalone", "--spark-master", "spark://m:7077", "--spark-driver-host", "10.1.2.3",
            "--spark-conf", "spark.executor.memory=4g", "--spark-packages", "org.apache.hadoop:hadoop-aws:3.4.1",
            "--launcher-work-dir", str(tmp_path)]  # fmt: skip
    monkeypatch.setenv("PROVENDER_SPARK_CONF", "spark.a=1")
    settings = read(CoreSettings, core_parser().parse_args(argv))
    assert settings.spark_conf == {
        "spark.a": "1",
        "spark.executor.memory": "4g",
    }  # the variable, then the flags
    launcher = _launcher(settings)
    assert (launcher.master_url, launcher.driver_host) == ("spark://m:7077", "10.1.2.3")
    assert launcher.conf == settings.spark_conf
    assert launcher.settings.packages == tuple(settings.spark_packages)
    monkeypatch.setenv("PROVENDER_SPARK_WARM_DRIVER", "true")
    local = _launcher(read(CoreSettings, core_parser().parse_args(["--launcher-work-dir", str(tmp_path)])))
    assert (local.name, local.warm) == ("local", True)


def test_a_variable_that_does_not_parse_names_itself(monkeypatch, capsys):
    monkeypatch.setenv("PROVENDER_SPARK_WARM_DRIVER", "maybe")
    with pytest.raises(SystemExit, match="PROVENDER_SPARK_WARM_DRIVER='maybe' is not valid"):
        core_parser()
    monkeypatch.delenv("PROVENDER_SPARK_WARM_DRIVER")
    with pytest.raises(SystemExit):
        core_parser().parse_args(["--spark-conf", "novalue"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
