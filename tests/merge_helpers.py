"""Helpers of the TopicMerge tests (tests/core/test_merge*.py): not a test module."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import combinations
from typing import Any

from rxws.core.merge import TopicMerge
from rxws.core.sequence import SequenceTracker
from rxws.events import GapDetected
from rxws.protocols.base import Seq

__all__ = ["gaps_of", "interleavings", "merge_of", "one", "run"]


def one(n: int, prev: int | None = None, reset: bool = False) -> Seq:
    """A one-update message numbered ``n``."""
    return Seq(n, n, prev, reset)


def gaps_of(seqs: Sequence[Seq]) -> list[GapDetected]:
    """The gaps a SequenceTracker reports for the merged output ``seqs``."""
    tracker = SequenceTracker()
    out = [tracker.observe("t", s, float(i)) for i, s in enumerate(seqs)]
    return [g for g in out if g is not None]


def interleavings(a: int, b: int) -> Iterator[list[int]]:
    """Every order of ``a`` offers of source 1 and ``b`` offers of source 2, each source in order."""
    for positions in combinations(range(a + b), a):
        chosen = set(positions)
        yield [1 if i in chosen else 2 for i in range(a + b)]


def merge_of(*sources: int) -> TopicMerge:
    """A fresh merge that knows ``sources`` (added in that order)."""
    merge = TopicMerge()
    for source in sources:
        merge.add_source(source)
    return merge


def run(merge: TopicMerge, order: Sequence[int], streams: dict[int, Sequence[Any]]) -> list[Any]:
    """Offer each source's stream in ``order`` (a list of source ids); the delivered items.

    Items are ``Seq`` (sequenced) or ``(None, key)`` pairs (keyed)."""
    cursor = dict.fromkeys(streams, 0)
    out: list[Any] = []
    for source in order:
        item = streams[source][cursor[source]]
        cursor[source] += 1
        seq, key = (item, None) if isinstance(item, Seq) else item
        if merge.offer(source, seq, key):
            out.append(item)
    return out
