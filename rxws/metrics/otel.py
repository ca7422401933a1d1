"""OpenTelemetry exporter (extra ``otel``: ``pip install 'rxws[otel]'``).

::

    exporter = OtelExporter()                    # the global MeterProvider, meter "rxws"
    disposable = exporter.attach(client)

Counters and gauges are observable instruments read when the SDK collects (every attached
client's counters at that moment); histograms (request round trip, limiter waits, venue
latency) are recorded as they happen; OpenTelemetry histograms take no negative values, so a
negative venue latency (the venue's clock ahead of the host's) is recorded as 0. Instrument names are the series' base names (no
``_total``); attributes are the Prometheus labels. Series and labels: :mod:`rxws.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from rxws.metrics._collect import DEFAULT_MAX_TOPICS, CoreExporter, MetricsCore
from rxws.metrics._parts import import_extra
from rxws.metrics._series import SERIES, Series

__all__ = ["OtelExporter"]


class OtelExporter(CoreExporter):
    """Exports attached clients' metrics through an OpenTelemetry meter.

    Args:
        meter_provider: where the ``rxws`` meter comes from; the global one when None.
        max_topics: distinct ``topic`` attribute values per client; further topics are counted
            under ``topic="other"``.
        clock: the wall clock (seconds since the epoch) for the venue-to-client latency.

    Raises:
        ImportError: opentelemetry-api is not installed (the ``otel`` extra).
    """

    def __init__(
        self,
        meter_provider: Any = None,
        *,
        max_topics: int = DEFAULT_MAX_TOPICS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        metrics = import_extra(
            "opentelemetry.metrics", needed_by="OtelExporter", package="opentelemetry-api", extra="otel"
        )
        self._metrics = metrics
        provider = metrics.get_meter_provider() if meter_provider is None else meter_provider
        self.meter: Any = provider.get_meter("rxws")
        self._core = MetricsCore(max_topics=max_topics, clock=clock)
        self._histograms: dict[str, Any] = {}
        for series in SERIES:
            if series.kind == "histogram":
                self._histograms[series.name] = self.meter.create_histogram(
                    series.name,
                    unit=series.unit,
                    description=series.help,
                    explicit_bucket_boundaries_advisory=list(series.buckets),
                )
            elif series.kind == "counter":
                self.meter.create_observable_counter(
                    series.name, callbacks=[self._reader(series)], unit=series.unit, description=series.help
                )
            else:
                self.meter.create_observable_gauge(
                    series.name, callbacks=[self._reader(series)], unit=series.unit, description=series.help
                )
        self._core.listeners.append(self._record)

    def _reader(self, series: Series) -> Callable[[Any], Iterable[Any]]:
        observation = self._metrics.Observation
        names = ("client", "venue", *series.labels)

        def read(_options: Any) -> Iterable[Any]:
            return [
                observation(value, dict(zip(names, labels, strict=True)))
                for s, labels, value in self._core.collect()
                if s is series
            ]

        return read

    def _record(self, series: Series, labels: tuple[str, ...], value: float) -> None:
        names = ("client", "venue", *series.labels)
        # OpenTelemetry histograms refuse negative values (a venue clock ahead of ours): 0 instead
        self._histograms[series.name].record(max(value, 0.0), dict(zip(names, labels, strict=True)))
