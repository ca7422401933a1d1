"""A live run for the exporter tests (not a test module): two clients against one MockVenue.

Client ``a`` watches two topics, gets a sequence gap and a frame that is not JSON, sends eight
requests through a limiter that lets 3 pass per 0.3 s (so some wait: ``Throttled``), leaves a slow
request pending, then loses its connection and reconnects. Client ``b`` watches one topic. While
the real client does not call the instrumentation hook, the test plays that part for request
round trips (once it does, the test leaves it to the client). :func:`check_first` and
:func:`check_second` compare what an exporter reports (as :class:`Readings`) with the clients'
own counters and what the host saw.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from rxws import ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.events import GapDetected, Reconnected, SubscriptionsRestored
from rxws.exceptions import ConnectionLost
from rxws.metrics import ClientInstrumentation
from rxws.protocols import GenericJson
from rxws.ratelimit import SlidingWindow, VenueRateLimiter
from rxws.ratelimit.events import Throttled
from rxws.testing import MockVenue

TOPICS = ("trades.BTC", "book.ETH")
PER_TOPIC = 6
REQUESTS = 8

Key = tuple[str, frozenset[tuple[str, str]]]


class Readings:
    """Samples by Prometheus name (``_total``, ``_count``, ``_sum``) and labels."""

    def __init__(self, values: dict[Key, float]) -> None:
        self.values = values

    def get(self, name: str, **labels: str) -> float | None:
        return self.values.get((name, frozenset(labels.items())))

    def __call__(self, name: str, **labels: str) -> float:
        value = self.get(name, **labels)
        assert value is not None, f"no sample {name}{labels}; have {sorted({n for n, _ in self.values})}"
        return value

    def names(self) -> set[str]:
        return {n for n, _ in self.values}


class _Unwired:
    """Where the client calls the hook itself, the test does not play it too."""

    def on_message(self, topic: str | None, nbytes: int, message: Any) -> None:
        raise AssertionError("the live run never plays on_message")

    def on_request_done(self, method: str, seconds: float, outcome: str) -> None:
        pass


class LiveRun:
    """Two clients on one venue and one shared limiter; what each host saw."""

    def __init__(self, venue: MockVenue, timeline: Callable[..., Any]) -> None:
        self.venue = venue
        self.limiter = VenueRateLimiter(message=[SlidingWindow(3, 0.3)])
        policy = ReconnectPolicy(
            backoff=ExponentialBackoff(0.02, 2.0, 0.2, jitter="none"), approve=lambda _: True
        )
        self.a = WebSocketClient(
            venue.url,
            protocol=GenericJson(),
            rate_limiter=self.limiter,
            reconnect=policy,
            ping_interval=None,
            name="a",
        )
        self.b = WebSocketClient(
            venue.url, protocol=GenericJson(), rate_limiter=self.limiter, ping_interval=None, name="b"
        )
        self.tl = timeline(self.a)
        self.ticks: Counter[tuple[str, str]] = Counter()
        self.throttled: list[Throttled] = []
        self.a.rate_limit_events.subscribe(self._on_rate)
        self.pending: Any = None

    def _on_rate(self, event: Any) -> None:
        if isinstance(event, Throttled) and all(event is not t for t in self.throttled):
            self.throttled.append(event)

    def _tick(self, client: str) -> Callable[[Any], None]:
        def on_tick(message: Any) -> None:
            self.ticks[client, message["topic"]] += 1
            self.tl.poke()

        return on_tick

    async def first(self, sink: ClientInstrumentation) -> None:
        """Data, a gap, a bad frame, throttled requests, and a request left pending."""
        sink = self._played(sink)
        venue, a, b = self.venue, self.a, self.b
        await a.connect()
        await b.connect()
        a.watch(*TOPICS).subscribe(self._tick("a"))
        b.watch(TOPICS[0]).subscribe(self._tick("b"))
        await venue.wait_for(lambda: sorted(len(c.topics) for c in venue.connections) == [1, 2])
        for i in range(PER_TOPIC):
            if i == 1:
                venue.skip_sequence(TOPICS[1], 2)  # numbers 2 and 3 never sent: one sequence gap
            for topic in TOPICS:
                await venue.publish(topic, {"i": i})
        a_conn = next(c for c in venue.connections if len(c.topics) == 2)
        await a_conn.ws.send("not json {")
        want = PER_TOPIC * (len(TOPICS) + 1)
        await self.tl.wait(lambda: sum(self.ticks.values()) == want and a.stats.decode_failures == 1)
        loop = asyncio.get_running_loop()

        async def timed(i: int) -> None:
            start = loop.time()
            assert await a.request("echo", {"i": i}, timeout=10.0) == {"i": i}
            sink.on_request_done("echo", loop.time() - start, "ok")

        await asyncio.gather(*(timed(i) for i in range(REQUESTS)))
        self.pending = a.request("sleep", {"seconds": 30.0}, timeout=60.0)
        async with asyncio.timeout(5.0):  # the limiter may hold it a moment
            while not any('"sleep"' in str(f) for _, f in venue.received):
                await asyncio.sleep(0.01)

    async def second(self, sink: ClientInstrumentation) -> None:
        """The venue drops ``a``: the pending request is lost, ``a`` reconnects and restores."""
        sink = self._played(sink)
        start = asyncio.get_running_loop().time()
        self.venue.drop_all()
        with pytest.raises(ConnectionLost):
            await self.pending
        sink.on_request_done("sleep", asyncio.get_running_loop().time() - start, "lost")
        await self.tl.wait_event(Reconnected)
        await self.tl.wait_event(SubscriptionsRestored)
        for topic in TOPICS:  # the next message on each topic closes its disconnect window
            await self.venue.publish(topic, {"i": PER_TOPIC})
        await self.tl.wait(lambda: len([g for g in self.tl.of(GapDetected) if g.gap == "disconnect"]) == 2)

    def _played(self, sink: ClientInstrumentation) -> ClientInstrumentation:
        """``sink``, which the test calls as the client would, unless the client calls it itself."""
        return _Unwired() if hasattr(self.a, "add_instrumentation") else sink

    async def close(self) -> None:
        await self.a.close()
        await self.b.close()


def check_first(r: Readings, run: LiveRun) -> None:
    """What the exporter read after :meth:`LiveRun.first`, against the clients' own counters."""
    a = {"client": "a", "venue": "generic"}
    b = {"client": "b", "venue": "generic"}
    for topic in TOPICS:
        assert r("rxws_messages_total", **a, topic=topic) == run.ticks["a", topic] == PER_TOPIC
    assert r("rxws_messages_total", **b, topic=TOPICS[0]) == run.ticks["b", TOPICS[0]] == PER_TOPIC
    assert r.get("rxws_messages_total", **b, topic=TOPICS[1]) is None
    for client, labels in ((run.a, a), (run.b, b)):
        assert r("rxws_frames_total", **labels, direction="in") == client.stats.frames_in
        assert r("rxws_frames_total", **labels, direction="out") == client.stats.frames_out
        assert r("rxws_decode_failures_total", **labels) == client.stats.decode_failures
        counters = client.stats.as_dict()
        assert {"unrouted", "late_replies", "observer_failures", "internal_errors"} <= set(counters)
        for why, count in counters.items():
            if why not in ("frames_in", "frames_out", "decode_failures"):
                assert r("rxws_undelivered_total", **labels, why=why) == count
        assert r("rxws_connected", **labels) == 1
    assert r("rxws_decode_failures_total", **a) == 1
    sequence_gaps = [g for g in run.tl.of(GapDetected) if g.gap == "sequence"]
    assert [g.topic for g in sequence_gaps] == [TOPICS[1]]
    assert r("rxws_gaps_total", **a, topic=TOPICS[1], gap="sequence") == 1
    assert run.throttled, "the limiter made no request wait; the run does not test limiter waits"
    assert r("rxws_limiter_wait_seconds_count", **a, action="message") == len(run.throttled)
    assert r("rxws_limiter_wait_seconds_sum", **a, action="message") == pytest.approx(
        sum(t.delay for t in run.throttled)
    )
    assert r("rxws_request_duration_seconds_count", **a, method="echo", outcome="ok") == REQUESTS
    assert r("rxws_pending_requests", **a) == run.a.pending_requests == 1
    assert r("rxws_pending_requests", **b) == 0
    assert r("rxws_outbound_queue_depth", **a) == 0
    # GenericJson reads no event time: no latency series
    assert r.get("rxws_venue_latency_seconds_count", **a, topic=TOPICS[0]) is None


def check_second(r: Readings, run: LiveRun) -> None:
    """After :meth:`LiveRun.second`: the drop, the reconnection and its gaps."""
    a = {"client": "a", "venue": "generic"}
    (reconnected,) = run.tl.of(Reconnected)
    assert r("rxws_reconnects_total", **a) == 1
    assert r("rxws_downtime_seconds_total", **a) == pytest.approx(reconnected.downtime)
    assert r("rxws_disconnects_total", **a, reason="NETWORK_ERROR") == 1
    for topic in TOPICS:
        assert r("rxws_gaps_total", **a, topic=topic, gap="disconnect") == 1
    assert r("rxws_request_duration_seconds_count", **a, method="sleep", outcome="lost") == 1
    assert r("rxws_pending_requests", **a) == run.a.pending_requests == 0
    assert r("rxws_connected", **a) == 1
    assert r("rxws_frames_total", **a, direction="in") == run.a.stats.frames_in
    assert r("rxws_disconnects_total", client="b", venue="generic", reason="NETWORK_ERROR") == 1
