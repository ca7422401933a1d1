"""A start-up burst of subscriptions, with and without the venue's rate limit.

The embedded MockVenue speaks Binance and closes a connection with 1008 "Too many requests" as
soon as it sends more than 5 messages in any second, as Binance spot does. 60 streams go out 5 per
SUBSCRIBE message: 12 messages in one tick. Without a limiter the venue closes the connection at
once; with the ``binance_spot()`` preset the client paces the frames (``Throttled`` events say so)
and stays up. The preset keeps a margin inside Binance's 5 per second (4 frames per 1.25 s by
default, see ``rxws.ratelimit.headroom``): the venue counts arrivals on its own clock, and jitter
on the way there would otherwise squeeze 6 frames into one of its seconds::

    python examples/rate_limited_burst.py
"""

from __future__ import annotations

import asyncio
import sys
import time

from rxws import Disconnected, WebSocketClient
from rxws.events import Event
from rxws.protocols import Binance
from rxws.ratelimit import RateLimitEvent, Throttled, VenueRateLimiter
from rxws.ratelimit.presets import binance_spot
from rxws.testing import MockVenue

TOPICS = [f"btc{i}@trade" for i in range(60)]


class FiveStreamsPerMessage(Binance):
    """The Binance dialect sending 5 streams per SUBSCRIBE (Binance takes more), so that the
    burst is 12 frames."""

    max_topics_per_message = 5


async def burst(venue: MockVenue, limiter: VenueRateLimiter | None) -> None:
    label = "with binance_spot()" if limiter else "without a limiter "
    client = WebSocketClient(
        venue.url,
        protocol=FiveStreamsPerMessage(),
        rate_limiter=limiter,
        ping_interval=None,  # protocol pings count against the 5/s too; keep the count exact
    )
    closed: asyncio.Future[Disconnected] = asyncio.get_running_loop().create_future()
    throttles: list[Throttled] = []

    def on_event(event: Event) -> None:
        if isinstance(event, Disconnected) and not closed.done():
            closed.set_result(event)

    def on_rate(event: RateLimitEvent) -> None:
        if isinstance(event, Throttled):
            throttles.append(event)
            print(f"  {label} throttled: next frame in {event.delay * 1000:.0f} ms")

    client.events.subscribe(on_event)
    client.rate_limit_events.subscribe(on_rate)
    await client.connect()
    started = time.monotonic()
    subs = [client.watch(topic).subscribe(lambda _m: None) for topic in TOPICS]
    subscribed = asyncio.ensure_future(venue.wait_subscribed(*TOPICS, timeout=15))
    done, _ = await asyncio.wait({subscribed, closed}, return_when=asyncio.FIRST_COMPLETED)
    if closed in done:
        subscribed.cancel()
        event = closed.result()
        print(f"  {label} -> closed by the venue: code {event.code} ({event.reason}) '{event.detail}'")
    else:
        elapsed = time.monotonic() - started
        print(
            f"  {label} -> all {len(TOPICS)} topics subscribed in {elapsed:.2f}s, "
            f"{len(throttles)} waits, connection {client.state_value}"
        )
    for sub in subs:
        sub.dispose()
    await client.close()


async def main() -> int:
    async with MockVenue(dialect="binance", rate=0, max_messages_per_second=5) as venue:
        print(f"{len(TOPICS)} subscriptions, 5 topics per message, venue allows 5 messages/s:")
        await burst(venue, None)
        await burst(venue, binance_spot())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
