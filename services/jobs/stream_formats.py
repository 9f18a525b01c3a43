"""Decoding a Kafka micro-batch into the columns of a table's stream source.

The input is Spark's Kafka frame (`value` bytes, `partition`, `offset`, `timestamp`, ...). The output keeps those
and adds one column per message field the table needs (entities, features, event and created time), renamed by the
source's field_mapping, plus `UNDECODABLE`: why a message could not be decoded (null when it was). A message that
does not decode never fails the batch: it becomes a dead letter and the stream goes on.

- avro: schemaless Avro binary (as `fastavro.schemaless_writer` and Feast 0.9's producers write it) with the
  writer's schema given as JSON, decoded by Spark's own `from_avro` (the spark-avro jar) in PERMISSIVE mode; fields
  keep their Avro types (timestamp-micros is a timestamp). A message that decodes to no value at all is counted
  as undecodable (Spark reads a corrupt message so).
- json: one JSON object per message; every field is read as text (a number as its digits, a list as a list of
  texts) and converted to its declared type as batch sources are (typed_columns), so a value of the wrong type is
  named in the dead letter instead of silently becoming null.
- proto: a protobuf message class importable in the job's environment (`module.Message`); each message is decoded
  in Python and read as its JSON mapping (field names as declared), then as json above.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.args import JobTable, KafkaJobSource

UNDECODABLE = "__undecodable"
DECODED = "__decoded"
_CORRUPT = "__corrupt"
# Spark's Kafka source columns, kept for the dead letters
KAFKA_COLUMNS = ("partition", "offset", "timestamp")


def message_fields(table: JobTable, source: KafkaJobSource) -> dict[str, str]:
    """Message field name → the name the table uses, for every column the table needs from a message."""
    inverse = {name: field for field, name in source.field_mapping.items()}
    wanted = [c.name for c in (*table.entities, *table.features)]
    wanted.append(source.event_timestamp_column)
    if source.created_timestamp_column:
        wanted.append(source.created_timestamp_column)
    return {inverse.get(name, name): name for name in dict.fromkeys(wanted)}


def check(table: JobTable, source: KafkaJobSource) -> None:
    """What can be checked before the first message, so that a wrong source fails the job at start: the Avro
    schema is a record with the fields the table needs; the protobuf class imports."""
    if source.message_format == "avro":
        try:
            schema = json.loads(source.schema_json)
        except json.JSONDecodeError as e:
            raise InvalidArgument(
                "stream_source.schema_json", source.schema_json, f"Avro schema JSON ({e})"
            ) from None
        names = [f.get("name") for f in schema.get("fields", [])] if isinstance(schema, dict) else []
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise InvalidArgument("stream_source.schema_json", source.schema_json, "an Avro record schema")
        missing = [f for f in required_fields(table, source) if f not in names]
        if missing:
            raise InvalidArgument(
                f"table {table.name}.stream_source.schema_json fields",
                missing,
                f"fields of the schema ({names})",
            )
    elif source.message_format == "proto":
        _message_class(source.class_path)


def required_fields(table: JobTable, source: KafkaJobSource) -> list[str]:
    """The message fields every message must have (the created time is optional, as in batch sources)."""
    created = source.created_timestamp_column
    return [f for f, name in message_fields(table, source).items() if not created or name != created]


def decode(batch: DataFrame, table: JobTable, source: KafkaJobSource) -> DataFrame:
    """The micro-batch with one column per needed message field (table names) and UNDECODABLE."""
    if source.message_format == "avro":
        decoded = _avro(batch, source)
    elif source.message_format == "json":
        decoded = _json(batch, F.col("value").cast("string"), table, source)
    else:
        decoded = _json(batch, _proto_as_json(source.class_path)(F.col("value")), table, source)
    fields = message_fields(table, source)
    struct_fields = decoded.schema[DECODED].dataType.fieldNames()  # type: ignore[attr-defined]
    missing = [f for f in required_fields(table, source) if f not in struct_fields]
    fields = {f: name for f, name in fields.items() if f in struct_fields}
    if missing:
        raise InvalidArgument(
            f"table {table.name}.stream_source fields",
            missing,
            f"fields of the {source.message_format} messages (they have {struct_fields})",
        )
    reason = decoded[UNDECODABLE] if UNDECODABLE in decoded.columns else F.lit(None).cast("string")
    return decoded.select(
        F.col("value"),
        *[F.col(f"`{c}`") for c in KAFKA_COLUMNS],
        *[F.col(DECODED).getField(field).alias(name) for field, name in fields.items()],
        F.when(F.col("value").isNull(), F.lit(f"{source.message_format}: a message without a value"))
        .otherwise(reason)
        .alias(UNDECODABLE),
    )


def _avro(batch: DataFrame, source: KafkaJobSource) -> DataFrame:
    from pyspark.sql.avro.functions import from_avro

    decoded = batch.select(
        "*", from_avro(F.col("value"), source.schema_json, {"mode": "PERMISSIVE"}).alias(DECODED)
    )
    # Spark 4 reads a corrupt message as a record of nulls (not as a null): a record without a single value
    names = decoded.schema[DECODED].dataType.fieldNames()  # type: ignore[attr-defined]
    every_null = F.lit(True)
    for name in names:
        every_null = every_null & F.col(DECODED).getField(name).isNull()
    return decoded.withColumn(
        UNDECODABLE,
        F.when(
            F.col("value").isNotNull() & (F.col(DECODED).isNull() | every_null),
            F.lit("avro: not a message of the source's schema"),
        ),
    )


def _json_type(spark_type: T.DataType) -> T.DataType:
    """Every leaf read as text; lists stay lists."""
    if isinstance(spark_type, T.ArrayType):
        return T.ArrayType(T.StringType())
    return T.StringType()


def _json(batch: DataFrame, text: Column, table: JobTable, source: KafkaJobSource) -> DataFrame:
    from provender.kernel.value_types import spark_type

    types = {c.name: spark_type(c.value_type) for c in (*table.entities, *table.features)}
    schema = T.StructType(
        [
            T.StructField(field, _json_type(types.get(name, T.StringType())))
            for field, name in message_fields(table, source).items()
        ]
        + [T.StructField(_CORRUPT, T.StringType())]
    )
    parsed = F.from_json(text, schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT})
    what = "proto" if source.message_format == "proto" else "json"
    return batch.select("*", text.alias("__text"), parsed.alias(DECODED)).select(
        *batch.columns,
        F.col(DECODED),
        F.when(
            F.col("value").isNotNull()
            & (
                F.col("__text").isNull()
                | F.col(DECODED).isNull()
                | F.col(DECODED).getField(_CORRUPT).isNotNull()
            ),
            F.lit(f"{what}: not a message of the source's format"),
        ).alias(UNDECODABLE),
    )


def _message_class(class_path: str) -> type:
    module_name, _, class_name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as e:
        raise InvalidArgument(
            "stream_source.class_path", class_path, f"a protobuf message class importable in the job ({e})"
        ) from None


def _proto_as_json(class_path: str) -> Callable[[Column], Column]:
    """A pandas UDF: serialized messages of `class_path` → their JSON mapping (null when one does not decode)."""
    module_name, _, class_name = class_path.rpartition(".")
    _message_class(class_path)  # fails here, in the driver, rather than in every task

    @F.pandas_udf(T.StringType())  # type: ignore[call-overload]
    def to_json(values: pd.Series) -> pd.Series:
        from google.protobuf import json_format
        from google.protobuf.message import DecodeError

        cls = getattr(importlib.import_module(module_name), class_name)

        def one(raw: bytes | None) -> str | None:
            if raw is None:
                return None
            try:
                return json_format.MessageToJson(
                    cls.FromString(raw), preserving_proto_field_name=True, indent=None
                )
            except (DecodeError, ValueError):
                return None

        return values.map(one)

    return to_json
