"""How registry objects show themselves to people: YAML text and HTML for notebooks."""

from __future__ import annotations

import html
from typing import Any

import yaml


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def to_html(title: str, data: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'><pre style='margin:0'>{html.escape(_plain(v))}</pre></td></tr>"
        for k, v in data.items()
    )
    return f"<div><strong>{html.escape(title)}</strong><table>{rows}</table></div>"


def _plain(value: Any) -> str:
    if isinstance(value, dict | list):
        return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).strip()
    return str(value)
