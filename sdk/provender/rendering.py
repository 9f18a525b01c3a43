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


def html_table(
    title: str, columns: list[str], rows: list[tuple[Any, ...]] | list[list[Any]], header: bool = True
) -> str:
    """A small HTML table for notebooks (values shown as text, None as an empty cell)."""
    head = "<tr>" + "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns) + "</tr>"
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='text-align:left'>{'' if v is None else html.escape(_plain(v))}</td>" for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<div><strong>{html.escape(title)}</strong><table>{head if header else ''}{body}</table></div>"
