"""The series rxws exports: one table shared by the Prometheus and OpenTelemetry exporters.

Every series carries the labels ``client`` (the client's ``name``, or the ``label=`` given to
``attach``) and ``venue`` (the dialect's ``name``), then its own labels listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["OTHER", "SERIES", "Series", "by_name"]

OTHER = "other"
"""The label value that stands for every topic (or method, or reason) past the cardinality cap."""

NO_TOPIC = "(no topic)"
"""The ``topic`` label of inbound bytes that belong to no topic (replies, acks, pongs)."""

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True, slots=True)
class Series:
    """One exported series: its base name, kind, meaning and labels (after ``client``, ``venue``).

    The Prometheus name is ``name`` with ``_total`` added for a counter; the OpenTelemetry
    instrument is called ``name``. ``buckets`` are a histogram's upper bounds (seconds).
    """

    name: str
    kind: Literal["counter", "gauge", "histogram"]
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""
    buckets: tuple[float, ...] = ()


SERIES: tuple[Series, ...] = (
    Series("rxws_messages", "counter", "Data messages received, per topic.", ("topic",)),
    Series(
        "rxws_inbound_bytes",
        "counter",
        "Bytes of inbound frames, per topic (needs the client's instrumentation hook).",
        ("topic",),
        "By",
    ),
    Series("rxws_frames", "counter", "WebSocket frames, per direction (ClientStats).", ("direction",)),
    Series("rxws_decode_failures", "counter", "Inbound frames that could not be decoded (ClientStats)."),
    Series(
        "rxws_undelivered",
        "counter",
        "Inbound or outbound items not delivered the ordinary way, by ClientStats counter.",
        ("why",),
    ),
    Series("rxws_gaps", "counter", "GapDetected events, per topic and kind of gap.", ("topic", "gap")),
    Series("rxws_disconnects", "counter", "Disconnected events, per reason.", ("reason",)),
    Series("rxws_reconnects", "counter", "Reconnected events."),
    Series("rxws_downtime_seconds", "counter", "Seconds between a drop and its reconnection.", (), "s"),
    Series("rxws_connected", "gauge", "1 while the client is CONNECTED, else 0."),
    Series(
        "rxws_request_duration_seconds",
        "histogram",
        "Request round trip, per method and outcome (needs the client's instrumentation hook).",
        ("method", "outcome"),
        "s",
        _LATENCY_BUCKETS,
    ),
    Series("rxws_pending_requests", "gauge", "Requests waiting for their reply."),
    Series("rxws_outbound_queue_depth", "gauge", "Frames waiting in the client's outbound queue."),
    Series(
        "rxws_limiter_wait_seconds",
        "histogram",
        "Waits imposed by the rate limiter (Throttled events), per action.",
        ("action",),
        "s",
        _WAIT_BUCKETS,
    ),
    Series(
        "rxws_rate_limit_rejections", "counter", "Rejected events, per action and why.", ("action", "why")
    ),
    Series(
        "rxws_rate_limit_dropped", "counter", "Items a rate-limit queue dropped, per reason.", ("reason",)
    ),
    Series(
        "rxws_messages_dropped", "counter", "MessageDropped events (their count), per reason.", ("reason",)
    ),
    Series(
        "rxws_violations",
        "counter",
        "The venue said 'too many' (ViolationReported), per signal.",
        ("signal",),
    ),
    Series("rxws_penalties", "counter", "Penalties started (PenaltyStarted), per scope.", ("scope",)),
    Series("rxws_penalty_seconds", "counter", "Seconds of penalty started, per scope.", ("scope",), "s"),
    Series(
        "rxws_venue_latency_seconds",
        "histogram",
        "Wall clock at receipt minus the venue's event time (VenueProtocol.event_time), per topic.",
        ("topic",),
        "s",
        _LATENCY_BUCKETS,
    ),
)
"""Every series, in the order the exporters expose them."""

_BY_NAME = {s.name: s for s in SERIES}


def by_name(name: str) -> Series:
    """The series called ``name`` (its base name, without ``_total``).

    Raises:
        KeyError: no such series.
    """
    return _BY_NAME[name]
