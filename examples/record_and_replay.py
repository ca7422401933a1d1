"""Record a venue session once, replay it in CI forever.

1. A live session against an embedded MockVenue speaking OKX (one sequence gap on the book
   channel) is recorded with ``Recorder`` into a JSON-lines file.
2. The file is served by ``ReplayVenue`` on 127.0.0.1 at max speed; a fresh client sees the same
   messages and the same gap.
3. The same file is played by ``ReplayTransport`` in virtual time (a ``TestScheduler``): a
   deterministic test that takes milliseconds.

Against a real venue, record with the CLI instead::

    rxws record wss://ws.okx.com:8443/ws/v5/public --protocol okx --watch books:BTC-USDT \\
        -o session.jsonl --duration 30
    rxws replay session.jsonl --port 8765 --max
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from reactivex.testing import TestScheduler

from rxws import GapDetected, WebSocketClient
from rxws.events import Event
from rxws.protocols import Okx
from rxws.testing import MockVenue, Recorder, ReplayTransport, ReplayVenue
from rxws.transport.websockets import WebsocketsTransport

TOPIC = "books:BTC-USDT"
COUNT = 10


def gaps(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e.topic, e.gap, e.last_seq, e.next_seq) for e in events if isinstance(e, GapDetected)]


async def session(url: str, transport: Any, venue: MockVenue | None = None) -> tuple[list[Any], list[Event]]:
    """Watch TOPIC until COUNT messages arrived (publishing them when ``venue`` is the mock)."""
    client = WebSocketClient(url, protocol=Okx(), transport=transport, ping_interval=None)
    events: list[Event] = []
    client.events.subscribe(events.append)
    await client.connect()
    got: list[Any] = []
    done = asyncio.get_running_loop().create_future()

    def on_message(message: Any) -> None:
        got.append(message)
        if len(got) == COUNT and not done.done():
            done.set_result(None)

    sub = client.watch(TOPIC).subscribe(on_message)
    if venue is not None:
        await venue.wait_subscribed(TOPIC)
        for i in range(COUNT):
            if i == COUNT // 2:
                venue.skip_sequence(TOPIC, 2)  # the live session has a gap
            await venue.publish(TOPIC, {"n": i})
    await asyncio.wait_for(done, 10)
    sub.dispose()
    if venue is not None:
        await venue.wait_for(lambda: all(not c.topics for c in venue.connections))
    await client.close()
    return got, events


def virtual(path: Path) -> tuple[list[Any], list[Event]]:
    scheduler = TestScheduler()
    client = WebSocketClient(
        "ws://replay.test",
        protocol=Okx(),
        transport=ReplayTransport(path),
        scheduler=scheduler,
        ping_interval=None,
    )
    events: list[Event] = []
    got: list[Any] = []
    subs: list[Any] = []
    client.events.subscribe(events.append)
    scheduler.schedule_absolute(1.0, lambda *_: client.connect().subscribe(on_error=print))
    scheduler.schedule_absolute(2.0, lambda *_: subs.append(client.watch(TOPIC).subscribe(got.append)))
    scheduler.schedule_absolute(5.0, lambda *_: subs[0].dispose())
    scheduler.advance_to(10.0)
    return got, events


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "okx_session.jsonl"
        async with MockVenue(rate=0, dialect="okx") as venue:
            with Recorder(WebsocketsTransport(), path, protocol="okx") as recorder:
                live, live_events = await session(venue.url, recorder, venue)
        print(f"recorded  {len(live)} messages, gaps {gaps(live_events)}: {recorder.lines} lines")
        async with ReplayVenue(path, speed="max") as replay:
            print(f"replaying on {replay.url}")
            again, events = await session(replay.url, None)
        print(f"replayed  {len(again)} messages over a socket, gaps {gaps(events)}")
        played, vevents = virtual(path)
        print(f"virtual   {len(played)} messages in virtual time, gaps {gaps(vevents)}")
    same = again == live == played and gaps(events) == gaps(live_events) == gaps(vevents)
    print("same messages and gaps" if same else "DIFFERENT from the live session")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
