"""Provender: a feature store for machine learning that speaks the Feast 0.9 wire protocol.

from provender import Client, Entity, Feature, FeatureTable, FileSource, ValueType

The SDK's names are imported on first use, so that the servers and the Spark jobs (which import
`provender.<part>`) do not pay for the SDK's imports (pandas, grpc stubs) in every process and Python worker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from provender.kernel import __version__

_EXPORTS = {
    "AvroFormat": "provender.data_format",
    "Client": "provender.client",
    "Entity": "provender.entity",
    "Feature": "provender.feature",
    "FeatureTable": "provender.feature_table",
    "FileSource": "provender.data_source",
    "JsonFormat": "provender.data_format",
    "KafkaSource": "provender.data_source",
    "ParquetFormat": "provender.data_format",
    "ProtoFormat": "provender.data_format",
    "SparkClient": "provender.spark_client",
    "SparkJobFailure": "provender.remote_job",
    "SparkJobStatus": "provender.remote_job",
    "ValueType": "provender.value_type",
}

__all__ = [
    "AvroFormat",
    "Client",
    "Entity",
    "Feature",
    "FeatureTable",
    "FileSource",
    "JsonFormat",
    "KafkaSource",
    "ParquetFormat",
    "ProtoFormat",
    "SparkClient",
    "SparkJobFailure",
    "SparkJobStatus",
    "ValueType",
    "__version__",
]

if TYPE_CHECKING:
    from provender.client import Client
    from provender.data_format import AvroFormat, JsonFormat, ParquetFormat, ProtoFormat
    from provender.data_source import FileSource, KafkaSource
    from provender.entity import Entity
    from provender.feature import Feature
    from provender.feature_table import FeatureTable
    from provender.remote_job import SparkJobFailure, SparkJobStatus
    from provender.spark_client import SparkClient
    from provender.value_type import ValueType


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'provender' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
