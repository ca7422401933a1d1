"""The client wiring of issue 16 (over rxws._expect, rxws._replay, rxws._display):
``client.expect``, ``request(..., stream=True)`` and the notebook reprs, on a real client in
virtual time."""

from __future__ import annotations

from typing import Any

from reactivex.testing import TestScheduler

from rxws import ConnectionLost, RequestTimeout, WebSocketClient
from rxws.events import LateReply
from rxws.pool import ConnectionPool
from rxws.protocols import GenericJson
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport


def _connected(latency: float = 0.1) -> tuple[TestScheduler, MemoryTransport, WebSocketClient]:
    scheduler = TestScheduler()
    transport = MemoryTransport(latency=latency, responder=Responder())
    client = WebSocketClient(
        "ws://venue.test/ws",
        protocol=GenericJson(),
        transport=transport,
        scheduler=scheduler,
        ping_interval=None,
    )
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
