"""Make-before-break rotation over real sockets: MockVenue, directly and through FaultProxy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from broadcasting import TOPICS, Numbers, broadcasting

from rxws import ConnectionState, WebSocketClient
from rxws.events import Disconnected, GapDetected, Rotated, RotationStarted
from rxws.protocols import GenericJson
from rxws.testing import FaultProxy, MockVenue

pytestmark = pytest.mark.integration


async def _rotate_while_streaming(venue: MockVenue, url: str, timeline: Callable[..., Any]) -> Any:
    """Watch TOPICS, rotate mid-stream, keep streaming; check every number arrived once, in order."""
    client = WebSocketClient(url, protocol=GenericJson(), close_timeout=2.0, rotation_overlap=0.05)
    tl = timeline(client)
    numbers = Numbers(tl)
    await client.connect()
    client.watch(*TOPICS).subscribe(numbers)
    async with broadcasting(venue):
        await tl.wait(lambda: numbers.each_at_least(5))
        (old,) = venue.connections
        await client.rotate()
        at_rotation = numbers.last()
        await tl.wait(lambda: numbers.past(at_rotation, 10))
        await venue.wait_for(lambda: old not in venue.connections)
    await client.close()
    await venue.wait_for(lambda: not venue.connections)  # the new one closed by the host
    assert old.ws.close_code == 1000
    numbers.assert_once_each_in_order()
    (rotated,) = tl.of(Rotated)
    assert rotated.switched == tuple(sorted(TOPICS)) and rotated.unsequenced == ()
    assert len(tl.of(RotationStarted)) == 1 and not tl.of(GapDetected)
    assert [d.reason for d in tl.of(Disconnected)] == ["USER"]  # only the host's own close
    assert ConnectionState.ERROR not in tl.states
    return client


async def test_rotation_over_real_sockets_delivers_each_number_once(timeline: Callable[..., Any]) -> None:
    async with MockVenue(rate=0) as venue:
        await _rotate_while_streaming(venue, venue.url, timeline)


async def test_rotation_through_a_jittery_proxy_delivers_each_number_once(
    timeline: Callable[..., Any],
) -> None:
    async with MockVenue(rate=0) as venue, FaultProxy(venue.url) as proxy:
        proxy.set("down", delay=0.01, jitter=0.03)  # the two connections deliver out of step
        await _rotate_while_streaming(venue, proxy.url, timeline)
        assert proxy.connections == 2
