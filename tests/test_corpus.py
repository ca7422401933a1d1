"""The venue-traffic corpus (tests/data) is complete, sourced and readable.

Every ``tests/data/<venue>/*.jsonl`` is listed in ``tests/data/SOURCES.md`` with where it comes
from (a repository, a path and a 40-hex commit, or a documentation URL and the date it was read);
every line is one frame (JSON, or a documented text frame such as OKX's ``pong``); and the corpus
holds at least 100 frames across all five venues.
"""

from __future__ import annotations

import json
import re

import pytest
from corpus import DATA, TEXT_FRAMES, VENUES, all_files, frames, messages

SOURCES = DATA / "SOURCES.md"
_COMMIT = re.compile(r"\b[0-9a-f]{40}\b")
_REPO = re.compile(r"\b[\w.-]+/[\w.-]+, `[^`]+`")  # owner/name, `path`
_URL = re.compile(r"https://\S+")
_DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def _rows() -> dict[str, str]:
    """SOURCES.md table rows keyed by the file named in their first cell."""
    rows: dict[str, str] = {}
    for line in SOURCES.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `([a-z_]+/[\w.-]+\.jsonl)` \|(.*)$", line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is listed twice"
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_venue_has_corpus_files() -> None:
    venues = {venue for venue, _ in all_files()}
    assert venues == set(VENUES)


@pytest.mark.parametrize(("venue", "name"), all_files())
def test_file_is_listed_with_its_source(venue: str, name: str) -> None:
    row = _rows().get(f"{venue}/{name}.jsonl")
    assert row is not None, f"{venue}/{name}.jsonl is not listed in SOURCES.md"
    cells = [c.strip() for c in row.split(" | ")]
    assert len(cells) >= 3, row
    kind, source = cells[0], cells[1]
    assert re.search(r"\b(capture|fixture|doc example|derived)\b", kind), kind
    from_repo = bool(_REPO.search(source) and _COMMIT.search(source))
    from_docs = bool(_URL.search(source) and _DATE.search(source))
    assert from_repo or from_docs, f"{venue}/{name}: no repository+path+commit nor URL+date: {source}"


def test_no_listed_file_is_missing() -> None:
    listed = set(_rows())
    present = {f"{venue}/{name}.jsonl" for venue, name in all_files()}
    assert listed == present


@pytest.mark.parametrize(("venue", "name"), all_files())
def test_every_line_is_one_frame(venue: str, name: str) -> None:
    lines = frames(venue, name)
    assert lines, f"{venue}/{name} is empty"
    decoded = messages(venue, name)
    assert len(decoded) == len(lines)
    for line, message in zip(lines, decoded, strict=True):
        assert line == line.strip(), f"{venue}/{name}: whitespace around a frame: {line[:60]!r}"
        if line in TEXT_FRAMES.get(venue, frozenset()):
            assert message == line
            continue
        assert isinstance(message, dict), f"{venue}/{name}: a frame that is not an object: {line[:60]}"
        # Compact JSON text, as venues send it: re-encoding compactly gives the same text.
        assert json.dumps(message, separators=(",", ":"), ensure_ascii=False) == line


def test_unknown_venue_and_missing_file_are_refused() -> None:
    with pytest.raises(ValueError):
        frames("kraken", "x")
    with pytest.raises(FileNotFoundError):
        frames("okx", "no_such_file")


def test_at_least_100_frames_in_all() -> None:
    total = sum(len(frames(venue, name)) for venue, name in all_files())
    assert total >= 100, total
