"""The small HTML table every notebook view is made of (``_repr_html_`` of events, the client, the
pool, the stats and the limiter), escaped throughout: a topic named ``<script>`` shows as text.

It imports nothing of rxws, so the events can render themselves without depending on the views of
:mod:`rxws._display`, which depend on the events.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

STYLE = (
    "<style>.rxws td,.rxws th{padding:1px 8px;text-align:left;font-family:monospace}"
    ".rxws caption{text-align:left;font-weight:bold}</style>"
)
"""The one style block the views share."""


def escape(value: Any) -> str:
    """``str(value)`` escaped for HTML text and attributes."""
    return html.escape(str(value), quote=True)


def table(caption: str, rows: Iterable[Iterable[Any]], header: Iterable[Any] = ()) -> str:
    """A captioned table of escaped cells, with an optional header row."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='rxws'><caption>{escape(caption)}</caption>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def fields_html(title: str, fields: dict[str, Any]) -> str:
    """One record (an event's fields) as a two-column table under ``title``, with the style."""
    return STYLE + table(title, fields.items())
