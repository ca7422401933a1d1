"""rxws.metrics._collect: what is counted from a client's streams, the hook, and the bounds."""

from __future__ import annotations

from typing import Any

import pytest
from fake_client import FakeClient, HookedClient

from rxws import ConnectionState
from rxws.events import Disconnected, DisconnectReason, GapDetected, MessageDropped, Reconnected
from rxws.exceptions import UsageError
from rxws.metrics import OTHER, LabelCap
from rxws.metrics._collect import MetricsCore
from rxws.ratelimit import Action, SlidingWindow, VenueRateLimiter
from rxws.ratelimit.events import Queued, Rejected, Throttled


def samples(core: MetricsCore) -> dict[tuple[str, tuple[str, ...]], Any]:
    return {(s.name, labels): value for s, labels, value in core.collect()}


def data(topic: str, seq: int) -> dict[str, Any]:
    return {"topic": topic, "seq": seq, "data": {}}


def test_label_cap_keeps_the_first_values_and_folds_the_rest() -> None:
    cap = LabelCap(2)
    assert [cap(v) for v in ("a", "b", "c", "a", "d", "b")] == ["a", "b", OTHER, "a", OTHER, "b"]
    with pytest.raises(UsageError):
        LabelCap(-1)


def test_data_messages_are_counted_per_topic_from_the_public_stream() -> None:
    core = MetricsCore(max_topics=2)
    client = FakeClient("c1")
    core.attach(client)
    for i, topic in enumerate(["t1", "t2", "t1", "t3", "t4", "t1"]):
        client.messages.on_next(data(topic, i))
    client.messages.on_next({"id": 7, "result": None})  # a reply: not a data message
    got = samples(core)
    assert got[("rxws_messages", ("c1", "generic", "t1"))] == 3
    assert got[("rxws_messages", ("c1", "generic", "t2"))] == 1
    assert got[("rxws_messages", ("c1", "generic", OTHER))] == 2  # t3 and t4: past the cap of 2
    assert sum(v for (n, _), v in got.items() if n == "rxws_messages") == 6
    assert not [k for k in got if k[0] in ("rxws_inbound_bytes", "rxws_venue_latency_seconds")]


def test_events_become_counters() -> None:
    core = MetricsCore()
    client = FakeClient("c1")
    core.attach(client)
    for event in (
        GapDetected(topic="t1", gap="sequence", last_seq=1, next_seq=3),
        GapDetected(topic="t1", gap="disconnect"),
        GapDetected(topic="t2", gap="disconnect"),
        Disconnected(reason=DisconnectReason.NETWORK_ERROR),
        Reconnected(attempt=1, downtime=0.25),
        Disconnected(reason=DisconnectReason.REMOTE_CLOSED, code=1001),
        Reconnected(attempt=1, downtime=1.5),
        MessageDropped(reason="outbound queue full", count=3),
    ):
        client.events.on_next(event)
    got = samples(core)
    base = ("c1", "generic")
    assert got[("rxws_gaps", (*base, "t1", "sequence"))] == 1
    assert got[("rxws_gaps", (*base, "t1", "disconnect"))] == 1
    assert got[("rxws_gaps", (*base, "t2", "disconnect"))] == 1
    assert got[("rxws_disconnects", (*base, "NETWORK_ERROR"))] == 1
    assert got[("rxws_disconnects", (*base, "REMOTE_CLOSED"))] == 1
    assert got[("rxws_reconnects", base)] == 2
    assert got[("rxws_downtime_seconds", base)] == pytest.approx(1.75)
    assert got[("rxws_messages_dropped", (*base, "outbound queue full"))] == 3


def test_client_counters_and_gauges_are_read_when_collected() -> None:
    core = MetricsCore()
    client = FakeClient("c1")
    core.attach(client)
    client.stats.frames_in, client.stats.frames_out, client.stats.decode_failures = 40, 12, 2
    client.stats.unrouted, client.stats.late_replies = 5, 1
    client.state_value, client.pending_requests = ConnectionState.CONNECTED, 3
    client.rate_limit_events.on_next(Queued(conn_id="c1#1", depth=8))  # not a gauge: read from the client
    got = samples(core)
    base = ("c1", "generic")
    assert got[("rxws_frames", (*base, "in"))] == 40
    assert got[("rxws_frames", (*base, "out"))] == 12
    assert got[("rxws_decode_failures", base)] == 2
    assert got[("rxws_undelivered", (*base, "unrouted"))] == 5
    assert got[("rxws_undelivered", (*base, "late_replies"))] == 1
    assert got[("rxws_connected", base)] == 1
    assert got[("rxws_pending_requests", base)] == 3
    assert ("rxws_outbound_queue_depth", base) not in got  # this client cannot say its queue depth
    client.stats.frames_in, client.state_value = 41, ConnectionState.ERROR
    got = samples(core)
    assert got[("rxws_frames", (*base, "in"))] == 41
    assert got[("rxws_connected", base)] == 0


