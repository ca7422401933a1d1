"""Issue 11, the client's part: nothing silent, and host code cannot break the client.

Virtual time (TestScheduler + MemoryTransport, latency 0.25 s each way), so every time is exact.
Each test names the defect it pins down; each failed on the code before the fix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest
from harness import URL, Virtual

import rxws.client
from rxws import ConnectionState, ExponentialBackoff, ReconnectPolicy, VenueError, WebSocketClient
from rxws._command import CommandResult
from rxws.events import (
    Connected,
    Disconnected,
    DisconnectReason,
    InternalError,
    LateReply,
    MessageDropped,
    ObserverFailed,
    ReconnectDenied,
    ReconnectProposed,
)
from rxws.exceptions import ConnectionLost, EncodeError, UsageError
from rxws.protocols import GenericJson
from rxws.ratelimit import SlidingWindow, VenueRateLimiter
from rxws.transport.memory import MemoryTransport

S = ConnectionState


def policy(approve: Any = None) -> ReconnectPolicy:
    backoff = ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", stable_after=1000.0)
    return ReconnectPolicy(backoff=backoff) if approve is None else ReconnectPolicy(backoff, approve)


class Fragile(GenericJson):
    """GenericJson whose method ``fail`` raises on a message carrying ``"boom"``."""

    def __init__(self, fail: str) -> None:
        super().__init__()
        self.fail = fail

    def _maybe(self, method: str, message: Any) -> None:
        if self.fail == method and "boom" in json.dumps(message):
            raise ValueError(f"{method} cannot read this")

    def classify(self, message: Any) -> Any:
        self._maybe("classify", message)
        return super().classify(message)

    def sequence(self, message: Any) -> Any:
        self._maybe("sequence", message)
        return super().sequence(message)

    def auto_reply(self, message: Any) -> Any:
        self._maybe("auto_reply", message)
        return super().auto_reply(message)

    def reply_error(self, message: Any) -> VenueError | None:
        self._maybe("reply_error", message)
        return super().reply_error(message)


def session(virtual: Virtual, **kwargs: Any) -> tuple[WebSocketClient, list[Any]]:
    """Connected at 1.25, watching "t" (confirmed by 2.5); run to 3.0."""
    client = virtual.client(**kwargs)
    got: list[Any] = []
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: client.watch("t").subscribe(got.append))
    virtual.run(until=3.0)
    return client, got


def good_data_still_flows(virtual: Virtual, client: WebSocketClient, got: list[Any]) -> None:
    before = len(got)
    virtual.at(virtual.now() + 0.1, lambda: virtual.responder.publish("t", {"ok": True}))
    virtual.run(until=virtual.now() + 1.0)
    assert client.state_value is S.CONNECTED
    assert len(got) == before + 1 and got[-1]["data"] == {"ok": True}


def warnings_with_traceback(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage() and r.exc_info
    ]


# 1. Exceptions on the inbound path are visible ---------------------------------------------------
@pytest.mark.parametrize(
    ("method", "frame"),
    [
        ("classify", {"boom": 1}),
        ("sequence", {"topic": "t", "seq": 99, "data": "boom"}),
        ("auto_reply", {"boom": 1}),
    ],
)
def test_a_dialect_that_raises_is_an_internal_error_and_the_next_frame_is_handled(
    virtual: Virtual, method: str, frame: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, got = session(virtual, protocol=Fragile(method))
    virtual.at(3.5, lambda: virtual.transport.peer.push(frame))
    with caplog.at_level(logging.WARNING, logger="rxws.client"):
        virtual.run(until=4.0)
    tl = virtual.timeline
    assert tl is not None
    errors = tl.of(InternalError)
    assert len(errors) == 1
    assert errors[0].where == f"protocol.{method}" and errors[0].at == 3.75
    assert errors[0].error == f"ValueError: {method} cannot read this"
    assert errors[0].sample == json.dumps(frame, separators=(",", ":"))[:80]
    assert client.stats.internal_errors == 1
    assert len(warnings_with_traceback(caplog, f"protocol.{method}")) == 1
    assert tl.of(Disconnected) == []
    good_data_still_flows(virtual, client, got)


def test_a_reply_the_dialect_cannot_read_fails_its_request_and_the_connection_goes_on(
    virtual: Virtual,
) -> None:
    client, got = session(virtual, protocol=Fragile("reply_error"))
    errors: list[BaseException] = []
    virtual.at(
        3.5, lambda: client.request("echo", {"boom": 1}, timeout=5.0).subscribe(on_error=errors.append)
    )
    virtual.run(until=4.5)
    assert len(errors) == 1 and isinstance(errors[0], VenueError)
    assert "the reply could not be read: ValueError: reply_error cannot read this" in str(errors[0])
    assert client.pending_requests == 0
    tl = virtual.timeline
    assert tl is not None
    assert [(e.where, e.at) for e in tl.of(InternalError)] == [("protocol.reply_error", 4.0)]
    good_data_still_flows(virtual, client, got)


def test_a_failure_in_rxws_own_bookkeeping_closes_with_1011_and_says_so(
    virtual: Virtual, caplog: pytest.LogCaptureFixture
) -> None:
    client, _got = session(virtual, reconnect=policy())
    slow: list[BaseException] = []
    virtual.at(
        3.2, lambda: client.request("sleep", {"seconds": 5}, timeout=10.0).subscribe(on_error=slow.append)
    )

    def broken(topic: Any, message: Any) -> None:
        raise RuntimeError("bookkeeping bug")

    virtual.at(3.4, lambda: setattr(client._inbound, "unrouted", broken))  # rxws's own code now raises
    virtual.at(3.5, lambda: virtual.transport.peer.push({"topic": "nobody", "seq": 1, "data": 1}))
    with caplog.at_level(logging.WARNING, logger="rxws.client"):
        virtual.run(until=3.75)
    tl = virtual.timeline
    assert tl is not None
    assert [(e.where, e.error) for e in tl.of(InternalError)] == [
        ("client.broken", "RuntimeError: bookkeeping bug")
    ]
    peer = virtual.transport.peer
    assert peer.client_close == (1011, "internal error")
    (down,) = tl.of(Disconnected)
    assert (down.reason, down.code, down.at) == (DisconnectReason.INTERNAL_ERROR, 1011, 3.75)
    assert "internal error in client.broken: RuntimeError: bookkeeping bug" in down.detail
    assert len(slow) == 1 and isinstance(slow[0], ConnectionLost)
    assert tl.timed_states[-1] == (3.75, S.ERROR)
    assert len(warnings_with_traceback(caplog, "closing with 1011")) == 1
    del client._inbound.unrouted  # type: ignore[attr-defined]
    virtual.run(until=6.0)  # the approving policy reconnects: a fresh connection, a clean state
    assert [p.attempt for p in tl.of(ReconnectProposed)] == [1]
    assert client.state_value is S.CONNECTED and len(tl.of(Connected)) == 2


# 2. Host observers of the client's streams cannot break it ------------------------------------------
def test_an_events_observer_that_raises_on_disconnected_breaks_nothing(
    virtual: Virtual, caplog: pytest.LogCaptureFixture
) -> None:
    client = virtual.client(reconnect=policy())
    seen_inside: list[tuple[int, ConnectionState]] = []

    def fragile(event: Any) -> None:
        if isinstance(event, Disconnected):
            seen_inside.append((client.pending_requests, client.state_value))
            raise RuntimeError("host bug")

    client.events.subscribe(fragile)
    later: list[tuple[float, str]] = []  # an observer after the one that raises
    client.events.subscribe(lambda e: later.append((e.at, e.kind)))
    slow: list[tuple[float, BaseException]] = []
    virtual.at(1.0, client.connect)
    virtual.at(
        2.0,
        lambda: client.request("sleep", {"seconds": 5}, timeout=10.0).subscribe(
            on_error=lambda e: slow.append((virtual.now(), e))
        ),
    )
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    with caplog.at_level(logging.WARNING, logger="rxws.client"):
        virtual.run(until=20.0)
    tl = virtual.timeline
    assert tl is not None
    # the request ended with the drop, not with its deadline
    assert len(slow) == 1 and slow[0][0] == 3.25 and isinstance(slow[0][1], ConnectionLost)
    # the host's observer ran after the client's own bookkeeping was done
    assert seen_inside == [(0, S.ERROR)]
    (failed,) = tl.of(ObserverFailed)
    assert (failed.stream, failed.error, failed.at) == ("events", "RuntimeError: host bug", 3.25)
    assert client.stats.observer_failures == 1
    assert len(warnings_with_traceback(caplog, "observer of events")) == 1
    # the approving policy was asked and the client reconnected
    assert [(p.attempt, p.at) for p in tl.of(ReconnectProposed)] == [(1, 3.25)]
    assert client.state_value is S.CONNECTED and tl.timed_states[-2:] == [
        (4.25, S.CONNECTING),
        (4.5, S.CONNECTED),
    ]
    at_drop = [k for e, k in zip(tl.events, tl.kinds(), strict=True) if e.at == 3.25]
    assert at_drop == ["disconnected", "observer_failed", "reconnect_proposed"]
    # every observer gets the event before the report about it
    assert [k for t, k in later if t == 3.25] == at_drop


def test_an_events_observer_that_always_raises_does_not_recurse(
    virtual: Virtual, caplog: pytest.LogCaptureFixture
) -> None:
    client = virtual.client()
    calls: list[str] = []

    def always(event: Any) -> None:
        calls.append(event.kind)
        raise RuntimeError("always")

    client.events.subscribe(always)
    done: list[Any] = []
    virtual.at(1.0, lambda: client.connect().subscribe(done.append))
    with caplog.at_level(logging.WARNING, logger="rxws.client"):
        virtual.run(until=2.0)
    assert done == [None] and client.state_value is S.CONNECTED
    # Connected, then the ObserverFailed about it; raising on that one is only logged and counted
    assert calls == ["connected", "observer_failed"]
    tl = virtual.timeline
    assert tl is not None
    assert [e.stream for e in tl.of(ObserverFailed)] == ["events"]
    assert client.stats.observer_failures == 2
    assert len(warnings_with_traceback(caplog, "observer of events")) == 2


def test_a_state_observer_that_raises_does_not_stop_the_connect(virtual: Virtual) -> None:
    client = virtual.client()

    def fragile(state: ConnectionState) -> None:
        if state is S.CONNECTED:
            raise RuntimeError("host bug")

    client.state.subscribe(fragile)
    done: list[Any] = []
    virtual.at(1.0, lambda: client.connect().subscribe(done.append))
    virtual.run(until=2.0)
    assert done == [None] and client.state_value is S.CONNECTED
    tl = virtual.timeline
    assert tl is not None
    assert [(e.stream, e.error, e.at) for e in tl.of(ObserverFailed)] == [
        ("state", "RuntimeError: host bug", 1.25)
    ]
    assert [k for k in tl.kinds() if k == "connected"] == ["connected"]


def test_state_replays_to_a_subscriber_on_another_thread_and_a_raising_replay_is_isolated(
    virtual: Virtual,
) -> None:
    client = virtual.client()
    virtual.at(1.0, client.connect)
    virtual.run(until=2.0)
    seen: list[ConnectionState] = []
    outcome: list[BaseException] = []

    def subscribe_elsewhere() -> None:
        try:
            client.state.subscribe(seen.append)
            client.state.subscribe(lambda _s: 1 / 0)
        except BaseException as exc:  # the old BehaviorSubject let the replay's error escape
            outcome.append(exc)

    thread = threading.Thread(target=subscribe_elsewhere)
    thread.start()
    thread.join(5.0)
    assert not thread.is_alive()
    assert seen == [S.CONNECTED] and outcome == []
    tl = virtual.timeline
    assert tl is not None
    assert [e.stream for e in tl.of(ObserverFailed)] == ["state"]
    virtual.at(2.5, client.close)
    virtual.run(until=4.0)
    assert seen == [S.CONNECTED, S.DISCONNECTING, S.DISCONNECTED]


def test_a_rate_limit_events_observer_that_raises_does_not_fail_the_send(virtual: Virtual) -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(1, 10.0)])  # one frame per 10 s
    client = virtual.client(rate_limiter=limiter)
    client.rate_limit_events.subscribe(lambda _e: 1 / 0)
    outcomes: list[Any] = []
    virtual.at(1.0, client.connect)
    for i in range(2):
        virtual.at(
            2.0,
            lambda i=i: client.send({"op": "note", "n": i}).subscribe(
                on_next=lambda _v: outcomes.append((i, virtual.now())),
                on_error=lambda e: outcomes.append((i, repr(e))),
            ),
        )
    virtual.run(until=20.0)
    assert outcomes == [(0, 2.0), (1, 12.0)]  # the second waited for the budget, as it should
    tl = virtual.timeline
    assert tl is not None
    failures = tl.of(ObserverFailed)
    assert failures and {e.stream for e in failures} == {"rate_limit_events"}
    assert all(e.error.startswith("ZeroDivisionError") for e in failures)


def test_a_request_observer_that_raises_does_not_stop_the_others(
    virtual: Virtual, caplog: pytest.LogCaptureFixture
) -> None:
    client, got = session(virtual)
    values: list[Any] = []

    def ask() -> None:
        result = client.request("echo", {"x": 1}, timeout=5.0)
        result.subscribe(lambda _v: 1 / 0)
        result.subscribe(values.append)

    virtual.at(3.5, ask)
    with caplog.at_level(logging.WARNING, logger="rxws.client"):
        virtual.run(until=4.5)
    assert values == [{"x": 1}]
    assert len(warnings_with_traceback(caplog, "an observer of request echo raised")) == 1
    good_data_still_flows(virtual, client, got)


# 3. A raising approve is a denial --------------------------------------------------------------
def test_an_approve_that_raises_is_a_denial_with_the_reason(
    virtual: Virtual, caplog: pytest.LogCaptureFixture
) -> None:
    def approve(_p: ReconnectProposed) -> bool:
        raise RuntimeError("host bug")

    client = virtual.client(reconnect=policy(approve))
    virtual.at(1.0, client.connect)
    virtual.at(3.0, lambda: virtual.transport.peer.drop())
    with caplog.at_level(logging.WARNING):
        virtual.run(until=20.0)
    tl = virtual.timeline
    assert tl is not None
    assert [(d.attempt, d.why, d.at) for d in tl.of(ReconnectDenied)] == [
        (1, "approve raised RuntimeError: host bug", 3.25)
    ]
    assert tl.kinds()[-3:] == ["disconnected", "reconnect_proposed", "reconnect_denied"]
    assert virtual.transport.attempts == 1 and client.state_value is S.ERROR
    assert len(warnings_with_traceback(caplog, "approve raised RuntimeError: host bug")) == 1


# 4a. A cancelled awaited request is withdrawn ---------------------------------------------------------
async def _settle(condition: Any) -> None:
    for _ in range(20):  # a cancellation takes a few loop iterations to reach the result
        if condition():
            return
        await asyncio.sleep(0)


async def _await(result: CommandResult[Any]) -> Any:
    return await result


@pytest.mark.parametrize("how", ["cancel", "wait_for"])
async def test_a_cancelled_awaited_request_leaves_the_pending_table(virtual: Virtual, how: str) -> None:
    client = virtual.client(max_in_flight=1)
    virtual.at(1.0, client.connect)
    virtual.run(until=2.0)
    peer = virtual.transport.peer
    peer.on_receive = None  # nobody answers
    result = client.request("echo", {"x": 1}, timeout=30.0)
    virtual.run(until=2.25)  # on the wire
    sent_id = json.loads(peer.sent[-1])["id"]
    assert client.pending_requests == 1
    if how == "cancel":
        task = asyncio.ensure_future(_await(result))
        await asyncio.sleep(0)
        task.cancel()
        await _settle(task.done)
        assert task.cancelled()
    else:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(result, 0.01)
    await _settle(lambda: client.pending_requests == 0)
    assert client.pending_requests == 0 and client.stats.requests_cancelled == 1
    # the max_in_flight slot is free again
    again = client.request("echo", {"x": 2}, timeout=30.0)
    assert not again.done and client.pending_requests == 1
    # a reply that still comes for the cancelled one is a late reply, counted
    virtual.at(2.5, lambda: peer.push({"id": sent_id, "result": {"x": 1}}))
    virtual.run(until=3.0)
    tl = virtual.timeline
    assert tl is not None
    assert [e.request_id for e in tl.of(LateReply)] == [sent_id] and client.stats.late_replies == 1


async def test_a_cancelled_queued_request_is_never_sent(virtual: Virtual) -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(1, 10.0)])
    client = virtual.client(rate_limiter=limiter)
    virtual.at(1.0, client.connect)
    virtual.run(until=2.0)
    client.send({"op": "note"})  # uses the budget until 12
    result = client.request("echo", {"x": 1}, timeout=30.0)  # queued behind it
    task = asyncio.ensure_future(_await(result))
    await asyncio.sleep(0)
    task.cancel()
    await _settle(lambda: client.pending_requests == 0)
    assert client.pending_requests == 0
    virtual.run(until=40.0)
    sent = [str(f) for f in virtual.transport.peer.sent]
    assert not any('"echo"' in f for f in sent), "a request whose caller gave up went out"
    tl = virtual.timeline
    assert tl is not None
    reasons = [d.reason for d in tl.of(MessageDropped)]
    assert len(reasons) == 1 and "failed before it was sent" in reasons[0]
    assert client.stats.outbound_dropped == 1 and client.stats.requests_cancelled == 1


# 4b. close() from two threads starts one close ------------------------------------------------------------
def test_close_from_two_threads_at_once_starts_exactly_one_close(
    virtual: Virtual, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = virtual.client()
    closes: list[Any] = []
    real_close = client._close
    monkeypatch.setattr(client, "_close", lambda result: (closes.append(result), real_close(result)))
    # Hold each close() between "no close yet?" and "this is the close" until both threads are
    # there (bounded): the unguarded check-then-set let both through.
    arrived: list[int] = []
    meet = threading.Condition()

    def slow_result(name: str = "command", detail: str = "") -> CommandResult[Any]:
        if name == "close":
            with meet:
                arrived.append(1)
                meet.notify_all()
                meet.wait_for(lambda: len(arrived) >= 2, timeout=1.0)
        return CommandResult(name, detail)

    monkeypatch.setattr(rxws.client, "CommandResult", slow_result)
    results: list[Any] = [None, None]

    def call(i: int) -> None:
        results[i] = client.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    assert results[0] is results[1] and results[0] is not None
    assert len(closes) == 1
    assert results[0].done and client.state_value is S.DISCONNECTED


# 4c. connect() with no loop and no scheduler says so -------------------------------------------------------
def test_connect_without_a_loop_or_scheduler_is_a_clear_usage_error(caplog: pytest.LogCaptureFixture) -> None:
    client = WebSocketClient(URL, protocol=GenericJson(), transport=MemoryTransport())
    with caplog.at_level(logging.WARNING, logger="rxws.client"):
        result = client.connect()
    errors: list[BaseException] = []
    result.subscribe(on_error=errors.append)
    assert len(errors) == 1 and isinstance(errors[0], UsageError)
    assert "no running asyncio loop" in str(errors[0]) and "scheduler=" in str(errors[0])
    assert [r.levelno for r in caplog.records if "connect()" in r.getMessage()] == [logging.WARNING]

    async def main() -> None:
        with pytest.raises(UsageError, match="no running asyncio loop"):
            await result
        await client.close()  # an earlier close() without a loop must not block this one

    with caplog.at_level(logging.WARNING, logger="rxws.client"):
        first_close = client.close()
    assert isinstance(first_close._error, UsageError)
    asyncio.run(main())
    assert client.state_value is S.DISCONNECTED


# 4d. An unencodable param is a typed error -------------------------------------------------------------------
@pytest.mark.parametrize("encoder", ["installed", "stdlib"])
def test_an_unencodable_param_fails_the_command_with_encode_error(
    virtual: Virtual, encoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if encoder == "stdlib":
        stdlib = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
        monkeypatch.setattr("rxws.protocols.base.json_dumps", stdlib.encode)
    client, got = session(virtual)
    errors: list[BaseException] = []
    virtual.at(3.5, lambda: client.request("echo", {"when": {1, 2}}).subscribe(on_error=errors.append))
    virtual.at(3.5, lambda: client.send({"op": "x", "p": object()}).subscribe(on_error=errors.append))
    virtual.run(until=4.0)
    assert [type(e) for e in errors] == [EncodeError, EncodeError]
    assert isinstance(errors[0], UsageError) and isinstance(errors[0], TypeError)
    assert "set" in str(errors[0]) and "object" in str(errors[1])
    assert client.pending_requests == 0
    good_data_still_flows(virtual, client, got)


def test_connecting_again_from_the_failed_connects_own_error_callback_works(virtual: Virtual) -> None:
    """The failed attempt is settled before its waiters hear of it, so a host that retries at once
    (inside the callback) gets a clean new attempt, not one ended by the old attempt's error."""
    client = virtual.client()
    virtual.transport.refuse(1)
    outcome: list[Any] = []

    def retry(_error: Exception) -> None:
        client.connect().subscribe(lambda _v: outcome.append(("connected", virtual.now())), outcome.append)

    virtual.at(1.0, lambda: client.connect().subscribe(on_error=retry))
    virtual.run(until=5.0)
    assert outcome == [("connected", 1.5)]  # refused at 1.25, asked again at once, open at 1.5
    assert client.state_value is S.CONNECTED and virtual.transport.attempts == 2
    tl = virtual.timeline
    assert tl is not None
    # state observers see every state once, in order, ERROR included
    assert tl.timed_states == [
        (0.0, S.DISCONNECTED),
        (1.0, S.CONNECTING),
        (1.25, S.ERROR),
        (1.25, S.CONNECTING),
        (1.5, S.CONNECTED),
    ]


