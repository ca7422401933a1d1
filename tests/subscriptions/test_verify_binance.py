"""verify() on the Binance dialect over a real socket: LIST_SUBSCRIPTIONS, and drift reported."""

from __future__ import annotations

from rxws import WebSocketClient
from rxws.events import SubscriptionDrift
from rxws.protocols import Binance
from rxws.testing import MockVenue


async def test_verify_compares_with_list_subscriptions(no_leaked_tasks: None) -> None:
    async with MockVenue(rate=0, dialect="binance") as venue:
        client = WebSocketClient(venue.url, protocol=Binance(), ping_interval=None)
        await client.connect()
        sub = client.watch("btcusdt@trade", "ethusdt@trade").subscribe(lambda _m: None)
        await venue.wait_subscribed("btcusdt@trade", "ethusdt@trade")
        drift = await client.subscriptions.verify(timeout=3)
        assert (drift.missing_at_venue, drift.unexpected_at_venue) == ((), ())
        # the venue forgets one behind the client's back
        venue.connections[0].session.topics.pop("ethusdt@trade")
        drift = await client.subscriptions.verify(timeout=3)
        assert isinstance(drift, SubscriptionDrift)
        assert drift.missing_at_venue == ("ethusdt@trade",)
        sub.dispose()
        await client.close()
