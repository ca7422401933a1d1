"""Metrics: what the client knows, exported to Prometheus or OpenTelemetry.

::

    from rxws.metrics import PrometheusExporter   # extra "prometheus"
    from rxws.metrics import OtelExporter         # extra "otel"

    exporter = PrometheusExporter()
    exporter.attach(client)                       # a disposable; several clients, one label each
    server = exporter.serve(port=9464)            # http://127.0.0.1:9464/metrics

Importing this package needs neither extra; an exporter's constructor raises ``ImportError``
naming the missing one.

Series (Prometheus names; the OpenTelemetry instruments drop ``_total``). Every series has the
labels ``client`` (``client.name``, or ``attach(client, label=...)``) and ``venue`` (the
dialect's ``name``):

====================================  =========  ===============  =========================================================
series                                kind       more labels      source
====================================  =========  ===============  =========================================================
``rxws_messages_total``               counter    topic            data messages (``client.messages``)
``rxws_inbound_bytes_total``          counter    topic            frame sizes (instrumentation hook)
``rxws_frames_total``                 counter    direction        ``stats.frames_in`` / ``frames_out``
``rxws_decode_failures_total``        counter                     ``stats.decode_failures``
``rxws_undelivered_total``            counter    why              every other ``ClientStats`` counter
``rxws_gaps_total``                   counter    topic, gap       ``GapDetected`` (gap: its kind)
``rxws_disconnects_total``            counter    reason           ``Disconnected``
``rxws_reconnects_total``             counter                     ``Reconnected``
``rxws_downtime_seconds_total``       counter                     ``Reconnected.downtime``
``rxws_connected``                    gauge                       ``client.state_value``
``rxws_request_duration_seconds``     histogram  method, outcome  request round trip (instrumentation hook)
``rxws_pending_requests``             gauge                       ``client.pending_requests``
``rxws_outbound_queue_depth``         gauge                       ``client.outbound_queue_depth``
``rxws_limiter_wait_seconds``         histogram  action           ``Throttled.delay``
``rxws_rate_limit_rejections_total``  counter    action, why      ``Rejected``
``rxws_rate_limit_dropped_total``     counter    reason           rate-limit ``Dropped`` (its count)
``rxws_messages_dropped_total``       counter    reason           ``MessageDropped`` (its count)
``rxws_violations_total``             counter    signal           ``ViolationReported``
``rxws_penalties_total``              counter    scope            ``PenaltyStarted``
``rxws_penalty_seconds_total``        counter    scope            ``PenaltyStarted.seconds``
``rxws_venue_latency_seconds``        histogram  topic            receipt (wall clock) - ``protocol.event_time``
====================================  =========  ===============  =========================================================

Bounded labels: each client keeps its own ``topic`` label for the first ``max_topics`` topics it
sees (100 by default); messages, bytes, gaps and latency of any further topic are counted under
``topic="other"``. ``method``, ``outcome``, drop ``reason``, ``why``, ``signal`` and ``scope``
are capped at 16 values per client the same way. Inbound bytes that belong to no topic
(replies, acks, pongs) are labelled ``topic="(no topic)"``.

A rate limiter shared by several clients tells each of them about every event; one exporter
counts each event once, under the client whose connection it names (``conn_id``
``"<client name>#<process token>-<n>"``, see :mod:`rxws.ratelimit.identity`), else under the first
attached client that relayed it.

Venue latency reads the wall clock (``time.time``) against the venue's clock: a skewed host
clock shifts it. A negative difference lands in the lowest bucket (Prometheus; its ``_sum`` keeps
the sign) or is recorded as 0 (OpenTelemetry histograms refuse negative values).

What the public streams do not say (bytes per topic, request round trips) comes from
``WebSocketClient.add_instrumentation(sink)``, which calls a :class:`ClientInstrumentation` per
inbound frame and per request end (see ``exporter.sink(client)``); the outbound queue depth is read
from ``client.outbound_queue_depth`` (every connection's queue) when collected. Another object
with the client's public surface but without that hook is still exported; those series then stay
empty, and data messages are counted from ``client.messages`` (one extra ``protocol.classify``
per message).
"""

from __future__ import annotations

from rxws.metrics._collect import DEFAULT_MAX_TOPICS
from rxws.metrics._parts import ClientInstrumentation, LabelCap
from rxws.metrics._series import OTHER, SERIES, Series
from rxws.metrics.otel import OtelExporter
from rxws.metrics.prometheus import MetricsServer, PrometheusExporter

__all__ = [
    "DEFAULT_MAX_TOPICS",
    "OTHER",
    "SERIES",
    "ClientInstrumentation",
    "LabelCap",
    "MetricsServer",
    "OtelExporter",
    "PrometheusExporter",
    "Series",
]
