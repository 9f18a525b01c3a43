"""The client options of Feast 0.9 and feast-spark 0.2, by their own names, and what each means here.

A Feast 0.9 notebook builds its client as `Client(core_url=..., spark_staging_location=..., redis_host=...)` or
with `options={...}`, and Feast reads the same names from `FEAST_<NAME>` environment variables. Provender's
Client accepts every one of them:
- `CLIENT`: options the client itself uses, mapped to our setting of that meaning (Config field);
- `ON_SERVER`: settings that live on Core or Serving in Provender (the Spark launcher, the Redis it writes);
  accepted, and a one-time notice says where that setting lives;
- `NO_EFFECT`: options with no meaning here (Feast's telemetry, BigQuery/Dataproc/EMR staging): accepted silently
  beside a one-time notice where they would change what a user expects.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

# Feast option -> Config field.
CLIENT: dict[str, str] = {
    "core_url": "core_url",
    "serving_url": "serving_url",
    "job_service_url": "job_service_url",
    "project": "project",
    "spark_staging_location": "staging_location",
    "historical_feature_output_location": "historical_feature_output_location",
    "historical_feature_output_format": "historical_feature_output_format",
    "core_enable_ssl": "core_enable_ssl",
    "core_secure": "core_enable_ssl",  # the Feast client's property name for the same thing
    "core_server_ssl_cert": "core_server_ssl_cert",
    "serving_enable_ssl": "serving_enable_ssl",
    "serving_secure": "serving_enable_ssl",
    "serving_server_ssl_cert": "serving_server_ssl_cert",
    "job_service_enable_ssl": "job_service_enable_ssl",
    "job_service_secure": "job_service_enable_ssl",
    "job_service_server_ssl_cert": "job_service_server_ssl_cert",
    "enable_auth": "enable_auth",
    "auth_token": "auth_token",
    "auth_provider": "auth_provider",
    "oauth_grant_type": "oauth_grant_type",
    "oauth_client_id": "oauth_client_id",
    "oauth_client_secret": "oauth_client_secret",
    "oauth_audience": "oauth_audience",
    "oauth_token_request_url": "oauth_token_request_url",
    "grpc_connection_timeout": "timeout",
    "grpc_connection_timeout_apply": "apply_timeout",
    "batch_feature_request_wait_time_seconds": "job_timeout",
    "s3_endpoint_url": "s3_endpoint_url",
}

_SPARK = "Core's --spark-launcher/--spark-master/--spark-conf flags (chart values under `spark`)"
_K8S = "Core's --k8s-namespace and --k8s-job-template flags (chart values under `spark`)"
_REDIS = "Core's and Serving's --redis-url flag (chart values `redis` or `externalRedis`)"
_JOBS = "Core's JobService, which runs and reconciles every job (flags of `provender core`)"
_METRICS = "Core's --pushgateway-url flag; ingestion jobs push Prometheus metrics (chart value metrics.pushgatewayUrl)"

# Feast option -> where that setting lives in Provender.
ON_SERVER: dict[str, str] = {
    "spark_launcher": _SPARK,
    "spark_home": _SPARK,
    "spark_standalone_master": _SPARK,
    "spark_ingestion_jar": "Core, which ships its own Spark applications",
    "spark_k8s_namespace": _K8S,
    "spark_k8s_use_incluster_config": _K8S,
    "spark_k8s_job_template_path": _K8S,
    "spark_k8s_batch_ingestion_template_path": _K8S,
    "spark_k8s_stream_ingestion_template_path": _K8S,
    "spark_k8s_historical_retrieval_template_path": _K8S,
    "spark_streaming_triggering_interval": _SPARK,
    "redis_host": _REDIS,
    "redis_port": _REDIS,
    "redis_password": _REDIS,
    "redis_ssl": _REDIS,
    "statsd_enabled": _METRICS,
    "statsd_host": _METRICS,
    "statsd_port": _METRICS,
    "spark_metrics_redis_host": _METRICS,
    "spark_metrics_redis_port": _METRICS,
    "deadletter_path": "Core's --staging-location flag (dead letters go under it)",
    "checkpoint_path": "Core's --staging-location flag",
    "ingestion_drop_invalid_rows": "the ingestion job, which always sets invalid rows aside as dead letters",
    "job_service_enable_control_loop": _JOBS,
    "job_service_retry_failed_jobs": _JOBS,
    "job_service_pause_between_jobs": _JOBS,
    "job_service_prometheus_metric_port": "Core's --metrics-port flag",
    "lock_mgr_redis_host": _JOBS,
    "lock_mgr_redis_port": _JOBS,
    "lock_expiry": _JOBS,
    "whitelisted_job_types": _JOBS,
    "whitelisted_projects": _JOBS,
    "whitelisted_feature_tables_path": _JOBS,
    "stencil_url": "the stream ingestion job (protobuf classes come from its environment)",
    "stencil_token": "the stream ingestion job (protobuf classes come from its environment)",
}

# Feast option -> why it changes nothing here (None: silently).
NO_EFFECT: dict[str, str | None] = {
    "telemetry": None,  # Provender sends no usage data
    "batch_ingestion_production_timeout": None,  # our ingest writes the files itself
    "spark_bq_materialization_project": "BigQuery sources are not supported",
    "spark_bq_materialization_dataset": "BigQuery sources are not supported",
    "bq_staging_project": "BigQuery sources are not supported",
    "bq_staging_dataset": "BigQuery sources are not supported",
    "dataproc_cluster_name": "Dataproc is not a Spark launcher here",
    "dataproc_project": "Dataproc is not a Spark launcher here",
    "dataproc_region": "Dataproc is not a Spark launcher here",
    "dataproc_executor_instances": "Dataproc is not a Spark launcher here",
    "dataproc_executor_cores": "Dataproc is not a Spark launcher here",
    "dataproc_executor_memory": "Dataproc is not a Spark launcher here",
    "emr_cluster_id": "EMR is not a Spark launcher here",
    "emr_region": "EMR is not a Spark launcher here",
    "emr_cluster_template_path": "EMR is not a Spark launcher here",
    "emr_log_location": "EMR is not a Spark launcher here",
    "azure_blob_account_name": "Azure Blob storage is not supported (file:// and s3:// are)",
    "azure_blob_account_access_key": "Azure Blob storage is not supported (file:// and s3:// are)",
    "bigtable_project": "the online store is Redis",
    "bigtable_instance": "the online store is Redis",
    "cassandra_host": "the online store is Redis",
    "cassandra_port": "the online store is Redis",
}

ALL: frozenset[str] = frozenset(CLIENT) | frozenset(ON_SERVER) | frozenset(NO_EFFECT)
ENV_PREFIX = "FEAST_"

_noticed: set[str] = set()


class ServerSideOption(UserWarning):
    """A Feast 0.9 client option whose setting lives on the server in Provender (shown once per option)."""


def check_names(options: Mapping[str, Any]) -> None:
    """TypeError naming an option neither Provender nor Feast 0.9 knows (a typo), with the nearest names."""
    import difflib

    for name in options:
        if name not in ALL:
            close = difflib.get_close_matches(name, sorted(ALL), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TypeError(f"Client() got an unexpected option {name!r}{hint}")


def notice(options: Mapping[str, Any]) -> None:
    """One notice per process and option for the options given that have no effect in the client."""
    for name, value in options.items():
        if value is None or name in _noticed:
            continue
        if name in ON_SERVER:
            message = f"Client option {name!r} is set on the server in Provender: see {ON_SERVER[name]}"
        elif NO_EFFECT.get(name):
            message = f"Client option {name!r} has no effect in Provender: {NO_EFFECT[name]}"
        else:
            continue
        _noticed.add(name)
        warnings.warn(message, ServerSideOption, stacklevel=3)


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Config fields set by FEAST_<OPTION> environment variables (the client options only)."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for option, field in CLIENT.items():
        raw = env.get(ENV_PREFIX + option.upper())
        if raw:
            found.setdefault(field, raw)
    return found
