"""The standalone launcher: client-mode submission to a Spark standalone master (`spark://host:port`).

The driver runs on Core's machine as a spark-submit process (so status, log and cancel work as for `local`); the
executors run on the cluster's workers. `driver_host` must be an address the workers can reach; `python` is the
interpreter the executors start (it must exist on the workers, with provender installed).
"""

from __future__ import annotations

from provender.core.launchers.base import register_launcher
from provender.core.launchers.settings import StandaloneSettings
from provender.core.launchers.spark_submit import SparkSubmitLauncher


@register_launcher
class StandaloneLauncher(SparkSubmitLauncher):
    name = "standalone"

    Settings = StandaloneSettings
    settings: StandaloneSettings

    def __init__(self, settings: StandaloneSettings) -> None:
        super().__init__(settings)
        self.master_url = settings.master_url
        self.driver_host = settings.driver_host
        self.total_executor_cores = settings.total_executor_cores
        self.executor_memory = settings.executor_memory

    def master_args(self) -> list[str]:
        args = ["--master", self.master_url, "--deploy-mode", "client"]
        if self.total_executor_cores:
            args += ["--total-executor-cores", str(self.total_executor_cores)]
        if self.executor_memory:
            args += ["--executor-memory", self.executor_memory]
        return args

    def default_conf(self) -> dict[str, str]:
        conf = super().default_conf()
        if self.driver_host:
            conf |= {"spark.driver.host": self.driver_host, "spark.driver.bindAddress": self.driver_host}
        return conf
