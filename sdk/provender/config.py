"""SDK configuration: keyword arguments > PROVENDER_* environment > FEAST_* environment > ~/.provender/config
(TOML) > defaults.

The config file holds top-level keys, for example:

    core_url = "provender-core.ml.svc:6565"
    serving_url = "provender-serving.ml.svc:6566"
    project = "fraud"

Its path can be changed with PROVENDER_CONFIG. Feast 0.9's option names (spark_staging_location, core_enable_ssl,
...) are accepted as keyword arguments and FEAST_<NAME> variables too: provender.feast_options maps them.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from provender import feast_options
from provender.kernel.errors import InvalidArgument

DEFAULT_PATH = Path("~/.provender/config")


@dataclass(frozen=True)
class Config:
    core_url: str = "localhost:6565"
    serving_url: str = "localhost:6566"
    job_service_url: str = ""  # empty: the JobService runs inside Core
    project: str = "default"
    timeout: float = 30.0  # seconds per call
    apply_timeout: float = 600.0  # seconds per apply call
    job_timeout: float = 600.0  # seconds a job's wait() and to_df() wait by default
    # A folder the jobs can read (file:// locally, s3:// on a cluster): entity DataFrames are staged there.
    # Empty: asked from Core, which knows its own.
    staging_location: str = ""
    historical_feature_output_location: str = ""  # empty: under Core's staging location
    historical_feature_output_format: str = "parquet"
    core_enable_ssl: bool = False
    core_server_ssl_cert: str = ""  # a PEM file of the CA to trust; empty: the system's roots
    serving_enable_ssl: bool = False
    serving_server_ssl_cert: str = ""
    job_service_enable_ssl: bool = False
    job_service_server_ssl_cert: str = ""
    enable_auth: bool = False
    auth_token: str = ""  # sent as `authorization: Bearer <token>` on every call when auth is enabled
    auth_provider: str = "oauth"  # with no auth_token: "oauth" fetches one with the oauth_* settings
    oauth_grant_type: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_audience: str = ""
    oauth_token_request_url: str = ""
    s3_endpoint_url: str = ""  # an S3-compatible store (MinIO...); empty: AWS, or AWS_ENDPOINT_URL
    # The deployment's Kafka (host:port,...), where produce_to_stream sends for a KafkaSource that names no
    # brokers (Core's --kafka-bootstrap-servers; `provender local up` prints it)
    kafka_bootstrap_servers: str = ""

    @property
    def jobs_url(self) -> str:
        return self.job_service_url or self.core_url

    @property
    def jobs_enable_ssl(self) -> bool:
        return self.job_service_enable_ssl if self.job_service_url else self.core_enable_ssl

    @property
    def jobs_server_ssl_cert(self) -> str:
        return self.job_service_server_ssl_cert if self.job_service_url else self.core_server_ssl_cert


_FIELDS = {f.name: f for f in fields(Config)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# host:port, [ipv6]:port, or a gRPC target with its own scheme (dns:///host:port, unix:/path).
_ADDRESS = re.compile(r"^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")
_GRPC_TARGET = re.compile(r"^(?:dns:|unix:|unix-abstract:|ipv4:|ipv6:)")
_SERVICE = {"core_url": "Core URL", "serving_url": "Serving URL", "job_service_url": "JobService URL"}


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
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown settings {unknown}; expected some of {sorted(_FIELDS)}")
    return data


def _typed(name: str, value: Any) -> Any:
    kind = _FIELDS[name].type
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise InvalidArgument(name, value, "true or false")
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidArgument(name, value, "a number of seconds") from None
    return "" if value is None else str(value)


def check_address(name: str, value: str) -> str:
    """A service address as gRPC takes it: host:port with no scheme (InvalidArgument says so)."""
    if not value or _ADDRESS.match(value) or _GRPC_TARGET.match(value):
        return value
    label = _SERVICE.get(name, name)
    if "://" in value:
        hint = f"host:port with no scheme, e.g. {value.split('://', 1)[1].split('/')[0] or 'localhost:6565'}"
    elif ":" not in value:
        hint = f"host:port, e.g. {value}:{6566 if name == 'serving_url' else 6565}"
    else:
        hint = "host:port, e.g. localhost:6565"
    raise InvalidArgument(label, value, hint)


def resolve(**overrides: Any) -> Config:
    """The effective configuration from our own field names; `overrides` with a value of None are ignored."""
    values: dict[str, Any] = _from_file(config_path())
    values.update(feast_options.from_environment())
    for name in _FIELDS:
        raw = os.environ.get(f"PROVENDER_{name.upper()}")
        if raw:
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    typed = {name: _typed(name, value) for name, value in values.items()}
    for name in _SERVICE:
        if name in typed:
            typed[name] = check_address(name, typed[name].strip())
    return Config(**typed)
