"""Producing rows to a feature table's Kafka topic in the table's own message format, for notebooks and tests:
Avro (schemaless binary with the source's schema, as Feast 0.9's producers write it), JSON, or protobuf (the
source's message class, importable here). Needs the `kafka` extra (confluent-kafka, fastavro).

The DataFrame's columns are the message's fields (the source's field_mapping renames them to the table's names
on the way in); timestamps may be pandas or datetime values, or Unix microseconds for Avro timestamp-micros.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from provender.data_format import AvroFormat, JsonFormat, ProtoFormat
from provender.data_source import KafkaSource
from provender.kernel.errors import InvalidArgument, Unavailable
from provender.kernel.extras import require


@dataclass(frozen=True)
class Produced:
    """What `produce` sent: messages, topic and the brokers."""

    messages: int
    topic: str
    bootstrap_servers: str


def _plain(value: Any) -> Any:
    """A DataFrame cell as a plain Python value (None for NaN/NaT)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return value


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _records(df: pd.DataFrame) -> Iterator[dict[str, Any]]:
    for row in df.to_dict(orient="records"):
        yield {k: _plain(v) for k, v in row.items()}


def encoder(source: KafkaSource) -> Any:
    """A function record → message bytes for the source's format."""
    fmt = source.message_format
    if isinstance(fmt, AvroFormat):
        require("producing Avro messages", "kafka")
        import fastavro

        schema = fastavro.parse_schema(json.loads(fmt.schema_json))

        def avro(record: dict[str, Any]) -> bytes:
            record = {k: _utc(v) if isinstance(v, datetime) else v for k, v in record.items()}
            out = io.BytesIO()
            fastavro.schemaless_writer(out, schema, record)
            return out.getvalue()

        return avro
    if isinstance(fmt, JsonFormat):

        def as_json(record: dict[str, Any]) -> bytes:
            return json.dumps(
                {k: _utc(v).isoformat() if isinstance(v, datetime) else v for k, v in record.items()}
            ).encode()

        return as_json
    if isinstance(fmt, ProtoFormat):
        module_name, _, class_name = fmt.class_path.rpartition(".")
        try:
            message_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError, ValueError) as e:
            raise InvalidArgument(
                "message_format.class_path", fmt.class_path, f"an importable protobuf message class ({e})"
            ) from None
        from google.protobuf import json_format

        def proto(record: dict[str, Any]) -> bytes:
            fields = {
                k: _utc(v).isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v
                for k, v in record.items()
                if v is not None
            }
            return json_format.ParseDict(fields, message_class()).SerializeToString()

        return proto
    raise InvalidArgument("message_format", type(fmt).__name__, "AvroFormat, JsonFormat or ProtoFormat")


def produce(source: KafkaSource, df: pd.DataFrame, timeout: float = 30.0) -> Produced:
    """Send every row of `df` to the source's topic (in row order, one message each); returns when the broker
    acknowledged them all, or raises naming what failed."""
    require("producing to Kafka", "kafka")
    from confluent_kafka import KafkaException, Producer

    encode = encoder(source)
    # librdkafka's own log lines (a new broker's "coordinator load in progress: retrying") go to Python logging
    producer = Producer(
        {"bootstrap.servers": source.bootstrap_servers, "enable.idempotence": True},
        logger=logging.getLogger("provender.kafka"),
    )
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    sent = 0
    try:
        for record in _records(df):
            producer.produce(source.topic, value=encode(record), on_delivery=delivered)
            producer.poll(0)
            sent += 1
        left = producer.flush(timeout)
    except (KafkaException, BufferError) as e:
        raise Unavailable(f"Kafka at {source.bootstrap_servers} did not take the messages: {e}") from None
    if left or failures:
        raise Unavailable(
            f"Kafka at {source.bootstrap_servers} did not acknowledge {left or len(failures)} of {sent} messages "
            f"to topic {source.topic} within {timeout} s"
            + (f": {'; '.join(failures[:3])}" if failures else "")
        )
    return Produced(sent, source.topic, source.bootstrap_servers)
