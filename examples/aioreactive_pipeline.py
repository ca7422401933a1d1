"""An aioreactive pipeline over an rxws watch, and ``async for`` with a bounded buffer.

Runs against an embedded MockVenue and finishes in well under a second::

    python examples/aioreactive_pipeline.py

1. ``to_async_observable(client.watch(...))`` feeds aioreactive's own operators (``map``,
   ``filter``); each ``asend`` is awaited before the next trade is sent.
2. ``to_async_iterable(client.watch(...), maxsize=5)`` is iterated with ``async for`` by a consumer
   that fell behind: the oldest updates are dropped, and the drop is reported as one
   ``MessageDropped`` event with its count.

Part 1 needs the ``aio`` extra (``pip install 'rxws[aio]'``); without it, it is skipped with a note.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rxws import MessageDropped, WebSocketClient
from rxws.aio import to_async_iterable, to_async_observable
from rxws.protocols import GenericJson
from rxws.testing import MockVenue

TRADES = [
    {"price": 64_000.5, "qty": 0.2},
    {"price": 64_001.0, "qty": 1.5},
    {"price": 63_999.0, "qty": 3.0},
    {"price": 64_002.5, "qty": 0.1},
    {"price": 64_010.0, "qty": 2.25},
]


async def aioreactive_pipeline(client: WebSocketClient, venue: MockVenue) -> None:
    try:
        import aioreactive as rx
    except ImportError:
        print("[aioreactive] skipped: pip install 'rxws[aio]' to run this part")
        return
    print("[aioreactive] trades of at least 1 BTC, via aioreactive.map/filter:")
    large_trades = rx.pipe(
        to_async_observable(client.watch("trades.BTC")),
        rx.map(lambda message: message["data"]),
        rx.filter(lambda trade: trade["qty"] >= 1),
        rx.map(lambda trade: f"{trade['qty']:>5} BTC @ {trade['price']:,.1f}"),
    )
    seen = 0
    all_seen = asyncio.Event()

    async def show(line: str) -> None:
        nonlocal seen
        print("   ", line)
        seen += 1
        if seen == 3:
            all_seen.set()

    subscription = await large_trades.subscribe_async(rx.AsyncAnonymousObserver(show))
    await venue.wait_subscribed("trades.BTC")
    for trade in TRADES:
        await venue.publish("trades.BTC", trade)
    await asyncio.wait_for(all_seen.wait(), timeout=5)
    await subscription.dispose_async()  # unsubscribes from the venue; no task left behind


async def slow_consumer(client: WebSocketClient, venue: MockVenue) -> None:
    print("[async for] a consumer 15 updates behind, with a buffer of 5 (drop_oldest):")
    arrived = asyncio.Event()
    count = 0

    def tally(_message: Any) -> None:
        nonlocal count
        count += 1
        if count == 20:
            arrived.set()

    def on_drop(event: MessageDropped) -> None:
        print(f"    dropped {event.count} update(s) on {event.topic}: {event.reason}")

    tap = client.watch("book.BTC").subscribe(tally)  # only to know when all 20 have arrived
    async with to_async_iterable(
        client.watch("book.BTC"), maxsize=5, on_drop=on_drop, topic="book.BTC"
    ) as book:
        await venue.wait_subscribed("book.BTC")
        for n in range(20):
            await venue.publish("book.BTC", {"update": n})
        await asyncio.wait_for(arrived.wait(), timeout=5)
        async for message in book:  # the consumer finally gets round to it
            print(f"    update {message['data']['update']} (seq {message['seq']})")
            if book.buffered == 0:
                break
    tap.dispose()


async def main() -> None:
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson())
        client.state.subscribe(lambda state: print(f"[state] {state}"))
        await client.connect()
        await aioreactive_pipeline(client, venue)
        await slow_consumer(client, venue)
        await client.close()
    print("done")


if __name__ == "__main__":
    asyncio.run(main())