def test_throttles_and_rejections() -> None:
    core = MetricsCore()
    client = FakeClient("c1")
    core.attach(client)
    for delay in (0.02, 0.3, 0.3):
        client.rate_limit_events.on_next(Throttled(action=Action.MESSAGE, conn_id="c1#1", delay=delay))
    client.rate_limit_events.on_next(Rejected(action=Action.CONNECT, why="connections", retry_after=1.0))
    got = samples(core)
    buckets, total, count = got[("rxws_limiter_wait_seconds", ("c1", "generic", "message"))]
    assert (count, total) == (3, pytest.approx(0.62))
    assert buckets[0] == 0 and buckets[1] == 1 and buckets[-1] == 3  # 0.02 <= 0.05; all <= +Inf
    assert got[("rxws_rate_limit_rejections", ("c1", "generic", "connect", "connections"))] == 1


def test_a_shared_limiter_event_is_counted_once_under_the_client_it_names() -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(1, 10.0)])
    core = MetricsCore()
    first, second = FakeClient("a"), FakeClient("b")
    for client in (first, second):  # what WebSocketClient does with its limiter
        limiter.add_listener(client.rate_limit_events.on_next)
        core.attach(client)
    limiter.report_violation("b#1", "too_many", now=100.0)
    got = samples(core)
    assert got[("rxws_violations", ("b", "generic", "too_many"))] == 1
    assert ("rxws_violations", ("a", "generic", "too_many")) not in got
    penalties = {k: v for k, v in got.items() if k[0] == "rxws_penalties"}
    assert list(penalties.values()) == [1]  # one PenaltyStarted, told to both clients, counted once
    seconds = [v for k, v in got.items() if k[0] == "rxws_penalty_seconds"]
    assert seconds == [pytest.approx(1.0)]  # PenaltyPolicy().initial


def test_the_hook_counts_bytes_and_latency_and_replaces_the_message_stream() -> None:
    from rxws.protocols import Binance

    now = 1_700_000_000.250
    core = MetricsCore(clock=lambda: now)
    client = HookedClient("h", Binance())
    disposable = core.attach(client)
    assert len(client.sinks) == 1
    trade = '{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000000,"s":"BTCUSDT","t":1}}'
    ack = '{"result":null,"id":1}'
    for frame in (trade, trade, ack):
        client.frame(frame)
    got = samples(core)
    base = ("h", "binance")
    assert got[("rxws_messages", (*base, "btcusdt@trade"))] == 2  # once each, not twice
    assert got[("rxws_inbound_bytes", (*base, "btcusdt@trade"))] == 2 * len(trade)
    assert got[("rxws_inbound_bytes", (*base, "(no topic)"))] == len(ack)
    _, total, count = got[("rxws_venue_latency_seconds", (*base, "btcusdt@trade"))]
    assert count == 2 and total == pytest.approx(0.5)
    client.outbound_queue_depth = 5
    assert samples(core)[("rxws_outbound_queue_depth", base)] == 5
    disposable.dispose()
    assert client.sinks == []
    assert samples(core) == {}  # a detached client's series are gone


def test_request_round_trips_from_the_sink() -> None:
    core = MetricsCore()
    client = HookedClient("h")
    core.attach(client)
    sink = core.sink(client)
    for seconds, outcome in ((0.004, "ok"), (0.02, "ok"), (2.0, "timeout")):
        sink.on_request_done("echo", seconds, outcome)
    got = samples(core)
    _, total, count = got[("rxws_request_duration_seconds", ("h", "generic", "echo", "ok"))]
    assert (count, total) == (2, pytest.approx(0.024))
    assert got[("rxws_request_duration_seconds", ("h", "generic", "echo", "timeout"))][2] == 1


def test_labels_must_be_unique_and_sinks_belong_to_attached_clients() -> None:
    core = MetricsCore()
    core.attach(FakeClient("same"))
    with pytest.raises(UsageError, match="label="):
        core.attach(FakeClient("same"))
    core.attach(FakeClient("same"), label="same-2")
    assert core.clients == ["same", "same-2"]
    with pytest.raises(UsageError, match="not attached"):
        core.sink(FakeClient("other"))
    with pytest.raises(UsageError):
        MetricsCore(max_topics=-1)


def test_listeners_see_every_histogram_observation() -> None:
    core = MetricsCore()
    seen: list[tuple[str, tuple[str, ...], float]] = []
    core.listeners.append(lambda series, labels, value: seen.append((series.name, labels, value)))
    client = FakeClient("c")
    core.attach(client)
    client.rate_limit_events.on_next(Throttled(action=Action.SUBSCRIBE, conn_id="c#1", delay=0.5))
    assert seen == [("rxws_limiter_wait_seconds", ("c", "generic", "subscribe"), 0.5)]
