"""Each launcher's settings as one typed, frozen dataclass, checked when it is made (so Core fails at start, not
at the first job, on a wrong master URL or a missing spark-submit).

A field that Core's own settings feed names that Core setting in its metadata (`fed_by("spark_master")`):
`from_core(core_settings)` copies those that are set, so a launcher setting exposed on Core's command line is
one Core field plus one `fed_by` here. Fields without it are for programs that build a launcher themselves
(tests, benchmarks). Domain code: no gRPC.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from provender.kernel.errors import InvalidArgument

_LOCAL_MASTER = re.compile(r"^local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?$")
_STANDALONE_MASTER = re.compile(r"^spark://[^/\s:]+:\d+(,[^/\s:]+:\d+)*$")
_MEMORY = re.compile(r"^\d+[kmgtKMGT]?$")


def fed_by(name: str, default: Any = MISSING, **kw: Any) -> Any:
    """A field that Core's setting `name` feeds (when that setting is not empty)."""
    if default is not MISSING:
        kw["default"] = default
    return field(metadata={"core": name}, **kw)


@dataclass(frozen=True)
class LauncherSettings:
    """What every launcher takes: Spark properties for every job, jars for every job's classpath, and Core's Redis
    URL, whose credentials a job's driver gets in its environment (kernel.jobs.args.REDIS_URL_ENV), never in its
    arguments (not in repr either)."""

    conf: Mapping[str, str] = fed_by("spark_conf", default_factory=dict)
    jars: tuple[str, ...] = fed_by("spark_jars", default=())
    redis_url: str = fed_by("redis_url", default="", repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "conf", {str(k): str(v) for k, v in dict(self.conf).items()})
        object.__setattr__(self, "jars", tuple(str(j) for j in self.jars))
        for jar in self.jars:
            if "://" not in jar and not Path(jar).is_file():
                raise InvalidArgument("spark_jars", jar, "a jar file that exists, or a URL Spark can fetch")

    @classmethod
    def from_core(cls, settings: object, **overrides: Any) -> Self:
        """This launcher's settings from Core's: each field that names a Core setting takes its value when it is
        set (not empty); `overrides` come last."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata.get("core")
            value = getattr(settings, name, None) if name else None
            if value not in (None, "", [], {}, ()):
                values[f.name] = value
        return cls(**(values | overrides))

    @classmethod
    def from_options(cls, launcher: str, options: Mapping[str, Any]) -> Self:
        """Settings from keyword options; an unknown one is an InvalidArgument listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidArgument(
                f"{launcher} launcher settings", unknown, f"some of {', '.join(sorted(known))}"
            )
        return cls(**options)


def _default_work_dir() -> Path:
    return Path(tempfile.gettempdir()) / "provender-jobs"


@dataclass(frozen=True)
class SparkSubmitSettings(LauncherSettings):
    """Launchers that run spark-submit on Core's machine. `work_dir` keeps each job's folder (log, exit code);
    `packages` are Maven coordinates for --packages (org.apache.hadoop:hadoop-aws:… for s3://)."""

    work_dir: Path = fed_by("launcher_work_dir", default_factory=_default_work_dir)  # noqa: RUF009 (a field())
    packages: tuple[str, ...] = fed_by("spark_packages", default=())
    spark_home: Path | None = None
    python: str = sys.executable
    cancel_grace_seconds: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "work_dir", Path(self.work_dir).absolute())
        object.__setattr__(self, "packages", tuple(self.packages))
        if self.spark_home is not None:
            object.__setattr__(self, "spark_home", Path(self.spark_home))
        for p in self.packages:
            if p.count(":") != 2:
                raise InvalidArgument("spark_packages", p, "Maven coordinates group:artifact:version")
        if self.cancel_grace_seconds < 0:
            raise InvalidArgument("cancel_grace_seconds", self.cancel_grace_seconds, "0 or more seconds")


@dataclass(frozen=True)
class LocalSettings(SparkSubmitSettings):
    """Spark in local mode on Core's machine; `warm` keeps one driver for the batch jobs."""

    master: str = fed_by("spark_master", default="local[*]")
    warm: bool = fed_by("spark_warm_driver", default=False)
    warm_idle_seconds: float = 900.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _LOCAL_MASTER.match(self.master):
            raise InvalidArgument("spark_master", self.master, "local, local[N], local[*] or local[N,F]")
        if self.warm_idle_seconds <= 0:
            raise InvalidArgument("warm_idle_seconds", self.warm_idle_seconds, "more than 0 seconds")


@dataclass(frozen=True)
class StandaloneSettings(SparkSubmitSettings):
    """Client-mode submission to a standalone master; `driver_host` is the address workers reach the driver at."""

    master_url: str = fed_by("spark_master", default="")
    driver_host: str = fed_by("spark_driver_host", default="")
    total_executor_cores: int = 0
    executor_memory: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _STANDALONE_MASTER.match(self.master_url):
            raise InvalidArgument(
                "spark_master", self.master_url, "a standalone master URL spark://host:port"
            )
        if self.total_executor_cores < 0:
            raise InvalidArgument("total_executor_cores", self.total_executor_cores, "0 (all) or more cores")
        if self.executor_memory and not _MEMORY.match(self.executor_memory):
            raise InvalidArgument("executor_memory", self.executor_memory, "a JVM memory size such as 2g")


@dataclass(frozen=True)
class K8sSettings(LauncherSettings):
    """SparkApplications through the Kubernetes Spark operator. `job_template`: a SparkApplication template file
    (default: the built-in one, made of `image`, `service_account`, `spark_version`, `image_pull_policy`);
    `namespace` default: the template's, else Core's own pod's, else "default". The API client: `kubeconfig` and
    `context`, else the pod's service account when in a cluster (`in_cluster` None: decided by
    KUBERNETES_SERVICE_HOST), else ~/.kube/config. `cache_ttl_seconds`: how old listed statuses may be."""

    namespace: str = fed_by("k8s_namespace", default="")
    job_template: str = fed_by("k8s_job_template", default="")
    kubeconfig: str = ""
    context: str = ""
    in_cluster: bool | None = None
    image: str = ""
    service_account: str = "default"
    spark_version: str = ""
    image_pull_policy: str = "IfNotPresent"
    application_dir: str = "local:///opt/provender/jobs"  # where the image (deploy/docker) has the jobs
    cache_ttl_seconds: float = 2.0
    request_timeout_seconds: float = 15.0
    list_page_size: int = 500

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.job_template and not Path(self.job_template).is_file():
            raise InvalidArgument(
                "k8s_job_template", self.job_template, "a readable SparkApplication template"
            )
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise InvalidArgument(
                "image_pull_policy", self.image_pull_policy, "Always, IfNotPresent or Never"
            )
        if self.request_timeout_seconds <= 0:
            raise InvalidArgument("request_timeout_seconds", self.request_timeout_seconds, "more than 0")
        if self.list_page_size < 1:
            raise InvalidArgument("list_page_size", self.list_page_size, "1 or more")
