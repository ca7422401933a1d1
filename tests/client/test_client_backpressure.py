"""Honest writes in virtual time: a venue that stops reading (MemoryPeer.stop_reading) back-pressures
the link; sends complete only once the link took them, the rest wait in the bounded outbound queue
and flush in order at the drain, and a drop fails every unwritten frame with one event."""

from __future__ import annotations

from typing import Any

from harness import Virtual

from rxws import ConnectionLost, ExponentialBackoff, RateLimitExceeded, ReconnectPolicy
from rxws.events import HeartbeatMissed, MessageDropped, OutboundFailed
from rxws.protocols import Deribit
from rxws.ratelimit.events import Queued, RateLimitEvent
from rxws.transport.memory import MemoryLink

HIGH = 8192
BLOB = "x" * 1000


class Sends:
    """Fires ``client.send`` and records each outcome as ``(i, "done" | error type, time)``."""

    def __init__(self, virtual: Virtual, client: Any) -> None:
        self.virtual, self.client = virtual, client
        self.outcomes: dict[int, tuple[str, float]] = {}
        self.errors: dict[int, BaseException] = {}

    def fire(self, first: int, count: int) -> None:
        for i in range(first, first + count):
            self.client.send({"op": "note", "n": i, "blob": BLOB}).subscribe(
                on_next=lambda _v, i=i: self.outcomes.__setitem__(i, ("done", self.virtual.now())),
                on_error=lambda e, i=i: self._failed(i, e),
            )

    def _failed(self, i: int, error: BaseException) -> None:
        self.outcomes[i] = (type(error).__name__, self.virtual.now())
        self.errors[i] = error

    def of(self, what: str) -> list[int]:
        return sorted(i for i, (kind, _t) in self.outcomes.items() if kind == what)


def _frame_size(client: Any, i: int) -> int:
    return len(client.protocol.encode({"op": "note", "n": i, "blob": BLOB}).encode())


def _setup(virtual: Virtual, **kwargs: Any) -> tuple[Any, Sends, list[RateLimitEvent]]:
    client = virtual.client(write_high_water=HIGH, **kwargs)
    rate_events: list[RateLimitEvent] = []
    client.rate_limit_events.subscribe(rate_events.append)
    virtual.at(1.0, client.connect)
    virtual.run(until=2.0)
    virtual.transport.peer.stop_reading()
    return client, Sends(virtual, client), rate_events


def _taken_before_the_mark(client: Any) -> int:
    """How many frames fit under the mark: the one after them is the one that crosses it."""
    total, n = 0, 0
    while total + _frame_size(client, n) <= HIGH:
        total += _frame_size(client, n)
        n += 1
    return n


def test_a_venue_that_stops_reading_bounds_what_is_reported_done(virtual: Virtual) -> None:
    client, sends, rate_events = _setup(virtual, max_outbound_queue=100)
    virtual.at(3.0, lambda: sends.fire(0, 1000))
    virtual.run(until=4.0)
    below = _taken_before_the_mark(client)
    assert sends.of("done") == list(range(below))  # only what the link took under its mark
    # one frame held by the link (it crossed the mark) + 99 queued = max_outbound_queue unwritten
    pending = [i for i in range(1000) if i not in sends.outcomes]
    assert pending == list(range(below, below + 100))
    overflow = sends.of(RateLimitExceeded.__name__)
    assert overflow == list(range(below + 100, 1000))
    dropped = virtual.timeline.of(MessageDropped)  # type: ignore[union-attr]
    assert len(dropped) == len(overflow) and {d.reason for d in dropped} == {"outbound queue full"}
    assert client._session.queued == 99 and client._session.holding
    link = virtual.transport.peer.link
    assert isinstance(link, MemoryLink) and not link.writable
    held_bytes = sum(_frame_size(client, i) for i in range(below + 1))
    assert virtual.transport.peer.unread == held_bytes  # nothing else piles up in the link
    # Queued depth is honest: first frame, then every power of two (the queue reached 99)
    assert [e.depth for e in rate_events if isinstance(e, Queued)] == [1, 2, 4, 8, 16, 32, 64]
    assert not virtual.transport.peer.sent


def test_the_queue_flushes_in_order_when_the_venue_reads_again(virtual: Virtual) -> None:
    client, sends, rate_events = _setup(virtual, max_outbound_queue=100)
    virtual.at(3.0, lambda: sends.fire(0, 150))
    virtual.at(10.0, virtual.transport.peer.resume_reading)
    virtual.run(until=9.0)
    below = _taken_before_the_mark(client)
    assert sends.of("done") == list(range(below))
    virtual.run(until=20.0)
    accepted = list(range(below + 100))
    assert sends.of("done") == accepted
    # the held frame and the queued ones completed at the drain, not when they were queued
    assert {sends.outcomes[i][1] for i in accepted[below:]} == {10.0}
    received = [str(f) for f in virtual.transport.peer.sent]
    assert [int(f.split('"n":')[1].split(",")[0]) for f in received] == accepted
    depths = [e.depth for e in rate_events if isinstance(e, Queued)]
    assert depths == [1, 2, 4, 8, 16, 32, 64, 0]  # and 0 once it drained
    assert not client._session.queued and not client._session.holding


