"""What the exporters share: reading clients into counters, gauges and histograms.

:class:`MetricsCore` attaches to clients through their public streams (``events``,
``rate_limit_events``, ``messages``) and reads their counters (``stats``, ``pending_requests``,
``state_value``) when a backend collects. Where the public surface says nothing (bytes per
topic, request round trips), a client that offers ``add_instrumentation(sink)`` calls a
:class:`ClientInstrumentation` sink instead. The backends (Prometheus, OpenTelemetry) only
translate what :meth:`MetricsCore.collect` returns and what :meth:`MetricsCore.observe` reports.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxws.core.state import ConnectionState
from rxws.exceptions import UsageError
from rxws.metrics._parts import ClientInstrumentation, LabelCap, _Histogram
from rxws.metrics._series import NO_TOPIC, OTHER, Series, by_name
from rxws.protocols.base import MessageKind, VenueProtocol

__all__ = ["DEFAULT_MAX_TOPICS", "CoreExporter", "MetricsCore", "Sample"]

DEFAULT_MAX_TOPICS = 100
"""Distinct ``topic`` label values per client before the rest are counted as ``"other"``."""

_MAX_SMALL = 16  # methods, drop reasons, scopes and signals per client before "other"
_STATS_OWN_SERIES = frozenset({"frames_in", "frames_out", "decode_failures"})
_DATA = MessageKind.DATA
_LATENCY = by_name("rxws_venue_latency_seconds")

Labels = tuple[str, ...]
Sample = tuple[Series, Labels, Any]
"""``(series, label values, value)``: a float, or for a histogram ``(bucket counts, sum, count)``
with cumulative bucket counts, one per upper bound and a last one for ``+Inf``."""


class _Topic:
    """What one topic label has counted (the hot path: plain attribute updates, no lock).

    Only the client's loop writes these; a collect on another thread reads them as they are.
    """

    __slots__ = ("bytes", "label", "latency", "messages")

    def __init__(self, label: str) -> None:
        self.label = label
        self.messages = 0
        self.bytes = 0
        self.latency = _Histogram(_LATENCY.buckets)


class _Attached:
    """One attached client, its per-topic counts and its bounded label maps."""

    def __init__(self, client: Any, label: str, max_topics: int) -> None:
        self.client = client
        self.label = label
        protocol = client.protocol
        self.venue = str(getattr(protocol, "name", type(protocol).__name__))
        reads_time = getattr(type(protocol), "event_time", _no_time) is not VenueProtocol.event_time
        self.event_time: Callable[[Any], float | None] | None = protocol.event_time if reads_time else None
        self.max_topics = max_topics
        self.topics: dict[str, _Topic] = {}  # at most max_topics entries
        self.other = _Topic(OTHER)
        self.no_topic = _Topic(NO_TOPIC)  # bytes of replies, acks, pongs
        self.small: dict[str, LabelCap] = {}

    def topic(self, topic: str) -> _Topic:
        """The counts of ``topic``: its own for the first ``max_topics`` topics, else "other"'s."""
        cell = self.topics.get(topic)
        if cell is None:
            if len(self.topics) >= self.max_topics:
                return self.other
            cell = self.topics[topic] = _Topic(topic)
        return cell

    def cap(self, kind: str, value: str) -> str:
        labeller = self.small.get(kind)
        if labeller is None:
            labeller = self.small[kind] = LabelCap(_MAX_SMALL)
        return labeller(value)


class _Sink:
    """The :class:`ClientInstrumentation` of one attached client."""

    def __init__(self, core: MetricsCore, attached: _Attached) -> None:
        self._core = core
        self._attached = attached

    def on_message(self, topic: str | None, nbytes: int, message: Any) -> None:
        a = self._attached
        if topic is None:
            a.no_topic.bytes += nbytes
            return
        cell = a.topic(topic if type(topic) is str else str(topic))
        cell.bytes += nbytes
        self._core.on_data(a, cell, message)

    def on_request_done(self, method: str, seconds: float, outcome: str) -> None:
        a = self._attached
        labels = (a.label, a.venue, a.cap("method", method), a.cap("outcome", outcome))
        self._core.observe("rxws_request_duration_seconds", labels, seconds)


