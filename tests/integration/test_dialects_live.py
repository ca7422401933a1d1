"""Every venue dialect over a real socket: MockVenue speaks it, the client's dialect reads it.

For each: subscribe (acked the venue's way — by id, or per topic for OKX), data routed to the
topic with its sequence numbers read, a skipped sequence number reported as a gap, a correlated
request, unsubscribe on dispose, and nothing left pending.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rxws import GapDetected, WebSocketClient
from rxws.events import Event
from rxws.protocols import Binance, Bybit, Deribit, JsonRpc, Okx
from rxws.protocols.base import VenueProtocol
from rxws.testing import MockVenue

CASES: list[tuple[str, type[VenueProtocol], str]] = [
    ("binance", Binance, "btcusdt@depth"),
    ("okx", Okx, "books:BTC-USDT"),
    ("bybit", Bybit, "orderbook.50.BTCUSDT"),
    ("deribit", Deribit, "book.BTC-PERPETUAL.100ms"),
    ("jsonrpc", JsonRpc, "chan.x"),
]


@pytest.mark.parametrize(("dialect", "protocol", "topic"), CASES, ids=[c[0] for c in CASES])
async def test_dialect_end_to_end(
    no_leaked_tasks: None, dialect: str, protocol: type[VenueProtocol], topic: str
) -> None:
    async with MockVenue(rate=0, dialect=dialect) as venue:
        client = WebSocketClient(venue.url, protocol=protocol(), ping_interval=None, subscribe_timeout=3)
        events: list[Event] = []
        client.events.subscribe(events.append)
        await client.connect()
        got: list[Any] = []
        done = asyncio.get_running_loop().create_future()

        def on_message(message: Any) -> None:
            got.append(message)
            if len(got) == 4 and not done.done():
                done.set_result(None)

        sub = client.watch(topic).subscribe(on_message)
        await venue.wait_subscribed(topic)
        await asyncio.sleep(0)  # let the ack reach the client
        for i in range(2):
            await venue.publish(topic, {"n": i})
        venue.skip_sequence(topic, 2)
        for i in range(2, 4):
            await venue.publish(topic, {"n": i})
        await asyncio.wait_for(done, 3)

        gaps = [(e.topic, e.gap, e.last_seq, e.next_seq) for e in events if isinstance(e, GapDetected)]
        if client.protocol.sequence(got[0]) is None:  # plain JSON-RPC notifications carry no numbers
            assert gaps == []
        else:
            assert gaps == [(topic, "sequence", 2, 5)]
        assert await client.request("echo", {"x": 1}, timeout=3) == {"x": 1}
        sub.dispose()
        await venue.wait_for(lambda: all(not c.topics for c in venue.connections))
        async with asyncio.timeout(3):  # the venue's unsubscribe ack is on its way to the client
            while client.pending_requests:
                await asyncio.sleep(0.005)
        assert client.subscriptions.states() == {}
        await client.close()
