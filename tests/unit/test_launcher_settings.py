"""Each launcher's settings: one typed class, fed from Core's settings by name, checked when Core starts."""

from __future__ import annotations

import dataclasses

import pytest

from provender.core.app import CoreSettings, _launcher
from provender.core.launchers.base import create_launcher
from provender.core.launchers.settings import (
    K8sSettings,
    LauncherSettings,
    LocalSettings,
    SparkSubmitSettings,
    StandaloneSettings,
)
from provender.kernel.errors import InvalidArgument

ALL = (LauncherSettings, SparkSubmitSettings, LocalSettings, StandaloneSettings, K8sSettings)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_core_setting_a_launcher_names_exists(cls):
    core_fields = {f.name for f in dataclasses.fields(CoreSettings)}
    named = {f.metadata["core"] for f in dataclasses.fields(cls) if "core" in f.metadata}
    assert named <= core_fields


def test_core_settings_fill_the_launcher_settings_they_name(tmp_path):
    jar = tmp_path / "kafka.jar"
    jar.write_bytes(b"PK")
    core = CoreSettings(
        spark_launcher="local",
        spark_master="local[2]",
        spark_warm_driver=True,
        spark_conf={"spark.a": "1"},
        spark_jars=[str(jar)],
        launcher_work_dir=str(tmp_path / "jobs"),
        k8s_namespace="ignored-by-local",
    )
    local = LocalSettings.from_core(core)
    assert (local.master, local.warm, local.jars) == ("local[2]", True, (str(jar),))
    assert local.conf == {"spark.a": "1"} and local.work_dir == tmp_path / "jobs"
    # an empty Core setting leaves the launcher's default
    assert LocalSettings.from_core(CoreSettings(launcher_work_dir=str(tmp_path))).master == "local[*]"


@pytest.mark.parametrize(
    ("core", "field"),
    [
        ({"spark_launcher": "local", "spark_master": "yarn"}, "spark_master"),
        ({"spark_launcher": "standalone"}, "spark_master"),
        ({"spark_launcher": "standalone", "spark_master": "local[2]"}, "spark_master"),
        ({"spark_launcher": "local", "spark_packages": ["hadoop-aws"]}, "spark_packages"),
        ({"spark_launcher": "local", "spark_jars": ["/no/such/kafka.jar"]}, "spark_jars"),
    ],
)
def test_a_wrong_launcher_setting_stops_core_at_start_naming_it(tmp_path, core, field):
    with pytest.raises(InvalidArgument) as e:
        _launcher(CoreSettings(launcher_work_dir=str(tmp_path), **core))
    assert e.value.field == field


def test_an_unknown_option_names_itself_and_the_known_ones(tmp_path):
    with pytest.raises(InvalidArgument) as e:
        create_launcher("local", work_dir=tmp_path, mastr="local[1]")
    assert "mastr" in str(e.value) and "master" in str(e.value) and "warm" in str(e.value)


def test_settings_given_whole_or_as_options_make_the_same_launcher(tmp_path):
    whole = create_launcher("local", LocalSettings(work_dir=tmp_path, master="local[1]"))
    options = create_launcher("local", work_dir=tmp_path, master="local[1]")
    assert whole.settings == options.settings
    with pytest.raises(InvalidArgument):
        create_launcher("standalone", LocalSettings(work_dir=tmp_path))


def test_jars_and_packages_reach_spark_submit(tmp_path):
    jar = tmp_path / "spark-sql-kafka.jar"
    jar.write_bytes(b"PK")
    launcher = create_launcher(
        "local", work_dir=tmp_path, jars=[str(jar)], packages=["org.apache.hadoop:hadoop-aws:3.4.1"]
    )
    command = launcher.submit_command("job", {}, ["app.py"])
    assert command[command.index("--jars") + 1] == str(jar)
    assert command[command.index("--packages") + 1] == "org.apache.hadoop:hadoop-aws:3.4.1"
