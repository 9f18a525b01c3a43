"""The value types under the name users import: provender.kernel.value_types."""

from provender.kernel.value_types import (
    VALID_NAMES,
    VALID_TYPES,
    VALUE_FIELD,
    ValueType,
    arrow_type,
    from_value,
    python_value_type,
    to_value,
    value_type_of,
)

__all__ = [
    "VALID_NAMES",
    "VALID_TYPES",
    "VALUE_FIELD",
    "ValueType",
    "arrow_type",
    "from_value",
    "python_value_type",
    "to_value",
    "value_type_of",
]
