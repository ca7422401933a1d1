"""Property: whatever the host does — watch, dispose, pin, unpin — and however the connection
drops and comes back, once the client is settled the venue's subscriptions are exactly the topics
with live observers (or pins). Virtual time; operations land at arbitrary times, many within one
tick or while (un)subscribes and reconnections are in flight."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

from rxws import ConnectionState, ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.protocols import GenericJson
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport

TOPICS = "abc"

# weighted towards watch/dispose, so races on one topic are common; drops and closes are rarer
KIND = st.sampled_from(["watch"] * 4 + ["dispose"] * 4 + ["pin", "unpin", "drop", "close_1001"])
OP = st.tuples(KIND, st.lists(st.sampled_from(TOPICS), min_size=1, max_size=2), st.integers(0, 20))
# gaps between operations: 0 puts two in one tick; 0.1..0.4 lands inside a 0.25 s-latency round trip
STEP = st.sampled_from([0.0, 0.0, 0.1, 0.2, 0.3, 0.4, 1.0, 2.5])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(STEP, OP), max_size=25), st.integers(1, 3))
def test_venue_set_equals_the_wanted_set_once_settled(
    steps: list[tuple[float, Any]], per_message: int
) -> None:
    scheduler = TestScheduler()
    responder = Responder()
    transport = MemoryTransport(latency=0.25, responder=responder)
    client = WebSocketClient(
        "ws://venue.test/ws",
        protocol=GenericJson(max_topics_per_message=per_message),
        transport=transport,
        scheduler=scheduler,
        ping_interval=None,
        reconnect=ReconnectPolicy(backoff=ExponentialBackoff(0.5, 2.0, 2.0, jitter="none")),
    )
    live: list[tuple[tuple[str, ...], Any]] = []
    pins: set[str] = set()

    def run(op: str, topics: list[str], index: int) -> None:
        if op == "watch":
            live.append((tuple(topics), client.watch(*topics).subscribe()))
        elif op == "dispose" and live:
            _, sub = live.pop(index % len(live))
            sub.dispose()
        elif op == "pin":
            client.subscriptions.pin(topics[0])
            pins.add(topics[0])
        elif op == "unpin":
            client.subscriptions.unpin(topics[0])
            pins.discard(topics[0])
        elif op == "drop" and transport.peers and transport.peer.open:
            transport.peer.drop()
        elif op == "close_1001" and transport.peers and transport.peer.open:
            transport.peer.close(1001, "going away")

    scheduler.schedule_absolute(1.0, lambda *_: client.connect())
    at = 1.0
    for step, (op, topics, index) in steps:
        at += step
        scheduler.schedule_absolute(at, lambda _s, _st, o=op, t=topics, i=index: run(o, t, i))
    scheduler.advance_to(at + 60.0)

    assert client.state_value is ConnectionState.CONNECTED
    wanted = {t for topics, _ in live for t in topics} | pins
    assert set(responder.topics()) == wanted
    assert set(client.subscriptions.topics) == wanted
    assert set(client.subscriptions.states()) == wanted
    assert all(str(s) == "CONFIRMED" for s in client.subscriptions.states().values())
