"""Marble tests of one WebSocketClient session in virtual time (TestScheduler + MemoryTransport).

The transport's latency is 0.25 s each way (exact in binary floating point), so every time below
is exact: a command at ``t`` reaches the peer at ``t + 0.25`` and its answer is back at ``t + 0.5``.
"""

from __future__ import annotations

from typing import Any

import pytest

from rxws import ConnectionState, NotConnected, RequestTimeout, VenueError
from rxws.events import (
    Connected,
    DecodeFailed,
    Disconnected,
    DisconnectReason,
    LateReply,
    SubscriptionChanged,
)
from rxws.exceptions import ConnectFailed, ConnectionLost, HeartbeatTimeout, MessageTooBig

S = ConnectionState


class Outcome:
    """Records what one command result did, with the virtual time of each notification."""

    def __init__(self, virtual: Any, result: Any) -> None:
        self.values: list[tuple[float, Any]] = []
        self.error: BaseException | None = None
        self.error_at: float | None = None
        self.completed_at: float | None = None
        now = virtual.now

        def on_error(exc: BaseException) -> None:
            self.error, self.error_at = exc, now()

        def on_completed() -> None:
            self.completed_at = now()

        result.subscribe(lambda v: self.values.append((now(), v)), on_error, on_completed)


def command(virtual: Any, at: float, make: Any) -> list[Outcome]:
    """Call ``make()`` at virtual time ``at``; the returned list holds its Outcome once called."""
    box: list[Outcome] = []
    virtual.at(at, lambda: box.append(Outcome(virtual, make())))
    return box


def test_basic_session_state_and_event_timeline(virtual: Any) -> None:
    client = virtual.client()
    ticks: list[tuple[float, Any]] = []
    connect = command(virtual, 1.0, client.connect)
    virtual.at(2.0, lambda: client.watch("trades.BTC").subscribe(lambda m: ticks.append((virtual.now(), m))))
    virtual.at(3.0, lambda: virtual.responder.publish("trades.BTC", {"px": 1}))
    virtual.at(4.0, lambda: virtual.responder.publish("trades.BTC", {"px": 2}))
    close = command(virtual, 5.0, client.close)
    virtual.run(20.0)

    tl = virtual.timeline
    assert tl.timed_states == [
        (0.0, S.DISCONNECTED),
        (1.0, S.CONNECTING),
        (1.25, S.CONNECTED),
        (5.0, S.DISCONNECTING),
        (5.25, S.DISCONNECTED),
    ]
    assert [(e.at, e.kind) for e in tl.events] == [
        (1.25, "connected"),
        (2.0, "subscription_changed"),
        (2.5, "subscription_changed"),
        (5.25, "disconnected"),
    ]
    assert [e.state for e in tl.of(SubscriptionChanged)] == ["DESIRED", "CONFIRMED"]
    assert tl.of(Connected)[0].attempt == 1
    assert tl.of(Disconnected) == [
        Disconnected(at=5.25, reason=DisconnectReason.USER, code=1000, detail="closed by the host")
    ]
    assert ticks == [
        (3.25, {"topic": "trades.BTC", "seq": 1, "data": {"px": 1}}),
        (4.25, {"topic": "trades.BTC", "seq": 2, "data": {"px": 2}}),
    ]
    assert connect[0].values == [(1.25, None)] and connect[0].completed_at == 1.25
    assert close[0].values == [(5.25, None)]  # the peer's close frame is back after one latency
    # close() sent a close frame with 1000 and every stream completed
    assert virtual.transport.peer.client_close == (1000, "")
    assert sorted(tl.completed) == ["events", "state"]
    assert client.state_value is S.DISCONNECTED


def test_close_is_idempotent_completes_streams_and_leaves_nothing_scheduled(virtual: Any) -> None:
    client = virtual.client()
    watched: list[str] = []
    virtual.at(1.0, client.connect)
    virtual.at(
        2.0,
        lambda: client.watch("a").subscribe(
            on_completed=lambda: watched.append("completed"), on_error=lambda e: watched.append(repr(e))
        ),
    )
    messages_done: list[bool] = []
    virtual.at(2.0, lambda: client.messages.subscribe(on_completed=lambda: messages_done.append(True)))
    first: list[Any] = []
    virtual.at(3.0, lambda: first.append(client.close()))
    virtual.at(3.1, lambda: first.append(client.close()))
    virtual.run(4.0)
    assert first[0] is first[1] and first[0].done
    assert watched == ["completed"]
    assert messages_done == [True]
    assert virtual.timeline.completed and set(virtual.timeline.completed) == {"state", "events"}
    assert client.state_value is S.DISCONNECTED
    # a third close after the end completes at once
    late = Outcome(virtual, client.close())
    assert late.values == [(4.0, None)]
    # nothing left on the scheduler: no timers, no flushes
    assert not [item for item, _ in virtual.scheduler._queue.items if not item.is_cancelled()]


