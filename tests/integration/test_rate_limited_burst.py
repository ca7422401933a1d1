"""Issue 4 acceptance over real sockets.

MockVenue, speaking Binance, closes with 1008 ("Too many requests") as soon as a connection sends
more than 5 messages in any 1 s window — Binance spot's documented limit. A client speaking
Binance with the ``binance_spot()`` preset bursts 200 subscriptions (40 subscribe messages of 5
streams, all requested in one tick) and is never closed, even on a loaded machine: the preset's
headroom (4 frames per 1.25 s by default) absorbs the jitter between the client's clock and the
venue's count, where an exact 5 per 1 s did not. The same burst without a limiter is closed with
1008 at once.
"""

from __future__ import annotations

import asyncio

import pytest

from rxws import ConnectionState, WebSocketClient
from rxws.events import Disconnected, Event
from rxws.protocols import Binance
from rxws.ratelimit import RateLimitEvent, Throttled
from rxws.ratelimit.presets import binance_spot
from rxws.testing import MockVenue

TOPICS = [f"btc{i}@trade" for i in range(200)]


class FiveStreamsPerMessage(Binance):
    """The Binance dialect sending 5 streams per SUBSCRIBE, so the burst is 40 frames."""

    max_topics_per_message = 5


@pytest.mark.wallclock
async def test_binance_preset_bursts_200_subscriptions_without_being_closed() -> None:
    async with MockVenue(dialect="binance", rate=0, max_messages_per_second=5) as venue:
        client = WebSocketClient(
            venue.url,
            protocol=FiveStreamsPerMessage(),
            rate_limiter=binance_spot(),
            ping_interval=None,  # protocol pings would count against the 5/s too
        )
        events: list[Event] = []
        rate_events: list[RateLimitEvent] = []
        client.events.subscribe(events.append)
        client.rate_limit_events.subscribe(rate_events.append)
        await client.connect()
        subs = [client.watch(t).subscribe(lambda _m: None) for t in TOPICS]
        await venue.wait_subscribed(*TOPICS, timeout=30)

        assert client.state_value is ConnectionState.CONNECTED
        assert not [e for e in events if isinstance(e, Disconnected)]
        assert len(venue.received) == 40  # 200 topics, 5 per message
        throttles = [e for e in rate_events if isinstance(e, Throttled)]
        assert throttles, "the limiter must have paced the burst"
        assert len(throttles) < 40, "one Throttled per wait, not one per message"
        for s in subs:
            s.dispose()
        await client.close()


async def test_the_same_burst_without_a_limiter_is_closed_with_1008() -> None:
    async with MockVenue(dialect="binance", rate=0, max_messages_per_second=5) as venue:
        client = WebSocketClient(venue.url, protocol=FiveStreamsPerMessage(), ping_interval=None)
        closed: asyncio.Future[Disconnected] = asyncio.get_running_loop().create_future()

        def on_event(e: Event) -> None:
            if isinstance(e, Disconnected) and not closed.done():
                closed.set_result(e)

        client.events.subscribe(on_event)
        await client.connect()
        subs = [client.watch(t).subscribe(lambda _m: None) for t in TOPICS]
        event = await asyncio.wait_for(closed, 5)
        assert event.code == 1008
        assert event.reason == "RATE_LIMITED"
        for s in subs:
            s.dispose()
        await client.close()
