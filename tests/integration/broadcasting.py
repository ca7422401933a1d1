"""A venue publishing like a real one: the same numbered message to every subscribed connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from rxws.testing import MockVenue

TOPICS = ("trades.BTC", "book.ETH")


@contextlib.asynccontextmanager
async def broadcasting(venue: MockVenue, period: float = 0.005) -> AsyncIterator[None]:
    """Publish every topic to every subscribed connection (the same numbers on each), as a
    venue does, every ``period`` seconds (at most 4,000 rounds) while the block runs."""

    async def run() -> None:
        for _ in range(4000):
            for topic in TOPICS:
                await venue.publish(topic, {"px": 1})
            await asyncio.sleep(period)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Numbers:
    """What a watch of TOPICS received: each topic's numbers in arrival order; each message pokes
    ``timeline`` (the test's Timeline) so that waits on them wake up."""

    def __init__(self, timeline: Any) -> None:
        self._timeline = timeline
        self.got: dict[str, list[int]] = {t: [] for t in TOPICS}

    def __call__(self, message: Any) -> None:
        self.got[message["topic"]].append(message["seq"])
        self._timeline.poke()

    def each_at_least(self, count: int) -> bool:
        """Whether every topic has received ``count`` numbers."""
        return all(len(seqs) >= count for seqs in self.got.values())

    def last(self) -> dict[str, int]:
        """Each topic's latest number."""
        return {t: seqs[-1] for t, seqs in self.got.items()}

    def past(self, marks: dict[str, int], more: int) -> bool:
        """Whether every topic has reached ``more`` numbers past its mark in ``marks``."""
        return all(self.got[t][-1] >= marks[t] + more for t in TOPICS)

    def assert_once_each_in_order(self) -> None:
        """Every topic's numbers arrived once each, in order, without a gap."""
        for topic, seqs in self.got.items():
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), topic