def test_close_before_connect_completes_streams(virtual: Any) -> None:
    client = virtual.client()
    done = command(virtual, 1.0, client.close)
    virtual.run(2.0)
    assert done[0].values == [(1.0, None)]
    assert client.state_value is S.DISCONNECTED
    assert set(virtual.timeline.completed) == {"state", "events"}
    assert virtual.transport.attempts == 0


def test_close_when_the_peer_never_answers_finishes_after_close_timeout(virtual: Any) -> None:
    client = virtual.client(close_timeout=3.0)
    virtual.at(1.0, client.connect)

    def silent_close() -> None:
        virtual.transport.peer.answer_close = False

    virtual.at(1.5, silent_close)
    close = command(virtual, 2.0, client.close)
    virtual.run(10.0)
    assert close[0].values == [(5.0, None)]
    assert virtual.timeline.timed_states[-2:] == [(2.0, S.DISCONNECTING), (5.0, S.DISCONNECTED)]
    assert virtual.transport.peer.client_close == (1000, "")
    assert not virtual.transport.peer.open  # aborted


def test_send_before_connect_and_after_close_raise_not_connected(virtual: Any) -> None:
    client = virtual.client()
    before = command(virtual, 1.0, lambda: client.send({"op": "note"}))
    virtual.at(2.0, client.connect)
    virtual.at(3.0, client.close)
    after = command(virtual, 4.0, lambda: client.send({"op": "note"}))
    request_after = command(virtual, 4.0, lambda: client.request("echo", {}))
    virtual.run(5.0)
    assert isinstance(before[0].error, NotConnected) and before[0].error_at == 1.0
    assert isinstance(after[0].error, NotConnected)
    assert isinstance(request_after[0].error, NotConnected)


def test_send_writes_the_encoded_message(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    sent = command(virtual, 2.0, lambda: client.send({"op": "note", "n": 1}))
    virtual.run(3.0)
    assert sent[0].values == [(2.0, None)]
    assert virtual.transport.peer.sent == ['{"op":"note","n":1}']


def test_refused_connection_ends_in_error_with_a_disconnected_event(virtual: Any) -> None:
    client = virtual.client()
    virtual.transport.refuse(1)
    connect = command(virtual, 1.0, client.connect)
    virtual.run(5.0)
    assert isinstance(connect[0].error, ConnectFailed) and connect[0].error_at == 1.25
    assert virtual.timeline.timed_states == [(0.0, S.DISCONNECTED), (1.0, S.CONNECTING), (1.25, S.ERROR)]
    (event,) = virtual.timeline.of(Disconnected)
    assert event.reason is DisconnectReason.NETWORK_ERROR and "refused" in event.detail
    assert virtual.transport.attempts == 1


def test_undecodable_frames_yield_decode_failed_and_the_stream_goes_on(virtual: Any) -> None:
    client = virtual.client()
    ticks: list[Any] = []
    virtual.at(1.0, client.connect)
    virtual.at(1.5, lambda: client.watch("a").subscribe(ticks.append))
    virtual.at(3.0, lambda: virtual.transport.peer.push("not json {"))
    virtual.at(4.0, lambda: virtual.transport.peer.push(b"\xff\xfe\x80"))
    virtual.at(5.0, lambda: virtual.responder.publish("a", 1))
    virtual.run(6.0)
    failures = virtual.timeline.of(DecodeFailed)
    assert [(e.at, e.sample) for e in failures] == [(3.25, "not json {"), (4.25, repr(b"\xff\xfe\x80"))]
    assert ticks == [{"topic": "a", "seq": 1, "data": 1}]
    assert client.state_value is S.CONNECTED
    assert client.stats.decode_failures == 2


def test_frame_over_max_size_is_a_1009_protocol_error(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: virtual.transport.peer.fail(MessageTooBig("inbound message over max_size")))
    virtual.run(3.0)
    (event,) = virtual.timeline.of(Disconnected)
    assert (event.at, event.reason, event.code) == (2.25, DisconnectReason.PROTOCOL_ERROR, 1009)
    assert client.state_value is S.ERROR


def test_heartbeat_timeout_is_reported(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: virtual.transport.peer.fail(HeartbeatTimeout("no pong")))
    virtual.run(3.0)
    (event,) = virtual.timeline.of(Disconnected)
    assert (event.reason, event.code) == (DisconnectReason.HEARTBEAT_TIMEOUT, 1011)


@pytest.mark.parametrize(
    ("code", "state", "reason"),
    [
        (1000, S.DISCONNECTED, DisconnectReason.REMOTE_CLOSED),
        (1001, S.DISCONNECTED, DisconnectReason.REMOTE_CLOSED),
        (1011, S.ERROR, DisconnectReason.REMOTE_CLOSED),
        (4000, S.ERROR, DisconnectReason.REMOTE_CLOSED),
        (1008, S.ERROR, DisconnectReason.RATE_LIMITED),
    ],
)
def test_peer_close_is_reported_with_its_code(
    virtual: Any, code: int, state: ConnectionState, reason: DisconnectReason
) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: virtual.transport.peer.close(code, "bye"))
    virtual.run(3.0)
    (event,) = virtual.timeline.of(Disconnected)
    assert (event.at, event.reason, event.code, event.detail) == (2.25, reason, code, "bye")
    assert virtual.timeline.timed_states[-1] == (2.25, state)


