"""The value types: Feast ValueType numbers, the `Value` oneof field that carries each, how Python values map to
them, and the Arrow (parquet), pandas and Spark types that hold each. The one module that knows these facts;
everything else imports it. pyarrow, pandas and pyspark are imported only by the function that needs them.
"""

from __future__ import annotations

import enum

from provender.proto.feast.types import Value_pb2


class ValueType(enum.IntEnum):
    """feast.types.ValueType.Enum, number for number."""

    INVALID = 0
    BYTES = 1
    STRING = 2
    INT32 = 3
    INT64 = 4
    DOUBLE = 5
    FLOAT = 6
    BOOL = 7
    BYTES_LIST = 11
    STRING_LIST = 12
    INT32_LIST = 13
    INT64_LIST = 14
    DOUBLE_LIST = 15
    FLOAT_LIST = 16
    BOOL_LIST = 17

    @property
    def is_list(self) -> bool:
        return self.value >= 11

    @property
    def element_type(self) -> ValueType:
        """The scalar type of a list type (itself for scalars)."""
        return ValueType(self.value - 10) if self.is_list else self

    @classmethod
    def parse(cls, name_or_number: str | int) -> ValueType:
        """From a name ("INT64", case-insensitive) or a number; raises ValueError listing what is accepted."""
        try:
            if isinstance(name_or_number, int):
                return cls(name_or_number)
            return cls[name_or_number.strip().upper()]
        except (KeyError, ValueError):
            raise ValueError(
                f"unknown value type {name_or_number!r}; expected one of {', '.join(VALID_NAMES)}"
            ) from None


# Every type a feature or entity may have (INVALID excluded).
VALID_TYPES: tuple[ValueType, ...] = tuple(t for t in ValueType if t is not ValueType.INVALID)
VALID_NAMES: tuple[str, ...] = tuple(t.name for t in VALID_TYPES)

# The `Value.val` oneof field that carries each type. The oneof numbers equal the ValueType numbers.
VALUE_FIELD: dict[ValueType, str] = {
    ValueType.BYTES: "bytes_val",
    ValueType.STRING: "string_val",
    ValueType.INT32: "int32_val",
    ValueType.INT64: "int64_val",
    ValueType.DOUBLE: "double_val",
    ValueType.FLOAT: "float_val",
    ValueType.BOOL: "bool_val",
    ValueType.BYTES_LIST: "bytes_list_val",
    ValueType.STRING_LIST: "string_list_val",
    ValueType.INT32_LIST: "int32_list_val",
    ValueType.INT64_LIST: "int64_list_val",
    ValueType.DOUBLE_LIST: "double_list_val",
    ValueType.FLOAT_LIST: "float_list_val",
    ValueType.BOOL_LIST: "bool_list_val",
}
_TYPE_OF_FIELD: dict[str, ValueType] = {f: t for t, f in VALUE_FIELD.items()}


def value_type_of(value: Value_pb2.Value) -> ValueType | None:
    """The type a Value carries, or None for an unset (null) Value."""
    field = value.WhichOneof("val")
    return _TYPE_OF_FIELD[field] if field else None


def python_value_type(value: object) -> ValueType:
    """How a client types a Python scalar (docs/protocol.md): int INT64, float DOUBLE, str STRING, bool BOOL, bytes BYTES."""
    if isinstance(value, bool):
        return ValueType.BOOL
    if isinstance(value, int):
        return ValueType.INT64
    if isinstance(value, float):
        return ValueType.DOUBLE
    if isinstance(value, str):
        return ValueType.STRING
    if isinstance(value, bytes):
        return ValueType.BYTES
    raise TypeError(
        f"cannot infer a value type for {type(value).__name__}; use int, float, str, bool or bytes"
    )


def to_value(value: object, value_type: ValueType | None = None) -> Value_pb2.Value:
    """A Python value (or list) as a `feast.types.Value` of `value_type` (inferred for scalars when omitted)."""
    out = Value_pb2.Value()
    if value is None:
        return out
    vt = value_type if value_type is not None else python_value_type(value)
    field = VALUE_FIELD[vt]
    if vt.is_list:
        getattr(out, field).val.extend(value)  # type: ignore[call-overload]
    else:
        setattr(out, field, value)
    return out


def from_value(value: Value_pb2.Value) -> object:
    """The Python value a `feast.types.Value` carries (a list for list types, None when unset)."""
    field = value.WhichOneof("val")
    if field is None:
        return None
    got = getattr(value, field)
    return list(got.val) if field.endswith("_list_val") else got


def arrow_type(value_type: ValueType):
    """The pyarrow type that holds `value_type` in parquet (lists as list<element>)."""
    import pyarrow as pa

    scalars = {
        ValueType.BYTES: pa.binary(),
        ValueType.STRING: pa.string(),
        ValueType.INT32: pa.int32(),
        ValueType.INT64: pa.int64(),
        ValueType.DOUBLE: pa.float64(),
        ValueType.FLOAT: pa.float32(),
        ValueType.BOOL: pa.bool_(),
    }
    if value_type.is_list:
        return pa.list_(scalars[value_type.element_type])
    return scalars[value_type]


def spark_type(value_type: ValueType):
    """The Spark SQL type that holds `value_type` (lists as arrays of nullable elements)."""
    from pyspark.sql import types as T

    scalars = {
        ValueType.BYTES: T.BinaryType(),
        ValueType.STRING: T.StringType(),
        ValueType.INT32: T.IntegerType(),
        ValueType.INT64: T.LongType(),
        ValueType.DOUBLE: T.DoubleType(),
        ValueType.FLOAT: T.FloatType(),
        ValueType.BOOL: T.BooleanType(),
    }
    if value_type.is_list:
        return T.ArrayType(scalars[value_type.element_type], containsNull=True)
    return scalars[value_type]


def pandas_dtype(value_type: ValueType):
    """The pandas dtype of a column of `value_type` values, the same online and offline, with or without missing
    values: nullable Int32/Int64/boolean, float32/float64 (NaN), object for strings, bytes and lists."""
    import pandas as pd

    nullable = {
        ValueType.INT32: pd.Int32Dtype(),
        ValueType.INT64: pd.Int64Dtype(),
        ValueType.FLOAT: "float32",
        ValueType.DOUBLE: "float64",
        ValueType.BOOL: pd.BooleanDtype(),
    }
    return nullable.get(value_type, "object")


def arrow_to_pandas_dtype(arrow: object):
    """A `types_mapper` for `pyarrow.Table.to_pandas` that gives parquet columns the dtypes of `pandas_dtype`
    (None: pyarrow's own conversion, which already is the rule for floats, strings, bytes, lists and times)."""
    for value_type in (ValueType.INT32, ValueType.INT64, ValueType.BOOL):
        if arrow == arrow_type(value_type):
            return pandas_dtype(value_type)
    return None
