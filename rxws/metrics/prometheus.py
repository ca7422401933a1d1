"""Prometheus exporter (extra ``prometheus``: ``pip install 'rxws[prometheus]'``).

::

    exporter = PrometheusExporter()              # prometheus_client's default REGISTRY
    disposable = exporter.attach(client)         # several clients: one label each
    server = exporter.serve(port=9464)           # GET http://127.0.0.1:9464/metrics

The exporter is a custom collector: a scrape reads every attached client's counters at that
moment, so a value is never staler than the scrape. Series and labels: :mod:`rxws.metrics`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rxws.exceptions import UsageError
from rxws.metrics._collect import DEFAULT_MAX_TOPICS, CoreExporter, MetricsCore
from rxws.metrics._parts import import_extra
from rxws.metrics._series import SERIES, Series

__all__ = ["MetricsServer", "PrometheusExporter"]


class MetricsServer:
    """A running ``/metrics`` HTTP server (prometheus_client's, in a daemon thread)."""

    def __init__(self, httpd: Any, thread: threading.Thread, host: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host = host
        self.port: int = int(httpd.server_port)
        """The port it listens on (the free one chosen when ``port=0`` was asked)."""

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving and wait (at most ``timeout`` seconds) for the server thread. Idempotent."""
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PrometheusExporter(CoreExporter):
    """Exports attached clients' metrics to a Prometheus registry.

    Args:
        registry: where the series are registered; prometheus_client's default ``REGISTRY``
            when None. One exporter per registry.
        max_topics: distinct ``topic`` label values per client; further topics are counted
            under ``topic="other"``.
        clock: the wall clock (seconds since the epoch) for the venue-to-client latency.

    Raises:
        ImportError: prometheus-client is not installed (the ``prometheus`` extra).
        UsageError: ``registry`` already holds rxws series.
    """

    def __init__(
        self,
        registry: Any = None,
        *,
        max_topics: int = DEFAULT_MAX_TOPICS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._prom = import_extra(
            "prometheus_client",
            "prometheus_client.core",  # the metric families the collector yields
            needed_by="PrometheusExporter",
            package="prometheus-client",
            extra="prometheus",
        )
        self.registry: Any = self._prom.REGISTRY if registry is None else registry
        self._core = MetricsCore(max_topics=max_topics, clock=clock)
        self._collector = _Collector(self._core, self._prom.core)
        try:
            self.registry.register(self._collector)
        except ValueError as exc:
            raise UsageError(
                f"this registry already has rxws series ({exc}); one exporter per registry"
            ) from exc

    def text(self) -> str:
        """The registry in the Prometheus text format, as a scrape would read it."""
        return str(self._prom.generate_latest(self.registry).decode())

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> MetricsServer:
        """Serve the registry on ``http://host:port/metrics`` (port 0: a free one) until closed."""
        httpd, thread = self._prom.start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(httpd, thread, host)

    def close(self) -> None:
        """Unregister from the registry (attached clients stay attached but are no longer read)."""
        with contextlib.suppress(KeyError):  # already unregistered
            self.registry.unregister(self._collector)


class _Collector:
    """prometheus_client's custom-collector protocol (``collect``, ``describe``) over the core."""

    def __init__(self, core: MetricsCore, prom_core: Any) -> None:
        self._core = core
        self._p = prom_core

    def describe(self) -> Iterator[Any]:
        for series in SERIES:
            yield self._family(series)

    def collect(self) -> Iterator[Any]:
        families = {s.name: self._family(s) for s in SERIES}
        for series, labels, value in self._core.collect():
            family = families[series.name]
            if series.kind == "histogram":
                cumulative, total, _count = value
                bounds = [*(_le(b) for b in series.buckets), "+Inf"]
                family.add_metric(list(labels), list(zip(bounds, cumulative, strict=True)), total)
            else:
                family.add_metric(list(labels), value)
        yield from families.values()

    def _family(self, series: Series) -> Any:
        labels = ["client", "venue", *series.labels]
        if series.kind == "counter":
            return self._p.CounterMetricFamily(series.name, series.help, labels=labels)
        if series.kind == "gauge":
            return self._p.GaugeMetricFamily(series.name, series.help, labels=labels)
        return self._p.HistogramMetricFamily(series.name, series.help, labels=labels)


def _le(bound: float) -> str:
    return repr(float(bound))
