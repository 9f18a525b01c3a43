"""SDK configuration: keyword arguments > PROVENDER_* environment > ~/.provender/config (TOML) > defaults.

The config file holds top-level keys, for example:

    core_url = "provender-core.ml.svc:6565"
    serving_url = "provender-serving.ml.svc:6566"
    project = "fraud"

Its path can be changed with PROVENDER_CONFIG.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("~/.provender/config")


@dataclass(frozen=True)
class Config:
    core_url: str = "localhost:6565"
    serving_url: str = "localhost:6566"
    job_service_url: str = ""  # empty: the JobService runs inside Core
    project: str = "default"
    timeout: float = 30.0  # seconds per call
    # A folder the jobs can read (file:// locally, s3:// on a cluster): entity DataFrames are staged there.
    staging_location: str = ""

    @property
    def jobs_url(self) -> str:
        return self.job_service_url or self.core_url


def config_path() -> Path:
    return Path(os.environ.get("PROVENDER_CONFIG", str(DEFAULT_PATH))).expanduser()


def _from_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(
            f'{path}: not valid TOML ({e}); expected lines like core_url = "host:6565"'
        ) from None
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown settings {unknown}; expected some of {sorted(known)}")
    return data


def resolve(**overrides: Any) -> Config:
    """The effective configuration; `overrides` with a value of None are ignored."""
    values: dict[str, Any] = _from_file(config_path())
    for f in fields(Config):
        raw = os.environ.get(f"PROVENDER_{f.name.upper()}")
        if raw:
            values[f.name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "timeout" in values:
        values["timeout"] = float(values["timeout"])
    return Config(**values)
