"""Every `provender core` flag reaches Core's settings (and from there the launcher), by flag and by env."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from provender.core.app import CoreSettings, _launcher
from provender.core.main import parser, settings_from_args

ARGV = [
    "--port", "7000", "--host", "127.0.0.2", "--postgres-url", "postgresql://u@h/db", "--no-migrate",
    "--job-port", "7001", "--spark-launcher", "standalone", "--spark-master", "spark://m:7077",
    "--staging-location", "s3://b/staging", "--redis-url", "redis://r:6379", "--pushgateway-url", "http://pg:9091",
    "--launcher-work-dir", "/tmp/w", "--reconcile-seconds", "2.5", "--spark-driver-host", "10.1.2.3",
    "--spark-conf", "spark.executor.memory=4g", "--spark-conf", "spark.a=b",
    "--spark-packages", "org.apache.hadoop:hadoop-aws:3.4.1,x:y:1", "--k8s-namespace", "ml",
    "--k8s-job-template", "/etc/t.yaml", "--spark-warm-driver",
]  # fmt: skip


def test_every_flag_reaches_the_settings(monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("PROVENDER_")]:
        monkeypatch.delenv(key)
    settings = settings_from_args(parser().parse_args(ARGV))
    defaults = CoreSettings(postgres_url="")
    changed = {k for k, v in asdict(settings).items() if v != getattr(defaults, k)}
    assert changed == set(asdict(defaults)), f"settings no flag sets: {set(asdict(defaults)) - changed}"
    assert settings.spark_conf == {"spark.executor.memory": "4g", "spark.a": "b"}
    assert settings.spark_packages == ["org.apache.hadoop:hadoop-aws:3.4.1", "x:y:1"]
    launcher = _launcher(settings)
    assert (launcher.master_url, launcher.driver_host) == ("spark://m:7077", "10.1.2.3")
    assert launcher.conf == settings.spark_conf and launcher.packages == settings.spark_packages


def test_environment_variables_are_the_defaults(monkeypatch):
    monkeypatch.setenv("PROVENDER_REDIS_URL", "redis://env:6379")
    monkeypatch.setenv("PROVENDER_SPARK_CONF", "spark.a=1,spark.b=2")
    monkeypatch.setenv("PROVENDER_JOB_PORT", "6568")
    settings = settings_from_args(parser().parse_args(["--postgres-url", "postgresql://u@h/db"]))
    assert (settings.redis_url, settings.job_port) == ("redis://env:6379", 6568)
    assert settings.spark_conf == {"spark.a": "1", "spark.b": "2"}


def test_the_warm_driver_reaches_the_local_launcher(monkeypatch, tmp_path):
    monkeypatch.setenv("PROVENDER_SPARK_WARM_DRIVER", "true")
    argv = ["--postgres-url", "postgresql://u@h/db", "--launcher-work-dir", str(tmp_path)]
    launcher = _launcher(settings_from_args(parser().parse_args(argv)))
    assert (launcher.name, launcher.warm) == ("local", True)
    monkeypatch.setenv("PROVENDER_SPARK_WARM_DRIVER", "maybe")
    with pytest.raises(SystemExit, match="PROVENDER_SPARK_WARM_DRIVER"):
        parser()


def test_a_malformed_spark_conf_is_refused(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--spark-conf", "novalue"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
