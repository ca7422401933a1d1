"""A venue publishing like a real one: the same numbered message to every subscribed connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

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
