"""The preset's headroom against a real fault: delay jitter between the client and the venue.

A :class:`~rxws.testing.FaultProxy` holds every client → venue chunk 0-50 ms (uniform, order
kept) in front of a MockVenue speaking Binance that closes a connection with 1008 as soon as it
counts more than 5 frames in any 1 s (a sliding window over the times its handler reads frames;
Binance documents "5 messages per second" and says neither sliding nor fixed, and it counts ping
and pong frames, which MockVenue does not — the bursts here send none). A client with
``binance_spot()`` bursts 200 subscriptions (40 SUBSCRIBE frames): with the default headroom
(4 frames per 1.25 s) the venue never closes; pacing at exactly 5 per 1 s through the same jitter
is closed. Five runs go at once, each with its own venue, proxy (seeded) and client, so one
test run is five trials on a loop busier than any one of them, bounded at 60 s in all.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from rxws import WebSocketClient
from rxws.events import Disconnected, Event
from rxws.protocols import Binance
from rxws.ratelimit.headroom import Headroom
from rxws.ratelimit.presets import binance_spot
from rxws.ratelimit.venue import VenueRateLimiter
from rxws.testing import MockVenue
from rxws.testing.fault_proxy import FaultProxy

TOPICS = [f"btc{i}@trade" for i in range(200)]
JITTER = 0.05  # each client -> venue chunk held 0-50 ms
RUNS = 5


class FiveStreamsPerMessage(Binance):
    """The Binance dialect sending 5 streams per SUBSCRIBE, so the burst is 40 frames."""

    max_topics_per_message = 5


@dataclass
class Outcome:
    subscribed: bool
    closes: list[Disconnected]
    frames: int


async def burst(seed: int, limiter: VenueRateLimiter, *, stop_at_close: bool) -> Outcome:
    """200 subscriptions through a jittery proxy; at most 40 s (the default headroom needs ~11)."""
    async with (
        MockVenue(dialect="binance", rate=0, max_messages_per_second=5) as venue,
        FaultProxy(venue.url, seed=seed) as proxy,
    ):
        proxy.set("up", jitter=JITTER)
        client = WebSocketClient(
            proxy.url, protocol=FiveStreamsPerMessage(), rate_limiter=limiter, ping_interval=None
        )
        closes: list[Disconnected] = []
        closed = asyncio.Event()

        def on_event(event: Event) -> None:
            if isinstance(event, Disconnected):
                closes.append(event)
                closed.set()

        client.events.subscribe(on_event)
        subs = []
        try:
            await client.connect()
            subs = [client.watch(t).subscribe(on_error=lambda _e: None) for t in TOPICS]
            subscribed = asyncio.ensure_future(venue.wait_subscribed(*TOPICS, timeout=40))
            waits = {subscribed, asyncio.ensure_future(closed.wait())} if stop_at_close else {subscribed}
            done, pending = await asyncio.wait(waits, timeout=41, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            ok = subscribed in done and subscribed.exception() is None
            return Outcome(ok, list(closes), len(venue.received))
        finally:
            for s in subs:
                s.dispose()
            await client.close()


@pytest.mark.wallclock
async def test_default_headroom_survives_delay_jitter_where_exact_pacing_is_closed() -> None:
    async with asyncio.timeout(60):
        paced = await asyncio.gather(
            *(burst(seed, binance_spot(), stop_at_close=False) for seed in range(RUNS))
        )
    for run, outcome in enumerate(paced):
        assert outcome.closes == [], (
            f"run {run}: the venue closed a client paced with headroom: {outcome.closes}"
        )
        assert outcome.subscribed, f"run {run}: only {outcome.frames} of 40 frames reached the venue"
        assert outcome.frames == 40

    # The same jitter against pacing at exactly the documented 5 per 1 s: the 6th frame, sent at
    # exactly 1 s, overtakes a delayed burst often enough that the venue closes at once.
    async with asyncio.timeout(60):
        exact = await asyncio.gather(
            *(
                burst(100 + seed, binance_spot(headroom=Headroom()), stop_at_close=True)
                for seed in range(RUNS)
            )
        )
    rate_closes = [c for o in exact for c in o.closes if c.code == 1008]
    assert rate_closes, "exact pacing through 0-50 ms jitter was never closed: the venue no longer counts?"
