"""feast-spark's client, for Feast 0.9 code that wraps its Feast client in one: `SparkClient(client)`.

Provender's Client already has every method of feast_spark.Client (get_historical_features,
start_offline_to_online_ingestion, list_jobs, get_job_by_id, ...); this wrapper only keeps feast-spark's own
argument order where it differs.
"""

from __future__ import annotations

from typing import Any

from provender.client import Client
from provender.remote_job import JobInfo


class SparkClient:
    def __init__(self, client: Client) -> None:
        self.feature_store = client

    def list_jobs(
        self, include_terminated: bool, project: str | None = None, table_name: str | None = None
    ) -> list[JobInfo]:
        return self.feature_store.list_jobs(include_terminated, table_name=table_name, project=project)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.feature_store, name)
