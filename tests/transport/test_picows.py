"""The client on the fast transport: ``WebSocketClient(url, transport=PicowsTransport())`` against
MockVenue over loopback — watch, request, a venue that closes, an abrupt drop and the host-approved
reconnection, a half-open link found by the client's heartbeat. (The Link contract itself is
checked for every transport in ``tests/transport/conformance``.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rxws import ConnectionState, ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.events import Disconnected, DisconnectReason, GapDetected, Reconnected, SubscriptionsRestored
from rxws.exceptions import VenueError
from rxws.protocols import GenericJson
from rxws.testing import MockVenue

pytest.importorskip("picows", reason="picows is in the 'fast' extra")

from rxws.transport.picows import PicowsLink, PicowsTransport

pytestmark = pytest.mark.integration
TOPICS = ("trades.BTC", "book.ETH")


def _client(venue: MockVenue, **kwargs: Any) -> WebSocketClient:
    kwargs.setdefault("ping_interval", None)
    return WebSocketClient(venue.url, protocol=GenericJson(), transport=PicowsTransport(), **kwargs)


async def test_watch_and_request(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    client = _client(venue)
    tl = timeline(client)
    await client.connect()
    assert isinstance(client._session.link, PicowsLink)
    ticks: list[Any] = []
    sub = client.watch(*TOPICS).subscribe(lambda m: (ticks.append(m), tl.poke()))
    await venue.wait_subscribed(*TOPICS)
    assert await client.request("echo", {"n": 1}, timeout=5.0) == {"n": 1}
    with pytest.raises(VenueError) as failed:
        await client.request("fail", {"code": 7, "message": "no"}, timeout=5.0)
    assert failed.value.code == 7
    await tl.wait(lambda: all(sum(m["topic"] == t for m in ticks) >= 3 for t in TOPICS))
    for topic in TOPICS:  # in order, none lost, none twice
        seqs = [m["seq"] for m in ticks if m["topic"] == topic]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert not tl.of(GapDetected)
    sub.dispose()
    await client.close()
    assert client.state_value is ConnectionState.DISCONNECTED
    assert tl.kinds()[0] == "connected" and tl.of(Disconnected)[-1].reason is DisconnectReason.USER


async def test_a_drop_then_the_approved_reconnection_restores_the_topics(
    venue: MockVenue, timeline: Callable[..., Any]
) -> None:
    proposals: list[Any] = []
    policy = ReconnectPolicy(
        backoff=ExponentialBackoff(0.02, 2.0, 0.2, jitter="none"),
        approve=lambda p: proposals.append(p) or True,
    )
    client = _client(venue, reconnect=policy, close_timeout=2.0)
    tl = timeline(client)
    await client.connect()
    ticks: list[Any] = []
    client.watch(*TOPICS).subscribe(lambda m: (ticks.append(m), tl.poke()))
    await venue.wait_subscribed(*TOPICS)
    await tl.wait(lambda: {m["topic"] for m in ticks} == set(TOPICS))
    venue.drop_all()  # TCP abort, no close frame
    await tl.wait_event(SubscriptionsRestored)
    await tl.wait_event(Reconnected)
    dropped = tl.of(Disconnected)[0]
    assert dropped.reason is DisconnectReason.NETWORK_ERROR
    assert len(proposals) == 1 and venue.connections and len(venue.connections) == 1
    before = len(ticks)
    await tl.wait(lambda: len(ticks) >= before + 2 * len(TOPICS))  # data flows on the new link
    # each topic reports the disconnect window as a gap
    await tl.wait(lambda: {g.topic for g in tl.of(GapDetected) if g.gap == "disconnect"} == set(TOPICS))
    assert await client.request("echo", {"again": True}, timeout=5.0) == {"again": True}
    await client.close()


async def test_a_venue_close_frame_reaches_the_host_with_its_code(
    venue: MockVenue, timeline: Callable[..., Any]
) -> None:
    client = _client(venue)
    tl = timeline(client)
    await client.connect()
    await venue.close_all(4001, "maintenance")
    event = await tl.wait_event(Disconnected)
    assert (event.reason, event.code) == (DisconnectReason.REMOTE_CLOSED, 4001)
    assert "maintenance" in event.detail
    await client.close()


async def test_the_heartbeat_finds_a_half_open_link(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    client = _client(venue, ping_interval=0.05, ping_timeout=0.3)
    tl = timeline(client)
    await client.connect()
    venue.half_open()
    event = await tl.wait_event(Disconnected)
    assert event.reason is DisconnectReason.HEARTBEAT_TIMEOUT
    await client.close()


def test_the_repr_masks_the_proxy_credentials() -> None:
    transport = PicowsTransport(proxy="socks5://desk:S3cret-pw@127.0.0.1:1080")
    assert repr(transport) == "PicowsTransport(proxy='socks5://***@127.0.0.1:1080')"
    assert transport.proxy == "socks5://***@127.0.0.1:1080"
    assert repr(PicowsTransport()) == "PicowsTransport(proxy=None)"
