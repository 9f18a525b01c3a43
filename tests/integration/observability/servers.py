"""Real Prometheus and Pushgateway processes on loopback for the observability tests (Debian's packages)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            http_get(url, timeout=1.0)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout}s: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)


class _Process:
    def __init__(self, args: list[str], ready_path: str, port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(self.url + ready_path, self.process, log)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._out.close()


class Pushgateway(_Process):
    def __init__(self, work_dir: Path) -> None:
        port = free_port()
        super().__init__(
            [
                PUSHGATEWAY,
                f"--web.listen-address=127.0.0.1:{port}",
                "--persistence.file=",
                "--log.level=warn",
            ],
            "/-/ready",
            port,
            work_dir / "pushgateway.log",
        )

    def metrics_text(self) -> str:
        return http_get(self.url + "/metrics")


class Prometheus(_Process):
    """Prometheus scraping `targets` (scrape job name -> list of host:port) every `interval`."""

    def __init__(
        self,
        work_dir: Path,
        targets: dict[str, list[str]],
        interval: str = "1s",
        honor_labels: tuple[str, ...] = ("pushgateway",),
        rule_files: tuple[Path, ...] = (),
    ) -> None:
        port = free_port()
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {
                    "job_name": name,
                    "honor_labels": name in honor_labels,
                    "static_configs": [{"targets": addresses}],
                }
                for name, addresses in targets.items()
            ],
        }
        config_file = work_dir / "prometheus.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        super().__init__(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={work_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            "/-/ready",
            port,
            work_dir / "prometheus.log",
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = http_get(url, timeout=10)
        except urllib.error.HTTPError as e:  # 400/422: a bad query; the body says why
            body = e.read().decode()
        return json.loads(body)

    def query(self, expr: str) -> dict[str, Any]:
        """The full API answer (status, data or errorType/error) of an instant query."""
        return self.api("query", query=expr)
