"""Host-approved reconnection against MockVenue over real sockets: what a host sees for each fault."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rxws import ConnectionState, ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.events import (
    Disconnected,
    DisconnectReason,
    GapDetected,
    Reconnected,
    ReconnectProposed,
    SubscriptionsRestored,
)
from rxws.protocols import GenericJson
from rxws.testing import MockVenue

pytestmark = pytest.mark.integration

S = ConnectionState
TOPICS = ("trades.BTC", "book.ETH")
LIFECYCLE = ("connected", "disconnected", "reconnect_proposed", "reconnect_denied", "reconnected")


class Host:
    """A host that approves every proposal (recording it) and watches TOPICS."""

    def __init__(self, venue: MockVenue, timeline: Callable[..., Any], **kwargs: Any) -> None:
        self.proposals: list[ReconnectProposed] = []
        backoff = ExponentialBackoff(0.02, 2.0, 0.2, jitter="none")
        kwargs.setdefault("close_timeout", 2.0)
        self.client = WebSocketClient(
            venue.url,
            protocol=GenericJson(),
            reconnect=ReconnectPolicy(backoff=backoff, approve=self.approve),
            **kwargs,
        )
        self.tl = timeline(self.client)
        self.ticks: list[Any] = []

    def approve(self, proposal: ReconnectProposed) -> bool:
        self.proposals.append(proposal)
        return True

    def on_tick(self, message: Any) -> None:
        self.ticks.append(message)
        self.tl.poke()

    async def start(self, venue: MockVenue) -> None:
        await self.client.connect()
        self.client.watch(*TOPICS).subscribe(self.on_tick)
        await venue.wait_subscribed(*TOPICS)
        await self.tl.wait(lambda: {m["topic"] for m in self.ticks} == set(TOPICS))

    async def restored(self) -> list[GapDetected]:
        """Wait for the topics to come back, each with a disconnect gap; return the gaps."""
        await self.tl.wait_event(SubscriptionsRestored)
        await self.tl.wait(lambda: {g.topic for g in self.gaps()} == set(TOPICS))
        return self.gaps()

    def gaps(self) -> list[GapDetected]:
        return [g for g in self.tl.of(GapDetected) if g.gap == "disconnect"]

    def lifecycle(self) -> list[str]:
        return [e.kind for e in self.tl.events if e.kind in LIFECYCLE]

    def check_gaps(self, gaps: list[GapDetected], dropped_at: float) -> None:
        reconnected_at = self.tl.of(Reconnected)[0].at
        for gap in gaps:
            assert gap.start is not None and gap.end is not None
            assert gap.start <= dropped_at <= reconnected_at <= gap.end
            assert gap.last_seq is not None and gap.next_seq is not None and gap.next_seq > gap.last_seq
        assert sorted(g.topic for g in gaps) == sorted(TOPICS)


async def test_abrupt_drop(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    host = Host(venue, timeline)
    await host.start(venue)
    venue.drop_all()
    gaps = await host.restored()
    assert host.tl.states == [S.DISCONNECTED, S.CONNECTING, S.CONNECTED, S.ERROR, S.CONNECTING, S.CONNECTED]
    assert host.lifecycle() == ["connected", "disconnected", "reconnect_proposed", "connected", "reconnected"]
    assert host.tl.of(Disconnected)[0].reason is DisconnectReason.NETWORK_ERROR
    assert host.tl.of(Disconnected)[0].code is None
    assert [(p.attempt, p.delay) for p in host.proposals] == [(1, 0.02)]
    assert host.tl.of(SubscriptionsRestored)[0].confirmed == TOPICS
    host.check_gaps(gaps, host.tl.of(Disconnected)[0].at)
    assert host.tl.of(Reconnected)[0].downtime >= 0.02
    await host.client.close()


async def test_1001_close(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    host = Host(venue, timeline)
    await host.start(venue)
    await venue.close_all(1001, "going away")
    gaps = await host.restored()
    assert host.tl.states == [
        S.DISCONNECTED, S.CONNECTING, S.CONNECTED, S.DISCONNECTED, S.CONNECTING, S.CONNECTED,
    ]  # fmt: skip
    (event,) = host.tl.of(Disconnected)
    assert (event.reason, event.code, event.detail) == (DisconnectReason.REMOTE_CLOSED, 1001, "going away")
    assert host.lifecycle() == ["connected", "disconnected", "reconnect_proposed", "connected", "reconnected"]
    host.check_gaps(gaps, event.at)
    await host.client.close()


async def test_half_open_server_is_detected_by_the_heartbeat(
    venue: MockVenue, timeline: Callable[..., Any]
) -> None:
    host = Host(venue, timeline, ping_interval=0.2, ping_timeout=0.2, close_timeout=0.5)
    await host.start(venue)
    venue.half_open()
    event = await host.tl.wait_event(Disconnected, timeout=0.2 + 0.2 + 0.5 + 1.0)
    assert (event.reason, event.code) == (DisconnectReason.HEARTBEAT_TIMEOUT, 1011)
    gaps = await host.restored()  # the venue accepts the new connection normally
    assert host.tl.states[3:] == [S.ERROR, S.CONNECTING, S.CONNECTED]
    assert host.lifecycle() == ["connected", "disconnected", "reconnect_proposed", "connected", "reconnected"]
    host.check_gaps(gaps, event.at)
    await host.client.close()


async def test_half_open_is_detected_within_ping_interval_plus_ping_timeout(
    venue: MockVenue, timeline: Callable[..., Any]
) -> None:
    host = Host(venue, timeline, ping_interval=0.2, ping_timeout=0.2, close_timeout=1.0)
    await host.start(venue)
    venue.half_open()
    try:  # within ping_interval + ping_timeout, plus slack; close_timeout (1 s) must not add up
        event = await host.tl.wait_event(Disconnected, timeout=0.2 + 0.2 + 0.5)
        assert event.reason is DisconnectReason.HEARTBEAT_TIMEOUT
    finally:
        await host.client.close()


async def test_server_refusing_connections_for_a_while(
    venue: MockVenue, timeline: Callable[..., Any]
) -> None:
    host = Host(venue, timeline)
    await host.start(venue)
    venue.refuse_connections(count=2)
    venue.drop_all()
    gaps = await host.restored()
    assert venue.refused == 2
    assert host.tl.states == [
        S.DISCONNECTED, S.CONNECTING, S.CONNECTED,
        S.ERROR, S.CONNECTING, S.ERROR, S.CONNECTING, S.ERROR, S.CONNECTING, S.CONNECTED,
    ]  # fmt: skip
    assert [(p.attempt, p.delay) for p in host.proposals] == [(1, 0.02), (2, 0.04), (3, 0.08)]
    reasons = [d.reason for d in host.tl.of(Disconnected)]
    assert reasons == [DisconnectReason.NETWORK_ERROR] * 3
    assert all("503" in d.detail for d in host.tl.of(Disconnected)[1:])
    (reconnected,) = host.tl.of(Reconnected)
    assert reconnected.downtime >= 0.02 + 0.04 + 0.08
    host.check_gaps(gaps, host.tl.of(Disconnected)[0].at)
    await host.client.close()


async def test_http_429_refusals_are_rate_limited(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    host = Host(venue, timeline)
    await host.start(venue)
    venue.refuse_connections(count=1, status=429, retry_after=3)
    venue.drop_all()
    await host.restored()
    assert [d.reason for d in host.tl.of(Disconnected)] == [
        DisconnectReason.NETWORK_ERROR,
        DisconnectReason.RATE_LIMITED,
    ]
    await host.client.close()
