"""Loader of the venue-traffic corpus in ``tests/data/<venue>/<name>.jsonl`` (not a test module).

Each line of a corpus file is one frame the venue sent, as text: compact JSON, or one of the
venue's documented non-JSON text frames (:data:`TEXT_FRAMES`, e.g. OKX's ``pong``). Where every
file comes from is written in ``tests/data/SOURCES.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DATA", "TEXT_FRAMES", "VENUES", "all_files", "frames", "messages"]

DATA = Path(__file__).resolve().parent / "data"
"""The corpus directory."""

VENUES = ("binance_spot", "binance_usdm", "okx", "bybit", "deribit")
"""The venue directories of the corpus."""

TEXT_FRAMES: dict[str, frozenset[str]] = {"okx": frozenset({"pong"})}
"""Documented non-JSON text frames per venue (OKX answers the text ``ping`` with ``pong``)."""


def _path(venue: str, name: str) -> Path:
    if venue not in VENUES:
        raise ValueError(f"unknown venue {venue!r}; expected one of {VENUES}")
    path = DATA / venue / (name if name.endswith(".jsonl") else f"{name}.jsonl")
    if not path.is_file():
        raise FileNotFoundError(f"no corpus file {path}")
    return path


def frames(venue: str, name: str) -> list[str]:
    """The frames of ``tests/data/<venue>/<name>.jsonl``, one per line, exactly as written.

    Raises:
        ValueError: ``venue`` is not a corpus venue.
        FileNotFoundError: the file does not exist.
    """
    text = _path(venue, name).read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line != ""]


def messages(venue: str, name: str) -> list[Any]:
    """The frames of a corpus file decoded: JSON values, and text frames as their text.

    Raises:
        ValueError: a line is neither JSON nor a documented text frame of ``venue``.
    """
    text_frames = TEXT_FRAMES.get(venue, frozenset())
    out: list[Any] = []
    for number, frame in enumerate(frames(venue, name), start=1):
        if frame in text_frames:
            out.append(frame)
            continue
        try:
            out.append(json.loads(frame))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{venue}/{name} line {number}: not JSON: {exc}") from exc
    return out


def all_files() -> list[tuple[str, str]]:
    """Every corpus file as ``(venue, name)`` (name without ``.jsonl``), sorted."""
    return [
        (venue, path.stem)
        for venue in VENUES
        if (DATA / venue).is_dir()
        for path in sorted((DATA / venue).glob("*.jsonl"))
    ]
