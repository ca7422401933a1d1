"""Host-approved reconnection, pending work on a drop and data gaps, as marble tests in virtual time.

Latency is 0.25 s each way; backoff has no jitter (1 s, 2 s, 4 s, ...), so every time is exact.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reactivex
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxws import ConnectionState, ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.events import (
    Disconnected,
    DisconnectReason,
    GapDetected,
    OutboundFailed,
    ReconnectDenied,
    Reconnected,
    ReconnectProposed,
    SubscriptionsRestored,
)
from rxws.exceptions import ConnectionLost, NotConnected
from rxws.protocols import GenericJson
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport

S = ConnectionState


def policy(approve: Any = None, **backoff: Any) -> ReconnectPolicy:
    backoff.setdefault("jitter", "none")
    backoff.setdefault("stable_after", 1000.0)
    kwargs: dict[str, Any] = {"backoff": ExponentialBackoff(1.0, 2.0, 60.0, **backoff)}
    if approve is not None:
        kwargs["approve"] = approve
    return ReconnectPolicy(**kwargs)


def outcome(virtual: Any, at: float, make: Any) -> list[Any]:
    """Call ``make()`` at ``at``; the list gets ('ok', t, value) or ('error', t, exc)."""
    seen: list[Any] = []

    def run() -> None:
        make().subscribe(
            lambda v: seen.append(("ok", virtual.now(), v)),
            lambda e: seen.append(("error", virtual.now(), e)),
        )

    virtual.at(at, run)
    return seen


def session_with_topics(virtual: Any, **kwargs: Any) -> tuple[WebSocketClient, list[Any]]:
    """Connect at 1, watch a and b at 1.5 (confirmed at 2), one message on each at 2 (seen at 2.25)."""
    client = virtual.client(**kwargs)
    ticks: list[Any] = []
    virtual.at(1.0, client.connect)
    virtual.at(1.5, lambda: client.watch("a", "b").subscribe(ticks.append))
    virtual.at(2.0, lambda: (virtual.responder.publish("a", "a1"), virtual.responder.publish("b", "b1")))
    return client, ticks


def test_without_policy_a_drop_is_never_reconnected(virtual: Any) -> None:
    client, _ = session_with_topics(virtual)
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    virtual.run(1000.0)
    assert virtual.transport.attempts == 1
    assert virtual.timeline.of(ReconnectProposed) == []
    assert virtual.timeline.timed_states[-1] == (3.25, S.ERROR)
    assert client.state_value is S.ERROR


def test_approved_reconnection_restores_topics_and_reports_a_gap_per_topic(virtual: Any) -> None:
    proposals: list[ReconnectProposed] = []

    def approve(proposal: ReconnectProposed) -> bool:
        proposals.append(proposal)
        return True

    client, ticks = session_with_topics(virtual, reconnect=policy(approve))
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    virtual.at(6.0, lambda: (virtual.responder.publish("a", "a2"), virtual.responder.publish("b", "b2")))
    virtual.run(10.0)
    tl = virtual.timeline

    # the drop reaches the client at 3.25; 1 s backoff; the new link opens at 4.5
    assert tl.timed_states == [
        (0.0, S.DISCONNECTED),
        (1.0, S.CONNECTING),
        (1.25, S.CONNECTED),
        (3.25, S.ERROR),
        (4.25, S.CONNECTING),
        (4.5, S.CONNECTED),
    ]
    lifecycle = [e for e in tl.events if e.kind != "subscription_changed" and e.kind != "gap_detected"]
    assert [(e.at, e.kind) for e in lifecycle] == [
        (1.25, "connected"),
        (3.25, "disconnected"),
        (3.25, "reconnect_proposed"),
        (4.5, "connected"),
        (4.5, "reconnected"),
        (5.0, "subscriptions_restored"),
    ]
    (proposal,) = proposals
    assert (proposal.attempt, proposal.delay, proposal.at) == (1, 1.0, 3.25)
    assert "ConnectionLost" in proposal.cause
    assert tl.of(ReconnectProposed) == proposals
    assert tl.of(Disconnected)[0].reason is DisconnectReason.NETWORK_ERROR
    assert tl.of(Reconnected)[0].downtime == 1.25
    assert tl.of(SubscriptionsRestored)[0].confirmed == ("a", "b")
    assert tl.of(SubscriptionsRestored)[0].failed == ()
    # one subscribe per connection, batched
    assert [p.sent for p in virtual.transport.peers] == [
        ['{"op":"subscribe","id":1,"args":["a","b"]}'],
        ['{"op":"subscribe","id":2,"args":["a","b"]}'],
    ]
    # the window each topic may have missed: from its last message before the drop to its first after
    assert tl.of(GapDetected) == [
        GapDetected(at=6.25, topic="a", gap="disconnect", start=2.25, end=6.25, last_seq=1, next_seq=2),
        GapDetected(at=6.25, topic="b", gap="disconnect", start=2.25, end=6.25, last_seq=1, next_seq=2),
    ]
    assert [m["data"] for m in ticks] == ["a1", "b1", "a2", "b2"]
    assert client.state_value is S.CONNECTED


def test_denied_at_attempt_3_stops_cleanly(virtual: Any) -> None:
    client, _ = session_with_topics(virtual, reconnect=policy(lambda p: p.attempt < 3))
    virtual.at(2.5, lambda: virtual.transport.refuse(5))
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    virtual.run(1000.0)
    tl = virtual.timeline
    # drop 3.25 -> P1 (1 s) -> open 4.25, refused 4.5 -> P2 (2 s) -> open 6.5, refused 6.75 -> P3 denied
    assert [(p.attempt, p.delay, p.at) for p in tl.of(ReconnectProposed)] == [
        (1, 1.0, 3.25),
        (2, 2.0, 4.5),
        (3, 4.0, 6.75),
    ]
    assert [(d.attempt, d.at) for d in tl.of(ReconnectDenied)] == [(3, 6.75)]
    assert [(d.at, d.reason) for d in tl.of(Disconnected)] == [
        (3.25, DisconnectReason.NETWORK_ERROR),
        (4.5, DisconnectReason.NETWORK_ERROR),
        (6.75, DisconnectReason.NETWORK_ERROR),
    ]
    assert tl.timed_states[3:] == [
        (3.25, S.ERROR),
        (4.25, S.CONNECTING),
        (4.5, S.ERROR),
        (6.5, S.CONNECTING),
        (6.75, S.ERROR),
    ]
    assert virtual.transport.attempts == 3  # the first connection and two refused attempts
    assert client.state_value is S.ERROR
    assert tl.of(Reconnected) == []


def test_exhausted_policy_surfaces_as_denied(virtual: Any) -> None:
    client, _ = session_with_topics(virtual, reconnect=policy(max_attempts=2))
    virtual.at(2.5, lambda: virtual.transport.refuse(10))
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    virtual.run(1000.0)
    tl = virtual.timeline
    assert [p.attempt for p in tl.of(ReconnectProposed)] == [1, 2]
    (denied,) = tl.of(ReconnectDenied)
    assert denied.at == 6.75 and "exhausted" in denied.why
    assert virtual.transport.attempts == 3
    assert client.state_value is S.ERROR


def test_policy_violation_close_is_not_retried_by_default(virtual: Any) -> None:
    client, _ = session_with_topics(virtual, reconnect=policy())
    virtual.at(3.0, lambda: virtual.transport.peer.close(1008, "Too many requests"))
    virtual.run(1000.0)
    (event,) = virtual.timeline.of(Disconnected)
    assert (event.reason, event.code) == (DisconnectReason.RATE_LIMITED, 1008)
    assert virtual.timeline.of(ReconnectProposed) == []
    assert virtual.transport.attempts == 1
    assert client.state_value is S.ERROR


def test_1001_close_is_retried(virtual: Any) -> None:
    _client, _ = session_with_topics(virtual, reconnect=policy())
    virtual.at(3.0, lambda: virtual.transport.peer.close(1001, "going away"))
    virtual.run(10.0)
    assert virtual.timeline.timed_states[3:] == [
        (3.25, S.DISCONNECTED),
        (4.25, S.CONNECTING),
        (4.5, S.CONNECTED),
    ]
    assert virtual.timeline.of(Reconnected)[0].downtime == 1.25


def test_drop_with_requests_in_flight_fails_them_even_when_outbound_is_kept(virtual: Any) -> None:
    client, _ = session_with_topics(virtual, reconnect=policy(), keep_outbound_on_drop=True)
    slow = outcome(virtual, 2.5, lambda: client.request("sleep", {"seconds": 5}, timeout=30.0))
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    virtual.run(20.0)
    ((status, at, error),) = slow
    assert status == "error" and at == 3.25 and isinstance(error, ConnectionLost)
    assert client.pending_requests == 0
    assert client.state_value is S.CONNECTED


def test_keep_outbound_on_drop_sends_queued_messages_after_the_approved_reconnect(virtual: Any) -> None:
    later = reactivex.timer(2.0, scheduler=virtual.scheduler).pipe(ops.map(lambda _: True))
    client, _ = session_with_topics(virtual, reconnect=policy(lambda p: later), keep_outbound_on_drop=True)
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    sent = outcome(virtual, 4.0, lambda: client.send({"op": "note"}))
    echoed = outcome(virtual, 4.0, lambda: client.request("echo", {"x": 1}, timeout=30.0))
    virtual.run(20.0)
    # approved at 5.25, reconnecting at 6.25, open at 6.5: the queue goes out first
    assert sent == [("ok", 6.5, None)]
    assert echoed == [("ok", 7.0, {"x": 1})]
    assert virtual.transport.peers[1].sent[:2] == ['{"op":"note"}', '{"op":"echo","id":2,"params":{"x":1}}']
    assert virtual.timeline.of(OutboundFailed) == []


def test_without_keep_outbound_sends_during_the_outage_fail(virtual: Any) -> None:
    later = reactivex.timer(2.0, scheduler=virtual.scheduler).pipe(ops.map(lambda _: True))
    client, _ = session_with_topics(virtual, reconnect=policy(lambda p: later))
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    sent = outcome(virtual, 4.0, lambda: client.send({"op": "note"}))
    virtual.run(20.0)
    ((status, at, error),) = sent
    assert status == "error" and at == 4.0 and isinstance(error, NotConnected)
    assert client.state_value is S.CONNECTED
    assert virtual.transport.peers[1].sent == ['{"op":"subscribe","id":2,"args":["a","b"]}']


class ThrottleAll:
    """A rate limiter that lets nothing out (so frames queue), for outbound-queue tests."""

    def acquire_message(self, _conn: str, _now: float) -> Any:
        return type("Decision", (), {"allowed": False, "retry_after": 1000.0})()


def test_without_keep_outbound_queued_messages_fail_on_a_drop(virtual: Any) -> None:
    client = virtual.client(reconnect=policy())
    virtual.at(1.0, client.connect)

    def throttle() -> None:
        client._ctx.limiter = ThrottleAll()  # the queue can only build up behind a limiter

    virtual.at(1.5, throttle)
    sent = outcome(virtual, 2.0, lambda: client.send({"op": "note"}))
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    virtual.run(3.5)
    ((status, at, error),) = sent
    assert status == "error" and at == 3.25 and isinstance(error, ConnectionLost)
    (failed,) = virtual.timeline.of(OutboundFailed)
    assert (failed.at, failed.count) == (3.25, 1)
    assert client.stats.outbound_dropped == 1


def test_sequence_gap_is_reported(virtual: Any) -> None:
    _client, ticks = session_with_topics(virtual)
    virtual.at(3.0, lambda: virtual.responder.publish("a", "a2"))
    virtual.at(4.0, lambda: virtual.responder.publish("a", "a5", skip=2))
    virtual.at(5.0, lambda: virtual.responder.publish("a", "a6"))
    virtual.run(6.0)
    assert virtual.timeline.of(GapDetected) == [
        GapDetected(at=4.25, topic="a", gap="sequence", start=3.25, end=4.25, last_seq=2, next_seq=5)
    ]
    assert [m["seq"] for m in ticks if m["topic"] == "a"] == [1, 2, 5, 6]


def test_manual_reconnect_cancels_the_backoff_wait(virtual: Any) -> None:
    client, _ = session_with_topics(
        virtual, reconnect=ReconnectPolicy(backoff=ExponentialBackoff(100.0, 2.0, 100.0, jitter="none"))
    )
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    manual = outcome(virtual, 5.0, client.reconnect)
    virtual.run(50.0)
    assert manual == [("ok", 5.25, None)]
    assert virtual.transport.attempts == 2  # the backoff's own attempt (at 103.25) never happens
    assert virtual.timeline.timed_states[3:] == [(3.25, S.ERROR), (5.0, S.CONNECTING), (5.25, S.CONNECTED)]


def test_manual_reconnect_when_connected_completes_at_once(virtual: Any) -> None:
    client, _ = session_with_topics(virtual)
    manual = outcome(virtual, 3.0, client.reconnect)
    virtual.run(4.0)
    assert manual == [("ok", 3.0, None)]
    assert virtual.transport.attempts == 1


def test_manual_reconnect_reports_reconnected_and_restored(virtual: Any) -> None:
    client, _ = session_with_topics(virtual)
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    virtual.at(5.0, client.reconnect)
    virtual.run(10.0)
    assert [(e.at, e.downtime) for e in virtual.timeline.of(Reconnected)] == [(5.25, 2.0)]
    assert virtual.timeline.of(SubscriptionsRestored)[0].confirmed == ("a", "b")


def test_denied_reconnection_fails_messages_kept_for_it(virtual: Any) -> None:
    later = reactivex.timer(2.0, scheduler=virtual.scheduler).pipe(ops.map(lambda _: False))
    client, _ = session_with_topics(virtual, reconnect=policy(lambda p: later), keep_outbound_on_drop=True)
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    sent = outcome(virtual, 4.0, lambda: client.send({"op": "note"}))
    virtual.run(100.0)
    assert virtual.timeline.of(ReconnectDenied)[0].at == 5.25
    assert len(sent) == 1 and sent[0][0] == "error" and sent[0][1] == 5.25
    assert virtual.timeline.of(OutboundFailed)[0].count == 1


def test_send_after_a_non_retried_close_is_not_connected(virtual: Any) -> None:
    client, _ = session_with_topics(virtual, reconnect=policy(), keep_outbound_on_drop=True)
    virtual.at(3.0, lambda: virtual.transport.peer.close(1008, "Too many requests"))
    sent = outcome(virtual, 4.0, lambda: client.send({"op": "note"}))
    virtual.run(100.0)
    assert len(sent) == 1 and sent[0][0] == "error" and isinstance(sent[0][2], NotConnected)


async def test_async_approve_on_the_real_loop(no_leaked_tasks: None) -> None:
    loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(loop=loop)
    responder = Responder()
    transport = MemoryTransport(responder=responder)
    asked: list[ReconnectProposed] = []

    async def approve(proposal: ReconnectProposed) -> bool:
        asked.append(proposal)
        await asyncio.sleep(0)  # a real await on the loop
        return True

    client = WebSocketClient(
        "ws://venue.test",
        protocol=GenericJson(),
        transport=transport,
        scheduler=scheduler,
        ping_interval=None,
        reconnect=ReconnectPolicy(
            backoff=ExponentialBackoff(0.01, 2.0, 0.05, jitter="none"), approve=approve
        ),
    )
    events: list[Any] = []
    reconnected = loop.create_future()

    def on_event(event: Any) -> None:
        events.append(event)
        if isinstance(event, SubscriptionsRestored) and not reconnected.done():
            reconnected.set_result(event)

    client.events.subscribe(on_event)
    await client.connect()
    client.watch("a").subscribe(lambda _m: None)
    await client.request("echo", {}, timeout=1.0)  # the subscribe went out before it
    transport.peer.drop()
    restored = await asyncio.wait_for(reconnected, 2.0)
    assert restored.confirmed == ("a",)
    assert [(p.attempt, p.delay) for p in asked] == [(1, 0.01)]
    assert [e.kind for e in events if e.kind in ("disconnected", "reconnect_proposed", "reconnected")] == [
        "disconnected",
        "reconnect_proposed",
        "reconnected",
    ]
    assert transport.attempts == 2
    await client.close()
    assert client.state_value is S.DISCONNECTED