def test_a_raising_rate_observer_of_one_client_cannot_break_another_sharing_its_limiter(
    virtual: Virtual,
) -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(100, 1.0)])
    a = virtual.client(rate_limiter=limiter, name="a")
    a_events: list[Any] = []
    a.events.subscribe(a_events.append)
    a.rate_limit_events.subscribe(lambda _e: 1 / 0)  # hears the shared limiter's events
    b = virtual.client(rate_limiter=limiter, name="b")
    b_events: list[Any] = []
    b.events.subscribe(b_events.append)
    virtual.at(1.0, a.connect)
    virtual.at(1.1, b.connect)
    virtual.at(3.0, lambda: virtual.transport.peers[1].close(1008, "too many"))  # b's venue: a violation
    virtual.run(until=5.0)
    # b handled its drop in full: the violation reached the limiter, the drop was reported
    (down,) = [e for e in b_events if isinstance(e, Disconnected)]
    assert (down.reason, down.code, down.at) == (DisconnectReason.RATE_LIMITED, 1008, 3.25)
    assert b.conn_id is not None and b.conn_id != a.conn_id  # one limiter, two connections
    assert limiter.penalty_remaining(b.conn_id, 3.25) > 0
    # a's raising observer was isolated and reported on a's own events
    failures = [e for e in a_events if isinstance(e, ObserverFailed)]
    assert failures and {e.stream for e in failures} == {"rate_limit_events"}
    assert a.stats.observer_failures == len(failures) and b.stats.observer_failures == 0
    assert a.state_value is S.CONNECTED
