"""Session (rxws/_session.py): open steps and exchange, in virtual time over MemoryTransport."""

from __future__ import annotations

import json
from typing import Any

import reactivex
from harness import Virtual
from reactivex import Observable
from reactivex import operators as ops

from rxws import ConnectionState, VenueError
from rxws._session import Session
from rxws.events import Connected, Disconnected

S = ConnectionState


def _echo(session: Session, key: int, params: Any, log: list[Any]) -> Observable[Any]:
    frame = json.dumps({"op": "echo", "id": key, "params": params})
    return session.exchange(frame, key, 2.0).pipe(ops.do_action(log.append))


def test_open_steps_run_in_order_on_the_link_before_the_session_serves(virtual: Virtual) -> None:
    replies: list[Any] = []
    order: list[str] = []

    def login(session: Session) -> Observable[Any]:
        order.append(f"login on {session.conn_id}")
        return _echo(session, 9001, {"login": True}, replies).pipe(ops.ignore_elements())

    def second(session: Session) -> Observable[Any]:
        order.append("second")
        return _echo(session, 9002, {"step": 2}, replies).pipe(ops.ignore_elements())

    client = virtual.client(open_steps=[login, second])
    got: list[Any] = []
    client.watch("trades.BTC").subscribe(got.append)  # queued before connect: subscribed after the steps
    virtual.at(1.0, client.connect)
    virtual.run(until=1.9)
    # link open at 1.25; each exchange is one round trip of 0.5 s: the steps end at 2.25
    assert order == [f"login on {client.conn_id}", "second"]
    assert client.conn_id is not None and client.conn_id.startswith(f"{client.name}#")
    assert replies == [{"id": 9001, "result": {"login": True}}]
    assert client.state_value is S.CONNECTING
    assert virtual.responder.topics() == []  # nothing subscribed while the steps run
    virtual.run(until=3.0)
    assert replies[1] == {"id": 9002, "result": {"step": 2}}
    tl = virtual.timeline
    assert tl is not None
    (connected,) = tl.of(Connected)
    assert connected.at == 2.25 and client.state_value is S.CONNECTED
    assert virtual.responder.topics() == ["trades.BTC"]


def test_a_failing_open_step_fails_that_opening_with_its_error(virtual: Virtual) -> None:
    def refused(session: Session) -> Observable[Any]:
        frame = json.dumps({"op": "fail", "id": 7, "params": {"code": 401, "message": "bad key"}})
        return session.exchange(frame, 7, 2.0).pipe(
            ops.flat_map(lambda reply: reactivex.throw(VenueError(reply["error"]["code"], "login refused")))
        )

    client = virtual.client(open_steps=[refused])
    outcome: list[Any] = []
    virtual.at(1.0, lambda: client.connect().subscribe(on_error=outcome.append))
    virtual.run(until=3.0)
    assert len(outcome) == 1 and isinstance(outcome[0], VenueError) and outcome[0].code == 401
    assert client.state_value is S.ERROR
    tl = virtual.timeline
    assert tl is not None
    assert not tl.of(Connected)
    (down,) = tl.of(Disconnected)
    assert down.at == 1.75 and "login refused" in down.detail
    assert virtual.transport.peer.client_close == (1000, "open step failed")


def test_exchange_on_a_serving_session_returns_the_whole_reply(virtual: Virtual) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    virtual.run(until=2.0)
    session = client._session
    assert session is not None and session.serving
    replies: list[Any] = []
    errors: list[Any] = []
    virtual.at(
        2.0,
        lambda: session.exchange(json.dumps({"op": "echo", "id": "k1", "params": [1]}), "k1", 1.0).subscribe(
            replies.append
        ),
    )
    virtual.at(
        2.0,
        lambda: session.exchange(
            json.dumps({"op": "sleep", "id": "k2", "params": {"seconds": 5}}), "k2", 1.0
        ).subscribe(on_error=errors.append),
    )
    virtual.run(until=4.0)
    assert replies == [{"id": "k1", "result": [1]}]
    assert len(errors) == 1 and type(errors[0]).__name__ == "RequestTimeout"
    assert client.pending_requests == 0
