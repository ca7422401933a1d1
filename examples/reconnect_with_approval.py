"""Watch topics, lose the connection, approve the reconnection, and get each topic back with a gap.

Runs against an embedded MockVenue by default; pass a ``ws://`` URL to use another GenericJson venue
(the venue-side faults are then skipped: drop the connection yourself)::

    python examples/reconnect_with_approval.py [ws://host:port]
"""

from __future__ import annotations

import asyncio
import sys

from rxws import ExponentialBackoff, GapDetected, ReconnectPolicy, ReconnectProposed, WebSocketClient
from rxws.events import SubscriptionsRestored
from rxws.protocols import GenericJson
from rxws.testing import MockVenue

TOPICS = ("trades.BTC-USD", "book.ETH-USD")


def approve(proposal: ReconnectProposed) -> bool:
    """The host's decision: print the proposal, and say yes to the first five attempts."""
    print(f"approve? attempt {proposal.attempt} in {proposal.delay:.2f}s after {proposal.cause}")
    return proposal.attempt <= 5


async def run(url: str, venue: MockVenue | None) -> None:
    loop = asyncio.get_running_loop()
    client = WebSocketClient(
        url,
        protocol=GenericJson(),
        reconnect=ReconnectPolicy(backoff=ExponentialBackoff(0.1, 2.0, 2.0, jitter="none"), approve=approve),
    )
    gaps: dict[str, GapDetected] = {}
    all_back = loop.create_future()

    def on_event(event: object) -> None:
        if isinstance(event, SubscriptionsRestored):
            print(f"restored {list(event.confirmed)} (failed {list(event.failed)})")
        if isinstance(event, GapDetected) and event.gap == "disconnect":
            gaps[event.topic] = event
            print(
                f"gap on {event.topic}: missing between t={event.start:.3f} and t={event.end:.3f}, "
                f"seq {event.last_seq} -> {event.next_seq}"
            )
            if set(gaps) == set(TOPICS) and not all_back.done():
                all_back.set_result(None)

    client.state.subscribe(lambda state: print(f"state {state}"))
    client.events.subscribe(on_event)
    counts = dict.fromkeys(TOPICS, 0)

    def on_tick(message: dict[str, object]) -> None:
        counts[str(message["topic"])] += 1

    async with client:
        client.watch(*TOPICS).subscribe(on_tick)
        if venue is not None:
            await venue.wait_subscribed(*TOPICS)
            await asyncio.sleep(0.3)  # let some data flow
            print("venue drops every connection")
            venue.drop_all()
        await asyncio.wait_for(all_back, 4.0)
        print(f"messages per topic: {counts}")


async def main() -> int:
    if len(sys.argv) > 1:
        await run(sys.argv[1], None)
        return 0
    async with MockVenue(rate=20) as venue:
        await run(venue.url, venue)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
