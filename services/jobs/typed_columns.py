"""Source columns to the Spark type of their declared value type, flagging the values that do not convert.

Used by ingestion (bad values go to the dead letter) and retrieval (entity and feature columns are compared and
returned in their declared types). A column whose type can never hold the declared value type is a
configuration error: InvalidArgument naming the column, its type and what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from provender.kernel.errors import InvalidArgument
from provender.kernel.value_types import ValueType, spark_type

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NUMERIC = (*_INTEGRAL, T.FloatType, T.DoubleType, T.DecimalType)
_ACCEPTED: dict[ValueType, tuple[type[T.DataType], ...]] = {
    ValueType.INT32: (*_NUMERIC, T.StringType),
    ValueType.INT64: (*_NUMERIC, T.StringType),
    ValueType.FLOAT: (*_NUMERIC, T.StringType),
    ValueType.DOUBLE: (*_NUMERIC, T.StringType),
    ValueType.BOOL: (T.BooleanType, T.StringType),
    ValueType.STRING: (T.StringType,),
    ValueType.BYTES: (T.BinaryType, T.StringType),
}
_ACCEPTED_NAMES = {
    vt: ", ".join(sorted({t.__name__.removesuffix("Type").lower() for t in types}))
    for vt, types in _ACCEPTED.items()
}


@dataclass(frozen=True)
class TypedColumn:
    """The converted column, and a condition true where a non-null source value did not convert."""

    value: Column
    bad: Column


def _scalar(source: Column, source_type: T.DataType, vt: ValueType) -> TypedColumn:
    target = spark_type(vt)
    if type(source_type) is type(target):
        return TypedColumn(source, F.lit(False))
    converted = source.try_cast(target)
    bad = source.isNotNull() & converted.isNull()
    if vt in (ValueType.INT32, ValueType.INT64) and isinstance(source_type, _NUMERIC):
        # a narrowing or fractional number is not an integer of this type: it must survive the round trip
        bad = bad | (source.isNotNull() & (converted.cast(source_type) != source))
    return TypedColumn(converted, bad)


def _accepts(source_type: T.DataType, vt: ValueType) -> bool:
    if vt.is_list:
        return isinstance(source_type, T.ArrayType) and _accepts(source_type.elementType, vt.element_type)
    return isinstance(source_type, _ACCEPTED[vt])


def convert(name: str, source_type: T.DataType, vt: ValueType, role: str) -> TypedColumn:
    """Column `name` (of `source_type`) as `vt`; `role` ("entity", "feature") names it in errors."""
    if not _accepts(source_type, vt):
        element = vt.element_type
        accepted = _ACCEPTED_NAMES[element] if not vt.is_list else f"arrays of {_ACCEPTED_NAMES[element]}"
        raise InvalidArgument(
            f"{role} column {name!r}",
            source_type.simpleString(),
            f"a column of one of [{accepted}] for value type {vt.name}",
        )
    source = F.col(f"`{name}`")
    if not vt.is_list:
        return _scalar(source, source_type, vt)
    assert isinstance(source_type, T.ArrayType)
    element_type = source_type.elementType
    converted = F.transform(source, lambda x: _scalar(x, element_type, vt.element_type).value)
    bad_element = F.exists(source, lambda x: x.isNull() | _scalar(x, element_type, vt.element_type).bad)
    return TypedColumn(converted, source.isNotNull() & bad_element)
