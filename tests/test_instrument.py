"""``client.add_instrumentation``: a sink told of every inbound frame and every request's end.

Virtual time (a ``MemoryTransport`` with the mock venue's ``Responder``) for the frames, sizes and
outcomes; one real-socket test for a request whose awaiting task is cancelled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness import Virtual
from reactivex.testing import TestScheduler

from rxws import WebSocketClient
from rxws._instrument import outcome_of
from rxws.events import ObserverFailed
from rxws.exceptions import (
    ConnectionLost,
    EncodeError,
    NotConnected,
    RequestTimeout,
    UsageError,
    VenueError,
)
from rxws.protocols import GenericJson
from rxws.ratelimit import SlidingWindow, VenueRateLimiter
from rxws.testing import MockVenue, Responder
from rxws.transport.memory import MemoryTransport


class Sink:
    """Records what the client reports."""

    def __init__(self) -> None:
        self.frames: list[tuple[str | None, int, Any]] = []
        self.requests: list[tuple[str, float, str]] = []

    def on_message(self, topic: str | None, nbytes: int, message: Any) -> None:
        self.frames.append((topic, nbytes, message))

    def on_request_done(self, method: str, seconds: float, outcome: str) -> None:
        self.requests.append((method, seconds, outcome))


def _client(**options: Any) -> tuple[TestScheduler, MemoryTransport, WebSocketClient]:
    virtual = Virtual(latency=0.1)
    return virtual.scheduler, virtual.transport, virtual.client(**options)


def test_every_inbound_frame_reaches_the_sink_with_its_topic_and_size_in_bytes() -> None:
    scheduler, transport, client = _client()
    sink = Sink()
    client.add_instrumentation(sink)
    client.connect()
    client.watch("t.a").subscribe()
    scheduler.advance_to(1.0)
    responder = transport.responder
    assert isinstance(responder, Responder)
    responder.publish("t.a", {"p": "é" * 10})  # non-ASCII text: 20 bytes for 10 characters
    responder.publish("t.a", {"p": 1})
    scheduler.advance_to(2.0)
    topics = [topic for topic, _n, _m in sink.frames]
    assert topics == [None, "t.a", "t.a"]  # the subscribe ack (no topic), then the data
    for _topic, nbytes, message in sink.frames:
        frame = client.protocol.encode(message)
        assert nbytes == len(frame.encode() if isinstance(frame, str) else frame)
    assert sink.frames[1][1] > len(client.protocol.encode(sink.frames[1][2]))  # bytes, not characters
    assert len(sink.frames) == client.stats.frames_in


def test_every_request_end_is_one_report_with_its_outcome_and_duration() -> None:
    scheduler, transport, client = _client()
    sink = Sink()
    client.add_instrumentation(sink)
    early: list[Exception] = []
    client.request("echo", {"x": 0}, timeout=1.0).subscribe(on_error=early.append)  # not connected
    assert len(early) == 1 and isinstance(early[0], NotConnected)
    client.connect()
    scheduler.advance_to(1.0)
    client.request("echo", {"x": 1}, timeout=5.0)  # answered at 1.2
    client.request("fail", {"code": 7, "message": "no"}, timeout=5.0)  # an error reply at 1.2
    client.request("sleep", {"seconds": 3.0}, timeout=0.5)  # its deadline at 1.5
    client.request("sleep", {"seconds": 3.0}, timeout=9.0)  # the drop at 2.0, seen at 2.1
    client.request("echo", object(), timeout=5.0)  # cannot be encoded
    scheduler.schedule_absolute(2.0, lambda _s, _st: transport.peer.drop())
    scheduler.advance_to(5.0)
    assert [(m, round(s, 6), o) for m, s, o in sink.requests] == [
        ("echo", 0.0, "lost"),
        ("echo", 0.0, "error"),
        ("echo", 0.2, "ok"),
        ("fail", 0.2, "error"),
        ("sleep", 0.5, "timeout"),
        ("sleep", 1.1, "lost"),
    ]
    assert client.pending_requests == 0


def test_a_disposed_sink_hears_nothing_more_and_a_raising_one_is_isolated() -> None:
    scheduler, _transport, client = _client()
    kept, gone = Sink(), Sink()
    failures: list[ObserverFailed] = []
    client.events.subscribe(lambda e: failures.append(e) if isinstance(e, ObserverFailed) else None)

    class Raising:
        def on_message(self, topic: str | None, nbytes: int, message: Any) -> None:
            raise RuntimeError("broken sink")

        def on_request_done(self, method: str, seconds: float, outcome: str) -> None:
            raise RuntimeError("broken sink")

    client.add_instrumentation(Raising())
    client.add_instrumentation(kept)
    handle = client.add_instrumentation(gone)
    client.connect()
    scheduler.advance_to(1.0)
    handle.dispose()
    got: list[Any] = []
    client.request("echo", {"x": 1}, timeout=5.0).subscribe(got.append)
    scheduler.advance_to(2.0)
    assert got == [{"x": 1}]  # the raising sink broke nothing
    assert [o for _m, _s, o in kept.requests] == ["ok"] and gone.requests == []
    assert len(kept.frames) == 1 and gone.frames == []  # the reply
    assert {e.stream for e in failures} == {"instrumentation"} and len(failures) == 2
    assert client.stats.internal_errors == 0
    with pytest.raises(UsageError):
        client.add_instrumentation(object())


def test_outbound_queue_depth_counts_frames_waiting_for_the_limiter() -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(1, 10.0)])  # one frame per 10 s
    scheduler, _transport, client = _client(rate_limiter=limiter)
    client.connect()
    scheduler.advance_to(1.0)
    assert client.outbound_queue_depth == 0
    for n in range(3):
        client.send({"op": "note", "n": n})
    assert client.outbound_queue_depth == 2  # the first went out, two wait
    scheduler.advance_to(11.5)
    assert client.outbound_queue_depth == 1


def test_outcome_labels() -> None:
    assert outcome_of(None) == "ok"
    assert outcome_of(RequestTimeout(1, 1.0)) == "timeout"
    assert outcome_of(ConnectionLost("x")) == "lost" and outcome_of(NotConnected("x")) == "lost"
    assert outcome_of(asyncio.CancelledError()) == "cancelled"
    assert outcome_of(VenueError(7, "no")) == "error" and outcome_of(EncodeError("x")) == "error"


@pytest.mark.integration
async def test_a_request_whose_caller_gave_up_is_reported_cancelled() -> None:
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
        sink = Sink()
        client.add_instrumentation(sink)
        await client.connect()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.request("sleep", {"seconds": 5.0}, timeout=10.0), 0.1)
        assert [(m, o) for m, _s, o in sink.requests] == [("sleep", "cancelled")]
        assert 0.1 <= sink.requests[0][1] < 5.0
        await client.close()
