"""Windows of events or messages as pandas DataFrames (extra ``pandas``).

``to_dataframe(items)`` turns what a notebook collected — client events (pydantic models), decoded
messages (dicts), the recent events a display keeps — into one table, nested fields flattened
into dotted columns (``data.px``). pandas is imported only when called; without it the call
raises an ``ImportError`` naming the extra to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["to_dataframe"]


def to_dataframe(
    items: Iterable[Any],
    *,
    flatten: bool = True,
    index: str | None = None,
    columns: Iterable[str] | None = None,
) -> Any:
    """One row per item: a pydantic model's fields (``model_dump``), a mapping's keys, or any
    other value in a ``value`` column.

    Args:
        items: events, messages, or anything else; consumed once.
        flatten: spread nested mappings into dotted columns (``data.px``); else keep them as
            objects in one column.
        index: a column to use as the index (e.g. ``"at"`` for events).
        columns: the columns to keep, in this order (missing ones come out empty).

    Returns:
        A ``pandas.DataFrame`` (typed ``Any`` so that rxws does not need pandas' type stubs).

    Raises:
        ImportError: pandas is not installed (``pip install 'rxws[pandas]'``).
        KeyError: ``index`` is not a column.
    """
    try:
        pd = importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            "rxws.frames.to_dataframe needs pandas, which is not installed: pip install 'rxws[pandas]'"
        ) from exc
    records = [_record(item) for item in items]
    frame = pd.json_normalize(records, sep=".") if flatten and records else pd.DataFrame.from_records(records)
    if columns is not None:
        frame = frame.reindex(columns=list(columns))
    if index is not None:
        frame = frame.set_index(index)
    return frame


def _record(item: Any) -> dict[str, Any]:
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json")
    if isinstance(item, Mapping):
        return {str(k): v for k, v in item.items()}
    return {"value": item}
