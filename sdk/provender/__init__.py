"""Provender: a feature store for machine learning that speaks the Feast 0.9 wire protocol.

from provender import Client, Entity, Feature, FeatureTable, FileSource, ValueType
"""

__version__ = "0.1.0"

from provender.client import Client
from provender.data_format import AvroFormat, ParquetFormat, ProtoFormat
from provender.data_source import FileSource, KafkaSource
from provender.entity import Entity
from provender.feature import Feature
from provender.feature_table import FeatureTable
from provender.value_type import ValueType

__all__ = [
    "AvroFormat",
    "Client",
    "Entity",
    "Feature",
    "FeatureTable",
    "FileSource",
    "KafkaSource",
    "ParquetFormat",
    "ProtoFormat",
    "ValueType",
    "__version__",
]
