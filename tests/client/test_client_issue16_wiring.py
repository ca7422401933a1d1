"""The client wiring of issue 16 (over rxws._expect, rxws._replay, rxws._display):
``client.expect``, ``request(..., stream=True)`` and the notebook reprs, on a real client in
virtual time."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Virtual
from reactivex.testing import TestScheduler

from rxws import ConnectionLost, RequestTimeout, VenueError, WebSocketClient
from rxws.events import LateReply
from rxws.pool import ConnectionPool
from rxws.protocols import GenericJson
from rxws.ratelimit import SlidingWindow, VenueRateLimiter
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport


def _connected(latency: float = 0.1) -> tuple[TestScheduler, MemoryTransport, WebSocketClient]:
    scheduler, transport, make_client = Virtual(latency=latency)
    client = make_client()
    client.connect()
    scheduler.advance_to(1.0)
    return scheduler, transport, client


def _record(stream: Any, scheduler: TestScheduler) -> list[tuple[float, Any]]:
    seen: list[tuple[float, Any]] = []
    stream.subscribe(
        lambda v: seen.append((scheduler.clock, v)),
        lambda e: seen.append((scheduler.clock, e)),
        lambda: seen.append((scheduler.clock, "|")),
    )
    return seen


def test_a_streaming_request_yields_every_part_and_completes_on_the_last() -> None:
    scheduler, _transport, client = _connected()
    late: list[Any] = []
    client.events.subscribe(lambda e: late.append(e) if isinstance(e, LateReply) else None)
    parts = client.request("parts", {"count": 3, "gap": 1.0}, timeout=10.0, stream=True)
    seen = _record(parts, scheduler)
    scheduler.advance_to(10.0)
    assert seen == [
        (1.2, {"part": 1, "of": 3}),
        (2.2, {"part": 2, "of": 3}),
        (3.2, {"part": 3, "of": 3}),
        (3.2, "|"),
    ]
    assert client.pending_requests == 0 and late == [] and client.stats.unknown_replies == 0


def test_a_streaming_request_times_out_after_the_parts_it_got() -> None:
    scheduler, _transport, client = _connected()
    seen = _record(client.request("parts", {"count": 3, "gap": 2.0}, timeout=3.0, stream=True), scheduler)
    scheduler.advance_to(10.0)
    assert [v for _t, v in seen[:2]] == [{"part": 1, "of": 3}, {"part": 2, "of": 3}]
    assert seen[2][0] == 4.0 and isinstance(seen[2][1], RequestTimeout) and len(seen) == 3
    assert client.stats.late_replies == 1  # the third part came after the deadline


def test_a_streaming_request_fails_when_the_connection_drops() -> None:
    scheduler, transport, client = _connected()
    seen = _record(client.request("parts", {"count": 3, "gap": 2.0}, timeout=30.0, stream=True), scheduler)
    scheduler.schedule_absolute(2.0, lambda _s, _st: transport.peer.drop())
    scheduler.advance_to(10.0)
    assert seen[0][1] == {"part": 1, "of": 3} and isinstance(seen[1][1], ConnectionLost)


def test_a_plain_request_takes_the_first_frame_of_a_multi_frame_reply() -> None:
    scheduler, _transport, client = _connected()
    seen = _record(client.request("parts", {"count": 2}, timeout=5.0), scheduler)
    scheduler.advance_to(5.0)
    assert seen == [(1.2, {"part": 1, "of": 2}), (1.2, "|")]
    assert client.stats.unknown_replies == 1  # the second frame: counted, not lost


def test_client_expect_matches_a_reply_id_before_it_is_sent() -> None:
    scheduler, _transport, client = _connected()
    reply = client.expect("r1", timeout=2.0)
    client.send({"op": "echo", "id": "r1", "params": {"x": 1}})
    seen = _record(reply, scheduler)
    scheduler.advance_to(5.0)
    assert seen == [(1.2, {"id": "r1", "result": {"x": 1}}), (1.2, "|")]


def test_the_notebook_views() -> None:
    _scheduler, _transport, client = _connected()
    page = client._repr_html_()
    assert "CONNECTED" in page and "connected" in page  # the state, and the Connected event
    assert repr(client).startswith("<WebSocketClient ws://venue.test/ws CONNECTED age=0.9s")
    assert "frames_in" in client.stats._repr_html_()
    pool = ConnectionPool("ws://venue.test/ws", protocol=GenericJson(), name="p")
    assert "ConnectionPool p" in pool._repr_html_()


class _Unreadable(GenericJson):
    """GenericJson whose reply reader fails on a ``"boom"`` result (a part it cannot read)."""

    def reply_result(self, message: Any) -> Any:
        if message.get("result") == "boom":
            raise ValueError("unreadable part")
        return super().reply_result(message)


def _raw(protocol: GenericJson) -> tuple[TestScheduler, MemoryTransport, WebSocketClient]:
    """A connected client whose venue answers nothing by itself (the test pushes the replies)."""
    scheduler = TestScheduler()
    transport = MemoryTransport(latency=0.1)
    client = WebSocketClient(
        "ws://venue.test/ws",
        protocol=protocol,
        transport=transport,
        scheduler=scheduler,
        ping_interval=None,
        id_generator=iter(range(100, 200)).__next__,
    )
    client.connect()
    scheduler.advance_to(1.0)
    return scheduler, transport, client


def test_an_error_reply_ends_a_stream_with_the_venues_error() -> None:
    scheduler, transport, client = _raw(GenericJson())
    seen = _record(client.request("parts", None, timeout=10.0, stream=True), scheduler)
    transport.peer.push({"id": 100, "result": 1, "partial": True})
    transport.peer.push({"id": 100, "error": {"code": 5, "message": "gone"}})
    transport.peer.push({"id": 100, "result": 2, "partial": True})  # after the end: counted
    scheduler.advance_to(2.0)
    assert seen[0][1] == 1 and isinstance(seen[1][1], VenueError) and len(seen) == 2
    assert seen[1][1].code == 5 and client.pending_requests == 0
    assert client.stats.unknown_replies == 1


def test_a_part_the_dialect_cannot_read_ends_the_stream_and_later_parts_are_late() -> None:
    scheduler, transport, client = _raw(_Unreadable())
    seen = _record(client.request("parts", None, timeout=10.0, stream=True), scheduler)
    for result in (1, "boom", 3):
        transport.peer.push({"id": 100, "result": result, "partial": True})
    scheduler.advance_to(2.0)
    assert seen[0][1] == 1 and isinstance(seen[1][1], VenueError) and len(seen) == 2
    assert "unreadable part" in str(seen[1][1])
    assert client.stats.internal_errors == 1 and client.stats.late_replies == 1
    assert client.pending_requests == 0 and client.state_value.name == "CONNECTED"


def test_a_streaming_request_is_one_request_for_the_instrumentation() -> None:
    scheduler, _transport, client = _connected()
    ends: list[tuple[str, float, str]] = []
    frames: list[str | None] = []

    class Sink:
        def on_message(self, topic: str | None, nbytes: int, message: Any) -> None:
            frames.append(topic)

        def on_request_done(self, method: str, seconds: float, outcome: str) -> None:
            ends.append((method, seconds, outcome))

    client.add_instrumentation(Sink())
    parts = client.request("parts", {"count": 3, "gap": 1.0}, timeout=10.0, stream=True)
    seen = _record(parts, scheduler)
    scheduler.advance_to(10.0)
    assert len(seen) == 4 and frames == [None, None, None]
    assert [(m, round(s, 6), o) for m, s, o in ends] == [("parts", 2.2, "ok")]


def test_expect_collects_several_matches_of_a_predicate_in_order() -> None:
    scheduler, transport, client = _connected()
    wanted = client.expect(lambda m: m.get("topic") == "t.x", timeout=5.0, count=2)
    client.watch("t.x").subscribe()
    responder = transport.responder
    assert isinstance(responder, Responder)
    for at, n in ((2.0, 1), (2.5, 2), (3.0, 3)):
        scheduler.schedule_absolute(at, lambda _s, _st, n=n: responder.publish("t.x", {"n": n}))
    seen = _record(wanted, scheduler)
    scheduler.advance_to(4.0)
    assert [[m["data"]["n"] for m in v] for _t, v in seen[:1]] == [[1, 2]] and seen[1] == (2.6, "|")
    late = _record(client.expect("t.x", timeout=0.5), scheduler)  # a key: the data's topic
    scheduler.advance_to(5.0)
    assert isinstance(late[0][1], RequestTimeout) and late[0][0] == 4.5


def test_the_views_show_the_connection_its_age_its_queue_and_the_limiter() -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(1, 10.0)])
    scheduler, _transport, make_client = Virtual(latency=0.1)
    client = make_client(rate_limiter=limiter)
    assert client.conn_id is None and client.connection_age is None
    assert repr(client) == "<WebSocketClient ws://venue.test/ws DISCONNECTED age=- topics=0 pending=0>"
    client.connect()
    scheduler.advance_to(1.0)
    for n in range(3):
        client.send({"op": "note", "n": n})  # one goes out, two wait for the limiter
    first = client.conn_id
    assert first is not None and client.connection_age == pytest.approx(0.9)
    page = client._repr_html_()
    assert first in page and "rate limiter" in page
    summary = dict(row for row in _rows(page, "WebSocketClient"))
    assert summary["connection"] == first and summary["outbound queue"] == "2"
    assert summary["connected for"] == "0.9s"
    client.rotate()
    scheduler.advance_to(5.0)  # the new connection took over (no topics: at once once open)
    assert client.conn_id != first and client.connection_age is not None and client.connection_age < 4.0
    assert f"age={client.connection_age:.1f}s" in repr(client)


def test_a_pool_has_a_compact_repr() -> None:
    pool = ConnectionPool("ws://venue.test/ws", protocol=GenericJson(), name="p")
    assert repr(pool) == "<ConnectionPool p connections=0 topics=0>"


def _rows(page: str, caption: str) -> list[tuple[str, str]]:
    """The two-cell rows of the table captioned ``caption`` (text, unescaped)."""
    import html
    import re

    table = re.search(rf"<caption>{caption}</caption>(.*?)</table>", page)
    assert table is not None
    cells = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table.group(1))
    return [(html.unescape(k), html.unescape(v)) for k, v in cells]