class MetricsCore:
    """Counts what attached clients report; a backend reads it with :meth:`collect`.

    Args:
        max_topics: distinct topics labelled per client before the rest go to ``"other"``.
        clock: the wall clock (seconds since the epoch) for the venue-to-client latency.
    """

    def __init__(
        self, *, max_topics: int = DEFAULT_MAX_TOPICS, clock: Callable[[], float] = time.time
    ) -> None:
        if max_topics < 0:
            raise UsageError(f"max_topics must be >= 0, got {max_topics!r}")
        self._max_topics = max_topics
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], _Histogram] = {}
        self._clients: dict[str, _Attached] = {}
        self._sinks: dict[int, _Sink] = {}
        self._recent: deque[object] = deque(maxlen=64)  # rate-limit events already counted
        self.listeners: list[Callable[[Series, Labels, float], None]] = []
        """Called with every histogram observation (the OpenTelemetry backend records them)."""

    # Attaching -----------------------------------------------------------------------------------
    def attach(self, client: Any, label: str | None = None) -> abc.DisposableBase:
        """Start counting ``client``; dispose the result to stop (its series then disappear).

        Raises:
            UsageError: ``label`` (default: ``client.name``) is already attached here.
        """
        name = str(client.name if label is None else label)
        with self._lock:
            if name in self._clients:
                raise UsageError(
                    f"a client labelled {name!r} is already attached; pass label= to tell them apart"
                )
            attached = self._clients[name] = _Attached(client, name, self._max_topics)
            sink = self._sinks[id(client)] = _Sink(self, attached)
        subs = CompositeDisposable()
        subs.add(client.events.subscribe(lambda e: self._on_event(attached, e)))
        subs.add(client.rate_limit_events.subscribe(lambda e: self._on_rate_event(attached, e)))
        hook = getattr(client, "add_instrumentation", None)
        if hook is not None:
            subs.add(_as_disposable(hook(sink)))
        else:  # no hook: count data messages from the public stream (no bytes, no round trips)
            classify = client.protocol.classify
            subs.add(client.messages.subscribe(lambda m: self._on_message(attached, classify, m)))

        def detach() -> None:
            subs.dispose()
            with self._lock:
                if self._clients.get(name) is attached:
                    del self._clients[name]
                    self._sinks.pop(id(client), None)
                    for store in (self._counters, self._histograms):
                        for key in [k for k in store if k[1][0] == name]:
                            del store[key]

        return Disposable(detach)

    def sink(self, client: Any) -> ClientInstrumentation:
        """The instrumentation sink of an attached ``client``.

        Raises:
            UsageError: ``client`` is not attached.
        """
        sink = self._sinks.get(id(client))
        if sink is None:
            raise UsageError("this client is not attached; call attach(client) first")
        return sink

    # Recording -----------------------------------------------------------------------------------
    def add(self, name: str, labels: Labels, amount: float = 1.0) -> None:
        """Add ``amount`` to the counter ``name`` with ``labels`` (client, venue, ...)."""
        key = (name, labels)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + amount

    def observe(self, name: str, labels: Labels, value: float) -> None:
        """Record ``value`` in the histogram ``name`` with ``labels``; tell the listeners."""
        key = (name, labels)
        with self._lock:
            hist = self._histograms.get(key)
            if hist is None:
                hist = self._histograms[key] = _Histogram(by_name(name).buckets)
            hist.observe(value)
        for listener in self.listeners:
            listener(by_name(name), labels, value)

    def on_data(self, a: _Attached, cell: _Topic, message: Any) -> None:
        """One data message counted in ``cell``; its venue latency when the dialect reads a time."""
        cell.messages += 1
        event_time = a.event_time
        if event_time is not None:
            sent = event_time(message)
            if sent is not None:
                latency = self._clock() - sent
                cell.latency.observe(latency)
                for listener in self.listeners:
                    listener(_LATENCY, (a.label, a.venue, cell.label), latency)

    def _on_message(
        self, a: _Attached, classify: Callable[[Any], tuple[MessageKind, Any]], message: Any
    ) -> None:
        kind, key = classify(message)
        if kind is _DATA and key is not None:
            self.on_data(a, a.topic(key if type(key) is str else str(key)), message)

    def _on_event(self, a: _Attached, event: Any) -> None:
        kind = getattr(event, "kind", None)
        base = (a.label, a.venue)
        if kind == "gap_detected":
            self.add("rxws_gaps", (*base, a.topic(event.topic).label, event.gap))
        elif kind == "disconnected":
            self.add("rxws_disconnects", (*base, str(event.reason)))
        elif kind == "reconnected":
            self.add("rxws_reconnects", base)
            self.add("rxws_downtime_seconds", base, event.downtime)
        elif kind == "message_dropped":
            self.add("rxws_messages_dropped", (*base, a.cap("drop", event.reason)), event.count)

    def _on_rate_event(self, a: _Attached, event: Any) -> None:
        with self._lock:  # a limiter shared by several attached clients tells each: count once
            if any(seen is event for seen in self._recent):
                return
            self._recent.append(event)
            owner = self._owner(event, a)
        kind = event.kind
        base = (owner.label, owner.venue)
        if kind == "throttled":
            self.observe("rxws_limiter_wait_seconds", (*base, str(event.action)), event.delay)
        elif kind == "rejected":
            self.add("rxws_rate_limit_rejections", (*base, str(event.action), owner.cap("why", event.why)))
        elif kind == "dropped":
            self.add("rxws_rate_limit_dropped", (*base, event.reason), event.count)
        elif kind == "violation_reported":
            self.add("rxws_violations", (*base, owner.cap("signal", event.signal)))
        elif kind == "penalty_started":
            scope = owner.cap("scope", event.scope)
            self.add("rxws_penalties", (*base, scope))
            self.add("rxws_penalty_seconds", (*base, scope), event.seconds)

    def _owner(self, event: Any, relay: _Attached) -> _Attached:
        """The attached client a rate-limit event is about: by its ``conn_id`` (``name#...``) when
        that names an attached client, else the client that relayed it first."""
        conn_id = getattr(event, "conn_id", "")
        if conn_id:
            name = conn_id.rpartition("#")[0]
            for attached in self._clients.values():
                if attached.client.name == name:
                    return attached
        return relay

    # Reading ------------------------------------------------------------------------------------
    def collect(self) -> Iterator[Sample]:
        """Every sample now: counters, gauges read from the clients, histograms (cumulative)."""
        with self._lock:
            counters = list(self._counters.items())
            histograms = [(k, h.cumulative()) for k, h in self._histograms.items()]
            clients = list(self._clients.values())
        for (name, labels), value in counters:
            yield by_name(name), labels, value
        for a in clients:
            yield from _client_samples(a)
        for (hname, hlabels), buckets in histograms:
            yield by_name(hname), hlabels, buckets

    @property
    def clients(self) -> list[str]:
        """The labels of the attached clients."""
        return list(self._clients)


