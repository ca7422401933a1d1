"""OtelExporter: the same MockVenue run read through opentelemetry-sdk's InMemoryMetricReader."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk.metrics")
from fake_client import FakeClient
from live import LiveRun, Readings, check_first, check_second
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from rxws.metrics import SERIES, OtelExporter
from rxws.ratelimit import Action
from rxws.ratelimit.events import Throttled
from rxws.testing import MockVenue

pytestmark = pytest.mark.integration


def read(reader: InMemoryMetricReader) -> Readings:
    """The reader's current data as Prometheus-named samples (``_total``, ``_count``, ``_sum``)."""
    kinds = {s.name: s.kind for s in SERIES}
    values: dict[Any, float] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "rxws"
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    labels = frozenset((k, str(v)) for k, v in (point.attributes or {}).items())
                    if isinstance(point, HistogramDataPoint):
                        values[f"{metric.name}_count", labels] = point.count
                        values[f"{metric.name}_sum", labels] = point.sum
                    elif kinds[metric.name] == "counter":
                        values[f"{metric.name}_total", labels] = point.value
                    else:
                        values[metric.name, labels] = point.value
    return Readings(values)


def provider() -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


async def test_collected_metrics_match_the_clients_counters(
    no_leaked_tasks: None, timeline: Callable[..., Any]
) -> None:
    meters, reader = provider()
    exporter = OtelExporter(meters)
    async with MockVenue(rate=0) as venue:
        run = LiveRun(venue, timeline)
        exporter.attach(run.a)
        exporter.attach(run.b)
        await run.first(exporter.sink(run.a))
        check_first(read(reader), run)
        await run.second(exporter.sink(run.a))
        check_second(read(reader), run)
        await run.close()
    assert read(reader)("rxws_connected", client="a", venue="generic") == 0
    meters.shutdown()


def test_instruments_carry_units_and_histogram_bounds() -> None:
    meters, reader = provider()
    exporter = OtelExporter(meters)
    client = FakeClient("c")
    exporter.attach(client)
    client.rate_limit_events.on_next(Throttled(action=Action.MESSAGE, conn_id="c#1", delay=0.07))
    data = reader.get_metrics_data()
    assert data is not None
    metrics = {m.name: m for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}
    wait = metrics["rxws_limiter_wait_seconds"]
    assert wait.unit == "s"
    (point,) = wait.data.data_points
    assert list(point.explicit_bounds) == list(next(s for s in SERIES if s.name == wait.name).buckets)
    assert point.count == 1 and point.bucket_counts[2] == 1  # 0.05 < 0.07 <= 0.1
    assert dict(point.attributes or {}) == {"client": "c", "venue": "generic", "action": "message"}
    assert metrics["rxws_frames"].data.is_monotonic  # an observable counter
    meters.shutdown()


def test_a_negative_venue_latency_is_recorded_as_zero() -> None:
    from fake_client import HookedClient

    from rxws.protocols import Binance

    meters, reader = provider()
    exporter = OtelExporter(meters, clock=lambda: 1_700_000_000.0)  # 250 ms behind the venue
    client = HookedClient("h", Binance())
    exporter.attach(client)
    frame = '{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000250,"s":"BTCUSDT"}}'
    client.frame(frame)
    r = read(reader)
    labels = {"client": "h", "venue": "binance", "topic": "btcusdt@trade"}
    assert r("rxws_venue_latency_seconds_count", **labels) == 1
    assert r("rxws_venue_latency_seconds_sum", **labels) == 0.0
    assert r("rxws_inbound_bytes_total", **labels) == len(frame)
    meters.shutdown()


def test_without_opentelemetry_the_constructor_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"rxws\[otel\]"):
        OtelExporter()
