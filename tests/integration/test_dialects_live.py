"""Every venue dialect over a real socket: MockVenue speaks it, the client's dialect reads it.

For each: subscribe (acked the venue's way — by id, or per topic for OKX), data routed to the
topic with its sequence numbers read, a skipped sequence number reported as a gap, a correlated
request, unsubscribe on dispose, and nothing left pending.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rxws import ConnectionState, GapDetected, WebSocketClient
from rxws.events import Event, UnroutedMessage, VenueNotice
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


@pytest.mark.parametrize(
    ("dialect", "protocol", "raw", "code", "detail"),
    [
        ("binance", Binance, False, None, "serverShutdown E=1770123456789"),
        ("binance", Binance, True, None, "serverShutdown E=1770123456789"),
        (
            "okx",
            Okx,
            False,
            64008,
            "The connection will soon be closed for a service upgrade. Please reconnect.",
        ),
    ],
    ids=["binance-combined", "binance-raw", "okx-64008"],
)
async def test_shutdown_notice_reaches_the_host_over_a_socket(
    no_leaked_tasks: None,
    timeline: Any,
    dialect: str,
    protocol: type[VenueProtocol],
    raw: bool,
    code: int | None,
    detail: str,
) -> None:
    # Binance web-socket-streams.md "Server Shutdown"; OKX "Notification" (both read 2026-11-30).
    async with MockVenue(rate=0, dialect=dialect) as venue:
        client = WebSocketClient(venue.url, protocol=protocol(), ping_interval=None, subscribe_timeout=3)
        tl = timeline(client)
        await client.connect()
        frame = venue.core.server.shutdown_notice(raw=raw)
        assert frame is not None
        await venue.connections[-1].ws.send(frame)
        notice = await tl.wait_event(VenueNotice, timeout=3)
        assert (notice.notice, notice.code, notice.detail) == ("shutdown", code, detail)
        assert tl.of(UnroutedMessage) == []
        assert client.state_value is ConnectionState.CONNECTED  # the host decides what to do
        await client.close()


async def test_okx_private_push_with_uid_reaches_its_watcher(no_leaked_tasks: None) -> None:
    async with MockVenue(rate=0, dialect="okx") as venue:
        client = WebSocketClient(venue.url, protocol=Okx(), ping_interval=None, subscribe_timeout=3)
        await client.connect()
        got: list[Any] = []
        arrived = asyncio.Event()

        def on_message(message: Any) -> None:
            got.append(message)
            arrived.set()

        sub = client.watch("orders:instType=ANY").subscribe(on_message)
        await venue.wait_subscribed("orders:instType=ANY")
        await venue.publish("orders:instType=ANY", {"ordId": "1"})
        async with asyncio.timeout(3):
            await arrived.wait()
        assert got[0]["arg"] == {"channel": "orders", "instType": "ANY", "uid": "44*********584"}
        assert client.stats.unrouted == 0
        sub.dispose()
        await client.close()
