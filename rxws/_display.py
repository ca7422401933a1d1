"""What a notebook shows for a client, a pool, events, stats and a rate limiter (issue 16).

Jupyter calls ``_repr_html_`` on the value a cell ends with; the classes' one-line methods call
the builders here. Everything shown is read through public surfaces (``client.state_value``,
``client.events``, ``client.messages``, ``client.pending_requests``, ``client.stats``, the
limiter's introspection), and every value is HTML-escaped: a topic named ``<script>`` is text.

Recent events and per-topic rates are not kept by the client: :func:`track` attaches a
:class:`ClientDisplay` (a bounded ring of recent events, the connection's start, and, when asked,
per-topic counts) to the client's streams and finds it again by client (a weak mapping).
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from reactivex import abc
from reactivex.disposable import CompositeDisposable

from rxws._html import STYLE as _STYLE
from rxws._html import table as _table
from rxws._time import clock_of
from rxws.events import Connected, Event
from rxws.protocols.base import MessageKind

__all__ = [
    "ClientDisplay",
    "client_html",
    "client_text",
    "event_html",
    "events_html",
    "limiter_html",
    "limiter_state",
    "pool_html",
    "pool_text",
    "stats_html",
    "track",
    "tracker_of",
]


class _TopicStats:
    """Counts for one topic: total, last sequence, and a two-bucket rate over ``window``."""

    __slots__ = ("_bucket", "_current", "_previous", "count", "last_at", "last_seq")

    def __init__(self) -> None:
        self.count = 0
        self.last_seq: int | None = None
        self.last_at: float | None = None
        self._bucket = 0
        self._current = 0
        self._previous = 0

    def add(self, now: float, seq: int | None, window: float) -> None:
        bucket = int(now // window)
        if bucket != self._bucket:
            self._previous = self._current if bucket == self._bucket + 1 else 0
            self._current, self._bucket = 0, bucket
        self._current += 1
        self.count += 1
        self.last_at = now
        if seq is not None:
            self.last_seq = seq

    def rate(self, now: float, window: float) -> float:
        """Messages per second over the last ``window`` (a sliding-window-counter estimate)."""
        bucket = int(now // window)
        if bucket == self._bucket:
            current, previous = self._current, self._previous
        elif bucket == self._bucket + 1:
            current, previous = 0, self._current
        else:
            return 0.0
        elapsed = now / window - bucket
        return (previous * (1.0 - elapsed) + current) / window


class ClientDisplay:
    """What the display remembers about one client: recent events and (optionally) topics.

    Args:
        capacity: how many recent events to keep (the oldest go first).
        topics: also count every message per topic (rate, last sequence); this reads each
            message through the dialect again, so it is opt-in.
        max_topics: the most topics counted; messages of further topics go to ``other``.
        window: seconds the topic rates are measured over.
    """

    def __init__(
        self, *, capacity: int = 20, topics: bool = False, max_topics: int = 1000, window: float = 10.0
    ) -> None:
        if capacity < 1 or max_topics < 1 or not window > 0:
            raise ValueError("capacity and max_topics must be >= 1 and window > 0")
        self.recent: deque[Event] = deque(maxlen=capacity)
        self.events_seen = 0
        self.connected_at: float | None = None
        self.count_topics = topics
        self.topics: dict[str, _TopicStats] = {}
        self.other = 0
        self._max_topics = max_topics
        self.window = window
        self._subscriptions = CompositeDisposable()

    def attach(self, client: Any) -> abc.DisposableBase:
        """Follow ``client.events`` (and ``client.messages`` when counting topics)."""
        self._subscriptions.add(client.events.subscribe(self._on_event))
        if self.count_topics:
            self._count_topics(client)
        return self._subscriptions

    def _count_topics(self, client: Any) -> None:
        self.count_topics = True
        protocol = client.protocol
        owner = weakref.ref(client)  # the tracker (a value keyed weakly by the client) must not pin it

        def on_message(message: Any) -> None:
            kind, topic = protocol.classify(message)
            if kind is not MessageKind.DATA or not isinstance(topic, str):
                return
            seq = protocol.sequence(message)
            tracked = owner()
            self._on_data(topic, None if seq is None else seq.last, 0.0 if tracked is None else _now(tracked))

        self._subscriptions.add(client.messages.subscribe(on_message))

    def _on_event(self, event: Event) -> None:
        self.recent.append(event)
        self.events_seen += 1
        if isinstance(event, Connected):
            self.connected_at = event.at

    def _on_data(self, topic: str, seq: int | None, now: float) -> None:
        stats = self.topics.get(topic)
        if stats is None:
            if len(self.topics) >= self._max_topics:
                self.other += 1
                return
            stats = self.topics[topic] = _TopicStats()
        stats.add(now, seq, self.window)


_TRACKERS: weakref.WeakKeyDictionary[Any, ClientDisplay] = weakref.WeakKeyDictionary()


def track(client: Any, *, capacity: int = 20, topics: bool = False) -> ClientDisplay:
    """Attach a :class:`ClientDisplay` to ``client`` (once; later calls return the same one,
    starting to count topics if ``topics`` is asked now and was not before)."""
    display = _TRACKERS.get(client)
    if display is None:
        display = ClientDisplay(capacity=capacity, topics=topics)
        display.attach(client)
        _TRACKERS[client] = display
    elif topics and not display.count_topics:
        display._count_topics(client)
    return display


def tracker_of(client: Any) -> ClientDisplay | None:
    """The :class:`ClientDisplay` attached to ``client`` by :func:`track`, if any."""
    try:
        return _TRACKERS.get(client)
    except TypeError:  # not weakly referenceable: never tracked
        return None


# Builders ------------------------------------------------------------------------------------------
def _now(client: Any) -> float:
    scheduler = getattr(client, "scheduler", None)
    return clock_of(scheduler)() if scheduler is not None else 0.0


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _topic_rows(client: Any, display: ClientDisplay | None, now: float) -> list[tuple[Any, ...]]:
    states: Mapping[str, Any] = {}
    subscriptions = getattr(client, "subscriptions", None)
    if subscriptions is not None and hasattr(subscriptions, "states"):
        states = subscriptions.states()
    counted = display.topics if display is not None else {}
    window = display.window if display is not None else 10.0
    rows: list[tuple[Any, ...]] = []
    for topic in sorted(set(states) | set(counted)):
        stats = counted.get(topic)
        state = states.get(topic)
        rate = "-" if stats is None else f"{stats.rate(now, window):.1f}/s"
        rows.append(
            (
                topic,
                getattr(state, "value", state) if state is not None else "-",
                rate,
                "-" if stats is None else stats.count,
                "-" if stats is None or stats.last_seq is None else stats.last_seq,
            )
        )
    return rows


def client_text(client: Any) -> str:
    """A one-line summary: name, state, connection age, topics, pending requests."""
    display = tracker_of(client)
    now = _now(client)
    age = _age(client, display, now)
    topics = len(getattr(client, "subscriptions", ()) or ())
    return (
        f"<WebSocketClient {client.name} {client.state_value} age={_seconds(age)} "
        f"topics={topics} pending={client.pending_requests}>"
    )


def _age(client: Any, display: ClientDisplay | None, now: float) -> float | None:
    """The serving connection's age: ``client.connection_age`` (a rotation starts a new one),
    else (another object with a client's surface) since the last ``Connected`` event."""
    if hasattr(client, "connection_age"):
        age: float | None = client.connection_age
        return age
    if display is None or display.connected_at is None or str(client.state_value) != "CONNECTED":
        return None
    return max(0.0, now - display.connected_at)


def client_html(client: Any, *, limiter: Any = None, conn_id: str | None = None) -> str:
    """The client at a glance: state, connection (id, age), topics (rates, last sequence), pending
    requests, outbound queue, counters, recent events and, when given, the rate limiter's state
    (for ``conn_id``, by default the client's ``conn_id``)."""
    display = tracker_of(client)
    now = _now(client)
    conn_id = conn_id if conn_id is not None else getattr(client, "conn_id", None)
    summary = [
        ("name", client.name),
        ("url", client.url),
        ("venue dialect", getattr(client.protocol, "name", type(client.protocol).__name__)),
        ("state", client.state_value),
        ("connection", "-" if conn_id is None else conn_id),
        ("connected for", _seconds(_age(client, display, now))),
        ("pending requests", client.pending_requests),
    ]
    depth = getattr(client, "outbound_queue_depth", None)
    if depth is not None:
        summary.append(("outbound queue", depth))
    parts = [_STYLE, _table("WebSocketClient", summary)]
    topics = _topic_rows(client, display, now)
    parts.append(
        _table(f"topics ({len(topics)})", topics, ("topic", "state", "rate", "messages", "last seq"))
        if topics
        else "<p>no topics</p>"
    )
    stats = getattr(client, "stats", None)
    if stats is not None:
        parts.append(stats_html(stats, style=False))
    if display is not None:
        parts.append(
            events_html(display.recent, caption=f"recent events ({display.events_seen} seen)", style=False)
        )
    else:
        parts.append("<p>recent events: not tracked (rxws._display.track(client))</p>")
    if limiter is not None:
        parts.append(limiter_html(limiter, conn_id=conn_id, now=now, style=False))
    return "<div class='rxws'>" + "".join(parts) + "</div>"


def pool_text(pool: Any) -> str:
    """A one-line summary of a :class:`~rxws.ConnectionPool`."""
    return f"<ConnectionPool {pool.name} connections={len(pool.clients)} topics={len(pool.topics)}>"


def pool_html(pool: Any) -> str:
    """Each connection of a pool: its state, load (topics) and pending requests."""
    loads = pool.loads()
    rows = [
        (i, c.name, c.state_value, loads[i] if i < len(loads) else "-", c.pending_requests)
        for i, c in enumerate(pool.clients)
    ]
    table = _table(f"ConnectionPool {pool.name}", rows, ("#", "connection", "state", "topics", "pending"))
    return "<div class='rxws'>" + _STYLE + table + "</div>"


def event_html(event: Event) -> str:
    """One event as a small table of its fields."""
    return event._repr_html_()


def events_html(events: Iterable[Event], *, caption: str = "events", style: bool = True) -> str:
    """Events as rows: time, kind, and the other fields in short."""
    rows = []
    for event in events:
        fields = event.model_dump()
        at, kind = fields.pop("at", None), fields.pop("kind", "?")
        rows.append(
            (
                f"{at:.3f}" if isinstance(at, float) else at,
                kind,
                ", ".join(f"{k}={v}" for k, v in fields.items()),
            )
        )
    return (_STYLE if style else "") + _table(caption, rows, ("at", "kind", "detail"))


def stats_html(stats: Any, *, style: bool = True) -> str:
    """The client's counters (``ClientStats.as_dict()``), the non-zero ones first."""
    counts: Mapping[str, int] = stats.as_dict()
    rows = sorted(counts.items(), key=lambda kv: (kv[1] == 0, kv[0]))
    return (_STYLE if style else "") + _table("ClientStats", rows, ("counter", "value"))


def limiter_state(limiter: Any, *, conn_id: str | None = None, now: float = 0.0) -> dict[str, Any]:
    """The limiter's state through its public introspection, as plain data.

    Rules per action (labels), the concurrent-connection caps and use, the topics this
    connection holds against its cap, the penalty remaining, and the budget remaining per rule
    where the limiter can say without spending anything: a limiter offering
    ``budgets(conn_id, now) -> Mapping[str, float]``, or a plain algorithm or
    :class:`~rxws.ratelimit.RateLimiter` (asked with ``check``, which counts nothing).
    """
    state: dict[str, Any] = {"name": getattr(limiter, "name", type(limiter).__name__)}
    for action in ("connect", "message", "subscribe"):
        rules = getattr(limiter, f"{action}_rules", None)
        if rules is not None:
            state[f"{action} rules"] = [rule.label for rule in rules]
    caps = getattr(limiter, "max_connections", None)
    if caps:
        state["connections"] = {
            str(scope): f"{limiter.open_connections(scope)}/{cap}" for scope, cap in caps.items()
        }
    if conn_id is not None:
        if hasattr(limiter, "topics"):
            cap = getattr(limiter, "max_topics_per_connection", None)
            state["topics"] = f"{limiter.topics(conn_id)}/{cap if cap is not None else '∞'}"
        if hasattr(limiter, "penalty_remaining"):
            state["penalty remaining"] = f"{limiter.penalty_remaining(conn_id, now):.2f}s"
    budgets = getattr(limiter, "budgets", None)
    if callable(budgets) and conn_id is not None:
        state["budget remaining"] = dict(budgets(conn_id, now))
    elif hasattr(limiter, "check") and hasattr(limiter, "capacity"):
        state["budget remaining"] = _remaining(limiter.check, limiter.capacity, now)
    elif hasattr(limiter, "check") and hasattr(limiter, "rules"):
        capacity = min((r.make().capacity / r.weight for r in limiter.rules), default=0.0)
        state["budget remaining"] = _remaining(limiter.check, capacity, now)
    return state


def _remaining(check: Any, capacity: float, now: float) -> int:
    """The largest whole cost ``check(now, cost)`` allows (0..capacity), by bisection."""
    low, high = 0, int(capacity)
    if high <= 0 or not check(now, 1).allowed:
        return 0
    while low < high:  # at most ~log2(capacity) peeks
        mid = (low + high + 1) // 2
        if check(now, mid).allowed:
            low = mid
        else:
            high = mid - 1
    return low


def limiter_html(limiter: Any, *, conn_id: str | None = None, now: float = 0.0, style: bool = True) -> str:
    """The rate limiter's state (see :func:`limiter_state`) as a table."""
    rows = [
        (k, "; ".join(map(str, v)) if isinstance(v, list) else v)
        for k, v in limiter_state(limiter, conn_id=conn_id, now=now).items()
    ]
    return (_STYLE if style else "") + _table("rate limiter", rows)
