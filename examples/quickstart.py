"""Quickstart: connect, watch two topics, send a correlated request, see states and events, close.

Runs against an embedded MockVenue by default; pass a ``ws://`` URL of a GenericJson venue to use it::

    python examples/quickstart.py [ws://host:port]
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from typing import Any

from rxws import WebSocketClient
from rxws.events import Event
from rxws.protocols import GenericJson
from rxws.testing import MockVenue

TOPICS = ("trades.BTC-USD", "book.ETH-USD")


async def run(url: str) -> None:
    client = WebSocketClient(url, protocol=GenericJson())
    client.state.subscribe(lambda state: print(f"state  {state}"))  # replays DISCONNECTED at once

    def on_event(event: Event) -> None:
        print(
            f"event  {event.kind}: {event.model_dump(mode='json', exclude={'at', 'kind'}, exclude_defaults=True)}"
        )

    client.events.subscribe(on_event)
    await client.connect()

    counts: Counter[str] = Counter()
    first: dict[str, Any] = {}

    def on_tick(message: dict[str, Any]) -> None:
        counts[message["topic"]] += 1
        first.setdefault(message["topic"], message)

    sub = client.watch(*TOPICS).subscribe(on_tick)  # one batched subscribe message
    reply = await client.request("echo", {"x": 1}, timeout=2.0)  # matched to its reply by id
    print(f"reply  echo -> {reply}")
    await asyncio.sleep(1.0)
    for topic, message in first.items():
        print(f"first  {topic}: {message}")
    print(f"counts {dict(counts)}")
    sub.dispose()  # the last observer of a topic sends the unsubscribe
    await client.close()


async def main() -> int:
    if len(sys.argv) > 1:
        await run(sys.argv[1])
        return 0
    async with MockVenue(rate=20) as venue:
        await run(venue.url)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
