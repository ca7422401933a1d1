"""Save what a client watches, throw the client away, and get every topic back in a new one.

The first client watches three topics and saves a snapshot (topics, states, last sequence numbers)
to a JSON file, atomically. It is then closed and discarded, as a process restart would. A new
client loads the file and restores it before connecting: the topics are subscribed on connect,
their data arrives on ``client.messages`` with no observer yet, and each topic's first message
reports the window that may have been missed. ``verify()`` then asks the venue for its own list.

Runs against an embedded MockVenue by default; pass a ``ws://`` URL to use another GenericJson
venue, and a path to keep the snapshot file::

    python examples/persistence.py [ws://host:port] [--file subscriptions.json]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from rxws import GapDetected, WebSocketClient
from rxws.protocols import GenericJson
from rxws.subscriptions import load_snapshot
from rxws.testing import MockVenue

TOPICS = ("trades.BTC-USD", "trades.ETH-USD", "book.SOL-USD")


def _every_topic_seen(loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Future[None], Any]:
    """A future set once a message of every topic has been seen, and the callback that feeds it."""
    done: asyncio.Future[None] = loop.create_future()
    seen: set[str] = set()

    def on_message(message: Any) -> None:
        if isinstance(message, dict) and message.get("topic") in TOPICS:
            seen.add(message["topic"])
            if len(seen) == len(TOPICS) and not done.done():
                done.set_result(None)

    return done, on_message


async def first_process(url: str, path: Path) -> None:
    client = WebSocketClient(url, protocol=GenericJson())
    loop = asyncio.get_running_loop()
    ticks, on_tick = _every_topic_seen(loop)
    async with client:
        client.watch(*TOPICS).subscribe(on_tick)
        await asyncio.wait_for(ticks, 3.0)
        snapshot = client.subscriptions.save(path)
    print(f"saved {len(snapshot.topics)} topics to {path.name} (schema v{snapshot.schema_version}):")
    for entry in snapshot.topics:
        print(f"  {entry.topic:<16} {entry.state}  last seq {entry.last_seq}")


async def second_process(url: str, path: Path) -> None:
    client = WebSocketClient(url, protocol=GenericJson())
    loop = asyncio.get_running_loop()
    data, on_message = _every_topic_seen(loop)
    gaps: dict[str, GapDetected] = {}

    def on_event(event: object) -> None:
        if isinstance(event, GapDetected) and event.gap == "disconnect":
            gaps[event.topic] = event
            print(f"gap on {event.topic}: seq {event.last_seq} -> {event.next_seq}")

    client.events.subscribe(on_event)
    client.messages.subscribe(on_message)  # no watch(): the restored topics still deliver here
    restored = client.subscriptions.restore(load_snapshot(path))
    print(f"restored {restored} before connecting")
    async with client:
        await asyncio.wait_for(data, 3.0)
        states = {topic: str(state) for topic, state in client.subscriptions.states().items()}
        print(f"data on every restored topic; states {states}")
        drift = await client.subscriptions.verify(timeout=2.0)
        in_sync = not drift.missing_at_venue and not drift.unexpected_at_venue
        print(f"verify: {'in sync with the venue' if in_sync else drift}")
    missing = set(TOPICS) - set(gaps)
    if missing:
        raise SystemExit(f"no disconnect gap reported for {sorted(missing)}")


async def main(url: str | None, file: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(file) if file else Path(tmp) / "subscriptions.json"
        if url is None:
            async with MockVenue(rate=20) as venue:
                await first_process(venue.url, path)
                await second_process(venue.url, path)
        else:
            await first_process(url, path)
            await second_process(url, path)
    print("done")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="a GenericJson venue (default: an embedded MockVenue)")
    parser.add_argument("--file", help="where to keep the snapshot (default: a temporary file)")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.file))
