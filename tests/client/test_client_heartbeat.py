"""Heartbeats in virtual time: protocol pings with a deadline, application pings, pong accounting."""

from __future__ import annotations

from typing import Any, ClassVar

from harness import Virtual

from rxws import ConnectionState, Disconnected, DisconnectReason
from rxws.events import HeartbeatMissed
from rxws.protocols import GenericJson
from rxws.ratelimit import SlidingWindow, VenueRateLimiter


def test_pings_every_interval_and_stays_up_while_pongs_come(virtual: Virtual) -> None:
    client = virtual.client(ping_interval=5.0, ping_timeout=2.0)
    virtual.at(1.0, client.connect)
    virtual.run(until=56.0)
    peer = virtual.transport.peer
    # connected at 1.25 (latency 0.25): pings at 6.25, 11.25, ..., 51.25 -> 10 pings
    assert peer.pings == 10
    assert client.state_value is ConnectionState.CONNECTED
    assert not virtual.timeline.of(Disconnected)  # type: ignore[union-attr]


def test_half_open_is_detected_exactly_at_ping_time_plus_timeout(virtual: Virtual) -> None:
    client = virtual.client(ping_interval=5.0, ping_timeout=2.0)
    virtual.at(1.0, client.connect)
    virtual.at(3.0, lambda: setattr(virtual.transport.peer, "answer_pings", False))
    virtual.run(until=20.0)
    tl = virtual.timeline
    assert tl is not None
    missed = tl.of(HeartbeatMissed)
    dropped = tl.of(Disconnected)
    assert [(m.at, m.silent_for) for m in missed] == [(8.25, 2.0)]  # ping at 6.25 + 2.0
    assert [(d.at, d.reason, d.code) for d in dropped] == [(8.25, DisconnectReason.HEARTBEAT_TIMEOUT, 1011)]
    assert client.state_value is ConnectionState.ERROR
    assert tl.kinds().index("heartbeat_missed") < tl.kinds().index("disconnected")


def test_half_open_is_detected_when_pings_come_faster_than_their_timeout(virtual: Virtual) -> None:
    """ping_interval < ping_timeout: a later ping must not push back the first unanswered one's deadline
    (found by the chaos soak through FaultProxy: the deadline was re-armed by every ping, so it never fired)."""
    client = virtual.client(ping_interval=1.0, ping_timeout=3.0)
    virtual.at(1.0, client.connect)
    virtual.at(3.9, lambda: setattr(virtual.transport.peer, "answer_pings", False))
    virtual.run(until=20.0)
    tl = virtual.timeline
    assert tl is not None
    # connected at 1.25 (latency 0.25); pings at 2.25, 3.25 answered; the ping at 4.25 is not -> dead at 4.25 + 3.0
    assert [(m.at, m.silent_for) for m in tl.of(HeartbeatMissed)] == [(7.25, 3.0)]
    dropped = tl.of(Disconnected)
    assert [(d.at, d.reason) for d in dropped] == [(7.25, DisconnectReason.HEARTBEAT_TIMEOUT)]


class TextPing(GenericJson):
    """A dialect that, like OKX, wants a text ping every few seconds."""

    heartbeat_interval: ClassVar[float | None] = 4.0  # type: ignore[misc]

    def heartbeat_message(self) -> Any:
        return {"op": "ping", "id": 0}


def test_application_heartbeat_is_sent_every_interval_and_answered(virtual: Virtual) -> None:
    client = virtual.client(protocol=TextPing())
    virtual.at(1.0, client.connect)
    virtual.run(until=30.0)
    pings = [f for f in virtual.transport.peer.sent if '"op":"ping"' in str(f)]
    assert len(pings) == 7  # at 5.25, 9.25, ..., 29.25
    assert client.state_value is ConnectionState.CONNECTED


def test_application_heartbeat_without_any_answer_drops_the_connection(virtual: Virtual) -> None:
    client = virtual.client(protocol=TextPing())
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: setattr(virtual.transport.peer, "on_receive", None))  # venue goes silent
    virtual.run(until=30.0)
    tl = virtual.timeline
    assert tl is not None
    # ping at 5.25, nothing back during the next interval -> dead at 9.25
    assert [(d.at, d.reason) for d in tl.of(Disconnected)] == [(9.25, DisconnectReason.HEARTBEAT_TIMEOUT)]


def test_pongs_the_transport_sends_are_charged_to_the_message_budget(virtual: Virtual) -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(5, 1.0)])
    client = virtual.client(rate_limiter=limiter)
    virtual.at(1.0, client.connect)
    for i in range(7):  # two pongs past the budget: already on the wire, so still counted
        virtual.at(2.0 + i * 0.01, lambda: virtual.transport.peer.ping_client())
    sent: list[Any] = []
    virtual.at(2.5, lambda: client.send({"op": "note"}).subscribe(on_next=sent.append))
    virtual.run(until=2.6)
    # seven pongs (2.25 .. 2.31) overdrew the 5/s budget: the send waits until the window
    # holds fewer than 5 frames again, i.e. until the third pong is more than 1 s old
    assert sent == []
    virtual.run(until=3.26)
    assert sent == []
    virtual.run(until=3.5)
    assert sent == [None]


def test_idle_watchdog_per_watch_reports_a_silent_topic_once(virtual: Virtual) -> None:
    client = virtual.client()
    got: list[Any] = []
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: client.watch("quiet", idle_timeout=5.0).subscribe(got.append))
    virtual.at(3.0, lambda: virtual.responder.publish("quiet", 1))
    virtual.run(until=30.0)
    tl = virtual.timeline
    assert tl is not None
    missed = tl.of(HeartbeatMissed)
    # the message arrives at 3.25; silence from then on is reported once, at 8.25
    assert [(m.at, m.topic, m.silent_for) for m in missed] == [(8.25, "quiet", 5.0)]
    assert len(got) == 1
    assert client.state_value is ConnectionState.CONNECTED  # a quiet topic is not a dead link