class CoreExporter:
    """What every exporter offers over its :class:`MetricsCore`: attaching clients, their sinks.

    A backend sets ``self._core`` and translates what the core collects.
    """

    _core: MetricsCore

    def attach(self, client: Any, *, label: str | None = None) -> abc.DisposableBase:
        """Export ``client``'s metrics under ``client=label`` (default ``client.name``).

        Returns a disposable that detaches it (its series are no longer reported).

        Raises:
            UsageError: a client with that label is already attached.
        """
        return self._core.attach(client, label)

    def sink(self, client: Any) -> ClientInstrumentation:
        """The :class:`~rxws.metrics.ClientInstrumentation` sink of an attached client."""
        return self._core.sink(client)

    @property
    def clients(self) -> list[str]:
        """Labels of the attached clients."""
        return self._core.clients


def _client_samples(a: _Attached) -> Iterator[Sample]:
    """What is read from a client when collected: its ClientStats and its current gauges."""
    c = a.client
    base = (a.label, a.venue)
    messages, inbound, latency = by_name("rxws_messages"), by_name("rxws_inbound_bytes"), _LATENCY
    for cell in [*list(a.topics.values()), a.other, a.no_topic]:
        labels = (*base, cell.label)
        if cell.messages:
            yield messages, labels, float(cell.messages)
        if cell.bytes:
            yield inbound, labels, float(cell.bytes)
        if cell.latency.count:
            yield latency, labels, cell.latency.cumulative()
    stats = c.stats
    frames = by_name("rxws_frames")
    yield frames, (*base, "in"), float(stats.frames_in)
    yield frames, (*base, "out"), float(stats.frames_out)
    yield by_name("rxws_decode_failures"), base, float(stats.decode_failures)
    undelivered = by_name("rxws_undelivered")
    for why, count in stats.as_dict().items():  # every other ClientStats counter, present or future
        if why not in _STATS_OWN_SERIES:
            yield undelivered, (*base, why), float(count)
    yield by_name("rxws_connected"), base, 1.0 if c.state_value is ConnectionState.CONNECTED else 0.0
    yield by_name("rxws_pending_requests"), base, float(c.pending_requests)
    depth = getattr(c, "outbound_queue_depth", None)
    if depth is not None:  # every connection's queue, read now (a client without it: no gauge)
        yield by_name("rxws_outbound_queue_depth"), base, float(depth)


def _no_time(_self: Any, _message: Any) -> None:
    return None


def _as_disposable(handle: Any) -> abc.DisposableBase:
    if isinstance(handle, abc.DisposableBase):
        return handle
    if callable(handle):
        return Disposable(handle)
    return Disposable()
