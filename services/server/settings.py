"""Server settings declared once: each field of a settings dataclass says its flag, its PROVENDER_* environment
variable and its help (`setting(...)`), and `build_parser` and `read` make the command line and the settings
from those fields. Adding an option to Core or Serving is one field (and, for the chart, its value).

The kind of a field comes from its type: `str`, `int`, `float`; `bool` is a switch (`--flag`, or `--no-flag` for
one that is on by default; the variable takes 1/true/yes/on or 0/false/no/off); `dict[str, str]` takes KEY=VALUE
flags, repeatable, and a comma-separated variable; `list[str]` takes a comma-separated value. A variable sets
the default, a flag overrides it; a variable that does not parse stops the program with a message naming it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
ENV_PREFIX = "PROVENDER_"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class Flag:
    flag: str
    env: str
    help: str
    group: str = ""


def setting(default: Any, *, flag: str, env: str, help: str, group: str = "") -> Any:
    """A settings field with its flag (`--port`), environment variable (`CORE_PORT` for PROVENDER_CORE_PORT) and
    help; `group` titles a section of --help."""
    meta = {"flag": Flag(flag, env, help, group)}
    if isinstance(default, dict | list):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _kind(field: dataclasses.Field) -> str:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    return kind.replace(" ", "")


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(text)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. spark.executor.memory=4g")
    return key.strip(), value


def _parse_env(field: dataclasses.Field, raw: str) -> Any:
    kind = _kind(field)
    try:
        if kind == "bool":
            return _boolean(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "dict[str,str]":
            return [_key_value(item) for item in raw.split(",") if item.strip()]
        if kind == "list[str]":
            return raw
        return raw
    except (ValueError, argparse.ArgumentTypeError):
        expected = {"bool": " or ".join(("/".join(_TRUE), "/".join(_FALSE))), "int": "a whole number",
                    "float": "a number", "dict[str,str]": "KEY=VALUE pairs, comma-separated"}.get(kind, "a value")  # fmt: skip
        meta: Flag = field.metadata["flag"]
        raise SystemExit(f"{ENV_PREFIX}{meta.env}={raw!r} is not valid: expected {expected}") from None


def env_default(field: dataclasses.Field) -> Any:
    """The field's default as its environment variable sets it (the dataclass default when unset)."""
    meta: Flag = field.metadata["flag"]
    raw = os.environ.get(ENV_PREFIX + meta.env)
    if raw is None or raw == "":
        default = (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        )
        if _kind(field) == "dict[str,str]":
            return list(default.items())
        if _kind(field) == "list[str]":
            return ",".join(default)
        return default
    return _parse_env(field, raw)


def flag_fields(settings: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(settings) if "flag" in f.metadata]


def build_parser(settings: type, prog: str, description: str) -> argparse.ArgumentParser:
    """The command line of `settings`: one flag per declared field, its variable as the default."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    groups: dict[str, Any] = {}
    for field in flag_fields(settings):
        meta: Flag = field.metadata["flag"]
        target = (
            parser if not meta.group else groups.setdefault(meta.group, parser.add_argument_group(meta.group))
        )
        kind = _kind(field)
        help_text = f"{meta.help} ({ENV_PREFIX}{meta.env})"
        default = env_default(field)
        if kind == "bool":
            action = "store_false" if meta.flag.startswith("--no-") else "store_true"
            target.add_argument(meta.flag, dest=field.name, action=action, default=default, help=help_text)
        elif kind == "dict[str,str]":
            target.add_argument(meta.flag, dest=field.name, action="append", type=_key_value, default=default,
                                help=help_text + "; repeatable")  # fmt: skip
        else:
            cast: Callable[[str], Any] = {"int": int, "float": float}.get(kind, str)
            target.add_argument(meta.flag, dest=field.name, type=cast, default=default, help=help_text)
    return parser


def read(settings: type[T], args: argparse.Namespace, **others: Any) -> T:
    """The settings from parsed flags (and `others` for fields without a flag)."""
    values: dict[str, Any] = dict(others)
    for field in flag_fields(settings):
        value = getattr(args, field.name)
        kind = _kind(field)
        if kind == "dict[str,str]":
            value = dict(value or [])
        elif kind == "list[str]":
            value = [part.strip() for part in (value or "").split(",") if part.strip()]
        values[field.name] = value
    return settings(**values)
