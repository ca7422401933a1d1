"""rxws._expect: the next matching messages of a real WebSocketClient, in virtual time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from rxws import ConnectionLost, RequestTimeout, UsageError, WebSocketClient
from rxws._expect import expect
from rxws.protocols import GenericJson
from rxws.protocols.base import json_dumps, json_loads
from rxws.testing import Responder
from rxws.transport.base import Frame
from rxws.transport.memory import MemoryLink, MemoryPeer, MemoryTransport

URL = "ws://venue.test/ws"


class _AnswersDuringSend(MemoryLink):
    """A link whose venue answers an ``order`` inside the very ``send`` call that carries it."""

    def send(self, frame: Frame) -> bool:
        written = super().send(frame)
        message = json_loads(frame)
        if message.get("op") == "order":
            self._deliver(json_dumps({"event": "ack", "clOrdId": message["clOrdId"]}))
        return written


def _answering(peer: MemoryPeer) -> None:
    peer.link = _AnswersDuringSend(peer)


def _client(scheduler: TestScheduler, transport: MemoryTransport) -> WebSocketClient:
    client = WebSocketClient(
        URL, protocol=GenericJson(), transport=transport, scheduler=scheduler, ping_interval=None
    )
    client.connect()
    scheduler.advance_to(1.0)
    return client


def _outcome(result: Any, scheduler: TestScheduler) -> list[tuple[float, Any]]:
    seen: list[tuple[float, Any]] = []
    result.subscribe(lambda v: seen.append((scheduler.clock, v)), lambda e: seen.append((scheduler.clock, e)))
    return seen


def test_a_reply_that_arrives_during_the_send_is_caught() -> None:
    scheduler = TestScheduler()
    client = _client(scheduler, MemoryTransport(responder=_answering))
    ack = expect(client.messages, lambda m: m.get("clOrdId") == "x1", timeout=2.0, scheduler=client.scheduler)
    client.send({"op": "order", "clOrdId": "x1"})
    assert ack.done  # settled inside send(), before the scheduler moved on
    assert _outcome(ack, scheduler) == [(1.0, {"event": "ack", "clOrdId": "x1"})]


def test_created_after_the_send_it_misses_the_reply_and_times_out() -> None:
    scheduler = TestScheduler()
    client = _client(scheduler, MemoryTransport(responder=_answering))
    client.send({"op": "order", "clOrdId": "x1"})
    late = expect(
        client.messages, lambda m: m.get("clOrdId") == "x1", timeout=2.0, scheduler=client.scheduler
    )
    seen = _outcome(late, scheduler)
    scheduler.advance_to(5.0)
    assert [(t, type(e)) for t, e in seen] == [(3.0, RequestTimeout)]


def test_a_key_is_compared_with_the_dialects_routing_key_and_count_collects_in_order() -> None:
    scheduler, venue = TestScheduler(), Responder()
    client = _client(scheduler, MemoryTransport(latency=0.1, responder=venue))
    client.watch("trades.BTC", "trades.ETH").subscribe()
    scheduler.advance_to(2.0)
    three = expect(
        client.messages, "trades.BTC", timeout=5.0, count=3, protocol=client.protocol, scheduler=scheduler
    )
    seen = _outcome(three, scheduler)
    for i, topic in enumerate(["trades.BTC", "trades.ETH", "trades.BTC", "trades.BTC", "trades.BTC"]):
        scheduler.schedule_absolute(2.5 + i, lambda _s, _st, t=topic, n=i: venue.publish(t, n))
    scheduler.advance_to(10.0)
    assert seen == [
        (
            5.6,
            [
                {"topic": "trades.BTC", "seq": 1, "data": 0},
                {"topic": "trades.BTC", "seq": 2, "data": 2},
                {"topic": "trades.BTC", "seq": 3, "data": 3},
            ],
        )
    ]


def test_a_key_with_key_of() -> None:
    scheduler = TestScheduler()
    messages: Subject[dict[str, Any]] = Subject()
    got = expect(messages, 7, key_of=lambda m: m["n"], timeout=1.0, scheduler=scheduler)
    messages.on_next({"n": 6})
    messages.on_next({"n": 7})
    assert _outcome(got, scheduler) == [(0.0, {"n": 7})]


def test_timeout_reports_the_match_and_releases_the_subscription() -> None:
    scheduler = TestScheduler()
    messages: Subject[Any] = Subject()
    never = expect(messages, "nope", key_of=str, timeout=2.0, scheduler=scheduler)
    seen = _outcome(never, scheduler)
    assert len(messages.observers) == 1
    scheduler.advance_to(3.0)
    assert len(seen) == 1 and isinstance(seen[0][1], RequestTimeout) and seen[0][0] == 2.0
    assert "expect 'nope'" in str(seen[0][1])
    assert messages.observers == []


def test_a_predicate_that_raises_fails_the_expectation() -> None:
    scheduler = TestScheduler()
    messages: Subject[Any] = Subject()
    got = expect(messages, lambda m: m["missing"], timeout=2.0, scheduler=scheduler)
    messages.on_next({})
    seen = _outcome(got, scheduler)
    assert isinstance(seen[0][1], KeyError) and messages.observers == []


def test_the_client_closing_first_is_connection_lost() -> None:
    scheduler, venue = TestScheduler(), Responder()
    client = _client(scheduler, MemoryTransport(latency=0.1, responder=venue))
    got = expect(client.messages, lambda m: True, timeout=60.0, count=2, scheduler=scheduler)
    seen = _outcome(got, scheduler)
    client.close()
    scheduler.advance_to(5.0)
    assert [type(e) for _t, e in seen] == [ConnectionLost]
    assert "0 of 2" in str(seen[0][1])


def test_bad_arguments_are_usage_errors() -> None:
    messages: Subject[Any] = Subject()
    with pytest.raises(UsageError, match="timeout"):
        expect(messages, lambda m: True, timeout=0)
    with pytest.raises(UsageError, match="count"):
        expect(messages, lambda m: True, timeout=1, count=0)
    with pytest.raises(UsageError, match="key_of"):
        expect(messages, "a-key", timeout=1)
    assert messages.observers == []


async def test_cancelling_the_awaiting_task_releases_the_subscription() -> None:
    messages: Subject[Any] = Subject()
    got = expect(messages, lambda m: True, timeout=30.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.ensure_future(_wait(got)), 0.01)
    assert messages.observers == []


async def _wait(result: Any) -> Any:
    return await result


async def test_awaited_on_a_loop_it_resolves() -> None:
    messages: Subject[Any] = Subject()
    got = expect(messages, lambda m: m > 1, timeout=5.0)
    asyncio.get_running_loop().call_soon(messages.on_next, 1)
    asyncio.get_running_loop().call_soon(messages.on_next, 2)
    assert await got == 2
