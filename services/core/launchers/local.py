"""The local launcher: `spark-submit --master local[*]` on Core's machine, its log file as log_uri."""

from __future__ import annotations

from pathlib import Path

from provender.core.launchers.base import register_launcher
from provender.core.launchers.spark_submit import SparkSubmitLauncher


@register_launcher
class LocalLauncher(SparkSubmitLauncher):
    name = "local"

    def __init__(self, work_dir: str | Path, master: str = "local[*]", **settings: object) -> None:
        super().__init__(work_dir, **settings)  # type: ignore[arg-type]
        self.master = master

    def master_args(self) -> list[str]:
        return ["--master", self.master]

    def default_conf(self) -> dict[str, str]:
        return super().default_conf() | {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
        }
