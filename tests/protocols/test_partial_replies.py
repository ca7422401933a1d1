"""Multi-frame replies (issue 16): the dialects' ``is_partial``, MockVenue's ``parts`` request,
and a PendingTable streaming entry fed by them.

Only GenericJson has a multi-frame form (its own, documented in rxws.protocols.generic): the
built-in venues answer each request with exactly one frame (Binance's WebSocket API: "one
response per frame"), so their dialects keep the default.
"""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

from rxws import WebSocketClient
from rxws._expect import expect
from rxws.core.correlation import PendingTable, ReplyOutcome
from rxws.protocols import Binance, Bybit, Deribit, GenericJson, JsonRpc, MessageKind, Okx, VenueProtocol
from rxws.protocols.base import json_loads
from rxws.testing import MockVenue, Responder
from rxws.testing._venue_core import Reply, SessionCore, VenueCore
from rxws.testing.dialects import SERVER_DIALECTS
from rxws.transport.memory import MemoryTransport


def test_generic_reads_the_partial_flag() -> None:
    generic = GenericJson()
    assert generic.is_partial({"id": 1, "result": [1], "partial": True})
    assert not generic.is_partial({"id": 1, "result": [2]})
    assert not generic.is_partial({"id": 1, "result": [2], "partial": False})
    assert not generic.is_partial({"id": 1, "result": [2], "partial": "yes"})  # only JSON true
    assert not generic.is_partial({"id": 1, "error": {"code": 1, "message": "x"}, "partial": True})
    assert not generic.is_partial(["partial"])
    assert generic.classify({"id": 1, "result": [1], "partial": True}) == (MessageKind.REPLY, 1)


@pytest.mark.parametrize("client", [Binance(), Okx(), Bybit(), Deribit(), JsonRpc()], ids=lambda c: c.name)
def test_single_frame_venues_never_say_partial(client: VenueProtocol) -> None:
    server = SERVER_DIALECTS[client.name]()
    reply = json_loads(server.reply(7, {"ok": True}))
    assert client.classify(reply)[0] is MessageKind.REPLY
    assert client.is_partial(reply) is False
    assert server.partial_reply(7, {"ok": True}) is None


def _parts(params: Any, dialect: str = "generic") -> list[Reply]:
    session = SessionCore(VenueCore(dialect=dialect), 1)
    client = GenericJson() if dialect == "generic" else Binance()
    frame = client.encode(client.request_message("parts", params, 5))
    actions = session.receive(frame, 0.0)
    assert all(isinstance(a, Reply) for a in actions)
    return actions  # type: ignore[return-value]


def test_the_venue_core_answers_parts_with_a_multi_frame_reply() -> None:
    actions = _parts({"count": 3, "gap": 0.5})
    messages = [json_loads(a.frame) for a in actions]
    assert [a.delay for a in actions] == [0.0, 0.5, 1.0]
    assert messages == [
        {"id": 5, "result": {"part": 1, "of": 3}, "partial": True},
        {"id": 5, "result": {"part": 2, "of": 3}, "partial": True},
        {"id": 5, "result": {"part": 3, "of": 3}},
    ]


@pytest.mark.parametrize("params", [{"count": 0}, {"count": "3"}, {"count": 2, "gap": -1}, {"count": 5000}])
def test_bad_parts_params_are_an_error_reply(params: Any) -> None:
    (action,) = _parts(params)
    assert json_loads(action.frame)["error"]["code"] == 400


def test_a_dialect_without_multi_frame_replies_says_so() -> None:
    (action,) = _parts({"count": 2}, dialect="binance")
    assert json_loads(action.frame)["error"]["code"] == 404


def test_a_streaming_entry_follows_the_parts_to_the_final_one() -> None:
    """What ``request(..., stream=True)`` does with the table, fed by the venue's frames."""
    protocol = GenericJson()
    table: PendingTable[list[Any]] = PendingTable()
    table.add(5, [], deadline=10.0)
    outcomes = []
    for action in _parts({"count": 4}):
        message = protocol.decode(action.frame)
        kind, rid = protocol.classify(message)
        assert kind is MessageKind.REPLY
        outcome, entry = table.resolve(rid, final=not protocol.is_partial(message))
        assert entry is not None
        entry.append(protocol.reply_result(message))
        outcomes.append(outcome)
    assert outcomes == [ReplyOutcome.PARTIAL] * 3 + [ReplyOutcome.PENDING]
    assert 5 not in table and table.parts == 3


def test_mock_venue_parts_reach_a_client_in_virtual_time() -> None:
    scheduler, venue = TestScheduler(), Responder()
    client = WebSocketClient(
        "ws://venue.test/ws",
        protocol=GenericJson(),
        transport=MemoryTransport(latency=0.1, responder=venue),
        scheduler=scheduler,
        ping_interval=None,
    )
    client.connect()
    scheduler.advance_to(1.0)
    frames = expect(
        client.messages, "p1", protocol=client.protocol, count=3, timeout=5.0, scheduler=scheduler
    )
    client.send({"op": "parts", "id": "p1", "params": {"count": 3, "gap": 1.0}})
    seen: list[tuple[float, Any]] = []
    frames.subscribe(lambda v: seen.append((scheduler.clock, v)))
    scheduler.advance_to(10.0)
    ((at, messages),) = seen
    assert at == pytest.approx(3.2)  # sent at 1.0, +0.1 there, parts at +0, +1, +2, +0.1 back
    assert [client.protocol.is_partial(m) for m in messages] == [True, True, False]
    assert [m["result"]["part"] for m in messages] == [1, 2, 3]


async def test_mock_venue_sends_the_parts_over_a_real_socket(no_leaked_tasks: None) -> None:
    async with MockVenue() as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
        await client.connect()
        try:
            frames = expect(client.messages, "p2", protocol=client.protocol, count=2, timeout=5.0)
            await client.send({"op": "parts", "id": "p2", "params": {"count": 2, "gap": 0.01}})
            messages = await frames
        finally:
            await client.close()
    assert [(m["result"]["part"], client.protocol.is_partial(m)) for m in messages] == [(1, True), (2, False)]
