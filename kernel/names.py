"""The rule every registry name follows (projects, entities, feature tables, features): Core refuses others when
they are applied, and Serving refuses them at the edge, since no table can have them."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_NAME_LENGTH = 255
NAME_RULE = (
    "a name matching ^[a-zA-Z_][a-zA-Z0-9_]*$ (letters, digits, underscores; not starting with a digit)"
)


def is_valid_name(value: str) -> bool:
    return 0 < len(value) <= MAX_NAME_LENGTH and NAME_PATTERN.match(value) is not None