def test_a_send_completes_only_after_the_venue_resumes_reading(virtual: Virtual) -> None:
    client, sends, _events = _setup(virtual)
    below = _taken_before_the_mark(client)
    virtual.at(3.0, lambda: sends.fire(0, below + 1))  # the last one crosses the mark
    virtual.at(30.0, virtual.transport.peer.resume_reading)
    virtual.run(until=29.0)
    assert below not in sends.outcomes
    virtual.run(until=31.0)
    assert sends.outcomes[below] == ("done", 30.0)


def test_a_drop_fails_every_unwritten_frame_with_one_event(virtual: Virtual) -> None:
    client, sends, rate_events = _setup(virtual, max_outbound_queue=50)
    virtual.at(3.0, lambda: sends.fire(0, 40))
    virtual.at(5.0, lambda: virtual.transport.peer.drop())
    virtual.run(until=10.0)
    below = _taken_before_the_mark(client)
    unwritten = list(range(below, 40))
    assert sends.of("done") == list(range(below))
    assert sends.of(ConnectionLost.__name__) == unwritten
    assert all(isinstance(sends.errors[i], ConnectionLost) for i in unwritten)
    failed = virtual.timeline.of(OutboundFailed)  # type: ignore[union-attr]
    assert [f.count for f in failed] == [len(unwritten)]
    assert client.stats.outbound_dropped == len(unwritten)
    assert [e.depth for e in rate_events if isinstance(e, Queued)][-1] == 0


def test_a_due_ping_waits_for_the_drain_and_its_deadline_still_runs(virtual: Virtual) -> None:
    client, sends, _events = _setup(virtual, ping_interval=5.0, ping_timeout=3.0)
    below = _taken_before_the_mark(client)
    peer = virtual.transport.peer
    virtual.at(3.0, lambda: sends.fire(0, below + 1))
    pings_before: list[int] = []
    virtual.at(6.0, lambda: pings_before.append(peer.pings))  # the ping due at 6.25 waits
    virtual.at(6.5, lambda: pings_before.append(peer.pings))
    virtual.at(8.0, peer.resume_reading)  # drained before the deadline (6.25 + 3)
    virtual.run(until=9.0)
    assert pings_before[1] == pings_before[0]
    assert peer.pings == pings_before[0] + 1  # sent at the drain
    virtual.run(until=12.0)
    assert not virtual.timeline.of(HeartbeatMissed)  # type: ignore[union-attr]
    # a venue that stops reading for longer than ping_timeout is declared dead
    virtual.at(12.0, peer.stop_reading)
    virtual.at(12.1, lambda: sends.fire(100, below + 1))
    virtual.run(until=30.0)
    missed = virtual.timeline.of(HeartbeatMissed)  # type: ignore[union-attr]
    # the next ping was due at 13.0 (5 s after the one sent at the drain): dead at 13.0 + 3.0
    assert len(missed) == 1 and missed[0].at == 13.0 + 3.0
    assert set(sends.of(ConnectionLost.__name__)) == {100 + below}


def test_an_automatic_reply_waits_its_turn_behind_unwritten_frames(virtual: Virtual) -> None:
    client, sends, _events = _setup(virtual, protocol=Deribit())
    below = _taken_before_the_mark(client)
    peer = virtual.transport.peer
    virtual.at(3.0, lambda: sends.fire(0, below + 3))  # held + 2 queued
    virtual.at(
        4.0, lambda: peer.push({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})
    )
    virtual.at(10.0, peer.resume_reading)
    virtual.run(until=9.0)
    assert client._session.queued == 3  # the two sends and the reply, behind the held frame
    virtual.run(until=12.0)
    sent = [str(f) for f in peer.sent]
    assert len(sent) == below + 4
    assert '"public/test"' in sent[-1] and all('"public/test"' not in f for f in sent[:-1])


def test_with_keep_outbound_the_unwritten_frames_go_out_in_order_after_the_reconnect(
    virtual: Virtual,
) -> None:
    policy = ReconnectPolicy(backoff=ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", stable_after=1000.0))
    client, sends, _events = _setup(virtual, reconnect=policy, keep_outbound_on_drop=True)
    below = _taken_before_the_mark(client)
    first = virtual.transport.peer
    virtual.at(3.0, lambda: sends.fire(0, below + 3))  # held + 2 queued
    virtual.at(5.0, first.drop)
    virtual.run(until=30.0)
    second = virtual.transport.peers[-1]
    assert second is not first and client._session.link is second.link
    assert sends.of("done") == list(range(below + 3))
    assert not virtual.timeline.of(OutboundFailed)  # type: ignore[union-attr]
    numbers = [int(str(f).split('"n":')[1].split(",")[0]) for f in second.sent if '"n":' in str(f)]
    assert numbers == [below, below + 1, below + 2]  # the held frame first, then the queue
