"""Redundant connections over real sockets: one connection of the pair is cut mid-stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from broadcasting import TOPICS, Numbers, broadcasting

from rxws import ConnectionState, ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.events import Disconnected, GapDetected
from rxws.protocols import GenericJson
from rxws.testing import FaultProxy, MockVenue

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("cut", [0, 1], ids=["primary", "twin"])
async def test_a_cut_connection_of_a_redundant_pair_loses_nothing(
    cut: int, timeline: Callable[..., Any]
) -> None:
    backoff = ExponentialBackoff(0.05, 2.0, 1.0, jitter="none")
    async with MockVenue(rate=0) as venue, FaultProxy(venue.url) as proxy:
        client = WebSocketClient(
            proxy.url,
            protocol=GenericJson(),
            redundancy=2,
            reconnect=ReconnectPolicy(backoff=backoff),
            close_timeout=2.0,
        )
        tl = timeline(client)
        numbers = Numbers(tl)
        await client.connect()
        client.watch(*TOPICS).subscribe(numbers)
        await venue.wait_for(lambda: sum(set(TOPICS) <= set(c.topics) for c in venue.connections) == 2)
        async with broadcasting(venue):
            await tl.wait(lambda: numbers.each_at_least(10))
            venue.connections[cut].ws.transport.abort()  # the venue side of one connection is gone
            await tl.wait_event(Disconnected)
            at_cut = numbers.last()
            await venue.wait_for(lambda: sum(set(TOPICS) <= set(c.topics) for c in venue.connections) == 2)
            await tl.wait(lambda: numbers.past(at_cut, 20))
        await client.close()
        numbers.assert_once_each_in_order()
        assert not tl.of(GapDetected)
        assert proxy.connections == 3  # the pair, and the replacement of the cut one
        if cut == 0:
            assert ConnectionState.ERROR in tl.states  # the primary's drop is the client's own
        else:
            assert ConnectionState.ERROR not in tl.states  # the twin's drop is only reported