def test_connect_again_after_a_drop_without_policy(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: virtual.transport.peer.drop())
    again = command(virtual, 10.0, client.connect)
    virtual.run(20.0)
    assert again[0].values == [(10.25, None)]
    assert [s for _, s in virtual.timeline.timed_states] == [
        S.DISCONNECTED, S.CONNECTING, S.CONNECTED, S.ERROR, S.CONNECTING, S.CONNECTED,
    ]  # fmt: skip
    assert virtual.transport.attempts == 2


# Request / response correlation -----------------------------------------------------------------


def test_request_echo_is_matched_by_id(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    first = command(virtual, 2.0, lambda: client.request("echo", {"x": 1}, timeout=5.0))
    second = command(virtual, 2.0, lambda: client.request("echo", {"x": 2}, timeout=5.0))
    virtual.run(3.0)
    assert first[0].values == [(2.5, {"x": 1})]
    assert second[0].values == [(2.5, {"x": 2})]
    assert client.pending_requests == 0


def test_request_error_reply_is_a_venue_error(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    failed = command(
        virtual, 2.0, lambda: client.request("fail", {"code": 42, "message": "nope"}, timeout=5.0)
    )
    virtual.run(3.0)
    error = failed[0].error
    assert isinstance(error, VenueError) and (error.code, error.message) == (42, "nope")
    assert failed[0].error_at == 2.5


def test_request_timeout_then_late_reply_is_an_event(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    slow = command(virtual, 2.0, lambda: client.request("sleep", {"seconds": 3}, timeout=1.0))
    virtual.run(10.0)
    error = slow[0].error
    assert isinstance(error, RequestTimeout) and slow[0].error_at == 3.0
    assert error.timeout == 1.0
    (late,) = virtual.timeline.of(LateReply)
    # sent at 2.0, at the venue at 2.25, answered at 5.25, back at 5.5
    assert late.at == 5.5 and late.request_id == error.request_id
    assert "timed out" in late.why
    assert client.stats.late_replies == 1


def test_drop_with_requests_in_flight_fails_them_with_connection_lost(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    slow = [
        command(virtual, 2.0, lambda: client.request("sleep", {"seconds": 5}, timeout=10.0)) for _ in "ab"
    ]
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    virtual.run(20.0)
    for box in slow:
        assert isinstance(box[0].error, ConnectionLost) and box[0].error_at == 3.25
    assert client.pending_requests == 0
    assert virtual.timeline.of(LateReply) == []  # the replies died with the connection


def test_close_fails_requests_in_flight(virtual: Any) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    slow = command(virtual, 2.0, lambda: client.request("sleep", {"seconds": 5}, timeout=10.0))
    virtual.at(3.0, client.close)
    virtual.run(20.0)
    assert isinstance(slow[0].error, ConnectionLost) and slow[0].error_at == 3.25
