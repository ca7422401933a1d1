"""rxws._display: the HTML and text a notebook shows, rendered from a real client in virtual time."""

from __future__ import annotations

from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import pytest
from reactivex.testing import TestScheduler

from rxws import WebSocketClient
from rxws._client_base import ClientStats
from rxws._display import (
    ClientDisplay,
    client_html,
    client_text,
    events_html,
    limiter_state,
    pool_html,
    pool_text,
    stats_html,
    track,
    tracker_of,
)
from rxws.events import Connected, Disconnected, DisconnectReason, GapDetected
from rxws.pool import ConnectionPool
from rxws.protocols import GenericJson
from rxws.ratelimit import RateLimiter, SlidingWindow, TokenBucket
from rxws.ratelimit.base import Decision
from rxws.ratelimit.venue import VenueRateLimiter
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport

EVIL = "<script>alert('x')</script>"


class Tables(HTMLParser):
    """Every table of an HTML fragment as {caption: [row cells]} (text content, unescaped)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._caption: str | None = None
        self._in: str | None = None
        self._row: list[str] = []
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("caption", "td", "th"):
            self._in, self._text = tag, ""
        elif tag == "tr":
            self._row = []

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._caption = self._text
            self.tables[self._text] = []
        elif tag in ("td", "th"):
            self._row.append(self._text)
        elif tag == "tr" and self._caption is not None:
            self.tables[self._caption].append(self._row)
        if tag in ("caption", "td", "th"):
            self._in = None

    def get(self, prefix: str) -> list[list[str]]:
        (name,) = [n for n in self.tables if n.startswith(prefix)]
        return self.tables[name]


def _client(scheduler: TestScheduler, venue: Responder) -> WebSocketClient:
    return WebSocketClient(
        "ws://venue.test/ws",
        protocol=GenericJson(),
        transport=MemoryTransport(latency=0.1, responder=venue),
        scheduler=scheduler,
        ping_interval=None,
        name="venue-a",
    )


def test_the_client_html_shows_state_age_topics_pending_and_recent_events() -> None:
    scheduler, venue = TestScheduler(), Responder()
    client = _client(scheduler, venue)
    display = track(client)  # events only, as the client would do itself
    assert track(client, topics=True) is display and display.count_topics  # counting added
    assert tracker_of(client) is display
    client.connect()
    client.watch("trades.BTC", EVIL).subscribe()
    scheduler.advance_to(1.0)
    for i in range(34):  # one a second on trades.BTC from 1.0: arrivals at 1.1 ... 34.1
        scheduler.schedule_absolute(1.0 + i, lambda _s, _st: venue.publish("trades.BTC", {"px": 1}))
    scheduler.schedule_absolute(5.0, lambda _s, _st: venue.publish(EVIL, 1))
    scheduler.advance_to(30.0)
    client.request("sleep", {"seconds": 100}, timeout=1000)  # stays pending
    scheduler.advance_to(35.0)

    page = client_html(client)
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    tables = Tables(page)
    summary = dict(tables.get("WebSocketClient"))
    assert summary["state"] == "CONNECTED" and summary["name"] == "venue-a"
    assert summary["connected for"] == "34.9s"  # connected at 0.1 (the latency), now 35.0
    assert summary["pending requests"] == "1"
    header, *rows = tables.get("topics (2)")
    assert header == ["topic", "state", "rate", "messages", "last seq"]
    by_topic = {r[0]: r for r in rows}
    # 10 messages in [20, 30), 5 in [30, 35): (10 * 0.5 + 5) / 10 s
    assert by_topic["trades.BTC"] == ["trades.BTC", "CONFIRMED", "1.0/s", "34", "34"]
    assert by_topic[EVIL][3:] == ["1", "1"]
    kinds = [row[1] for row in tables.get("recent events")[1:]]
    assert "connected" in kinds
    assert dict(tables.get("ClientStats")[1:])["frames_in"] == str(client.stats.frames_in)
    assert client_text(client) == "<WebSocketClient venue-a CONNECTED age=34.9s topics=2 pending=1>"


def test_an_untracked_client_still_renders() -> None:
    # Only the public surface the builders read (a client the display was never attached to).
    client = SimpleNamespace(
        name="venue-b",
        url="ws://venue.test/b",
        protocol=GenericJson(),
        state_value="DISCONNECTED",
        pending_requests=0,
        stats=ClientStats(),
        scheduler=None,
        subscriptions=None,
    )
    page = client_html(client)
    assert "not tracked" in page and "no topics" in page
    assert dict(Tables(page).get("WebSocketClient"))["state"] == "DISCONNECTED"
    assert client_text(client) == "<WebSocketClient venue-b DISCONNECTED age=- topics=0 pending=0>"


def test_the_ring_keeps_the_latest_events_only() -> None:
    display = ClientDisplay(capacity=3)
    for i in range(5):
        display._on_event(Disconnected(at=float(i), reason=DisconnectReason.NETWORK_ERROR))
    assert [e.at for e in display.recent] == [2.0, 3.0, 4.0] and display.events_seen == 5
    with pytest.raises(ValueError):
        ClientDisplay(capacity=0)


def test_topic_counting_is_bounded() -> None:
    display = ClientDisplay(topics=True, max_topics=2)
    for topic in ("a", "b", "c", "c"):
        display._on_data(topic, None, 1.0)
    assert set(display.topics) == {"a", "b"} and display.other == 2


def test_events_and_an_event_render_escaped() -> None:
    gap = GapDetected(at=2.5, topic=EVIL, gap="sequence", last_seq=3, next_seq=5)
    page = events_html([Connected(at=1.0, url="ws://x"), gap])
    assert "<script>" not in page
    rows = Tables(page).get("events")
    assert rows[1][:2] == ["1.000", "connected"] and rows[2][:2] == ["2.500", "gap_detected"]
    assert f"topic={EVIL}" in rows[2][2]
    single = Tables(gap._repr_html_()).get("GapDetected")
    assert ["topic", EVIL] in single and ["last_seq", "3"] in single


def test_stats_show_every_counter_nonzero_first() -> None:
    stats = ClientStats()
    stats.frames_in, stats.late_replies = 7, 2
    rows = Tables(stats_html(stats)).get("ClientStats")[1:]
    assert rows[:2] == [["frames_in", "7"], ["late_replies", "2"]]
    assert len(rows) == len(stats.as_dict())


def test_a_pool_renders_its_connections() -> None:
    scheduler = TestScheduler()
    pool = ConnectionPool(
        "ws://venue.test/ws",
        protocol=GenericJson(),
        max_topics_per_connection=1,
        transport=MemoryTransport(latency=0.1, responder=Responder()),
        scheduler=scheduler,
        ping_interval=None,
        name="pool",
    )
    pool.connect()
    pool.watch("a", "b").subscribe()
    scheduler.advance_to(2.0)
    rows = Tables(pool_html(pool)).get("ConnectionPool pool")[1:]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("pool[0]", "CONNECTED", "1"),
        ("pool[1]", "CONNECTED", "1"),
    ]
    assert pool_text(pool) == "<ConnectionPool pool connections=2 topics=2>"


def test_limiter_budgets_are_read_without_spending() -> None:
    bucket = TokenBucket(5, 1.0, burst=5)
    bucket.try_acquire(0.0)
    bucket.try_acquire(0.0)
    assert limiter_state(bucket, now=0.0)["budget remaining"] == 3
    assert limiter_state(bucket, now=0.0)["budget remaining"] == 3  # asking spent nothing

    composite = RateLimiter(SlidingWindow(4, 1.0), SlidingWindow(10, 60.0))
    composite.try_acquire(0.0, 3)
    assert limiter_state(composite, now=0.5)["budget remaining"] == 1

    venue = VenueRateLimiter(message=[SlidingWindow(5, 1.0)], max_connections={"ip": 2}, name="mine")
    venue.acquire_connect("c1", 0.0)
    venue.report_violation("c1", "too many", 0.0)
    state = limiter_state(venue, conn_id="c1", now=0.0)
    assert state["name"] == "mine" and state["connections"] == {"ip": "1/2"}
    assert state["message rules"] and float(state["penalty remaining"].rstrip("s")) > 0


def test_a_limiter_with_a_budgets_hook_is_asked() -> None:
    class Budgeted:
        name = "hooked"

        def budgets(self, conn_id: str, now: float) -> dict[str, float]:
            return {f"{conn_id} messages": 4.0}

        def check(self, now: float, cost: float = 1) -> Decision:  # pragma: no cover - not used
            raise AssertionError("the hook wins")

    assert limiter_state(Budgeted(), conn_id="c9")["budget remaining"] == {"c9 messages": 4.0}
