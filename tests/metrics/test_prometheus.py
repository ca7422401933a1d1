"""PrometheusExporter: ``/metrics`` served on loopback and scraped over HTTP during a MockVenue run."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from fake_client import FakeClient  # noqa: E402
from live import LiveRun, Readings, check_first, check_second  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from rxws import WebSocketClient  # noqa: E402
from rxws.exceptions import UsageError  # noqa: E402
from rxws.metrics import SERIES, PrometheusExporter  # noqa: E402
from rxws.protocols import Binance  # noqa: E402
from rxws.testing import MockVenue  # noqa: E402
from rxws.testing.dialects import BinanceServerDialect  # noqa: E402

pytestmark = pytest.mark.integration


async def scrape(url: str) -> tuple[str, Readings]:
    """GET ``url`` (in a thread: the server answers from its own) and parse the text format."""

    def get() -> str:
        with urllib.request.urlopen(url, timeout=10.0) as response:
            assert response.status == 200
            return str(response.read().decode())

    text = await asyncio.to_thread(get)
    values: dict[Any, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name, frozenset(sample.labels.items())] = sample.value
    return text, Readings(values)


async def test_scraped_series_match_the_clients_counters(
    no_leaked_tasks: None, timeline: Callable[..., Any]
) -> None:
    async with MockVenue(rate=0) as venue:  # data only when the test publishes it
        await _scraped_run(venue, timeline)


async def _scraped_run(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    registry = prometheus_client.CollectorRegistry()
    exporter = PrometheusExporter(registry)
    run = LiveRun(venue, timeline)
    exporter.attach(run.a)
    exporter.attach(run.b)
    with exporter.serve(port=0) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        await run.first(exporter.sink(run.a))
        text, readings = await scrape(server.url)
        check_first(readings, run)
        for series in SERIES:  # every series is described, with its help text
            assert f"# HELP {series.name}" in text
        await run.second(exporter.sink(run.a))
        _, readings = await scrape(server.url)
        check_second(readings, run)
        await run.close()
        _, readings = await scrape(server.url)
        assert readings("rxws_connected", client="a", venue="generic") == 0
    exporter.close()


class StampedBinance(BinanceServerDialect):
    """MockVenue's Binance, with ``E`` the wall clock when the frame is built (as Binance does)."""

    def data(self, topic: str, seq: int, payload: Any) -> str:
        frame = super().data(topic, seq, payload)
        return frame.replace(f'"E":{seq},', f'"E":{int(time.time() * 1000)},', 1)


async def test_venue_latency_from_the_event_time(no_leaked_tasks: None) -> None:
    registry = prometheus_client.CollectorRegistry()
    exporter = PrometheusExporter(registry, max_topics=1)
    topics = ("btcusdt@trade", "ethusdt@trade")
    async with MockVenue(dialect=StampedBinance(), rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=Binance(), ping_interval=None, name="bn")
        exporter.attach(client)
        got: list[Any] = []
        done = asyncio.Event()

        def on_trade(message: Any) -> None:
            got.append(message)
            if len(got) == 10:
                done.set()

        await client.connect()
        client.watch(*topics).subscribe(on_trade)
        await venue.wait_subscribed(*topics)
        for i in range(5):
            for topic in topics:
                await venue.publish(topic, {"p": str(i)})
        await asyncio.wait_for(done.wait(), 10.0)
        received_by = time.time()
        with exporter.serve() as server:
            _, r = await scrape(server.url)
        await client.close()
    bn = {"client": "bn", "venue": "binance"}
    # max_topics=1: the first topic keeps its label, the second is "other"
    assert r("rxws_messages_total", **bn, topic="btcusdt@trade") == 5
    assert r("rxws_messages_total", **bn, topic="other") == 5
    stamps = [m["data"]["E"] / 1000 for m in got]
    assert all(abs(s - received_by) < 30 for s in stamps)  # the dialect stamped the wall clock
    for topic in ("btcusdt@trade", "other"):
        count = r("rxws_venue_latency_seconds_count", **bn, topic=topic)
        total = r("rxws_venue_latency_seconds_sum", **bn, topic=topic)
        assert count == 5
        assert 0 <= total / count <= 10  # loopback: E is floored to the ms, so never negative
        assert r("rxws_venue_latency_seconds_bucket", **bn, topic=topic, le="+Inf") == 5


def test_one_exporter_per_registry_and_the_text_format() -> None:
    registry = prometheus_client.CollectorRegistry()
    exporter = PrometheusExporter(registry)
    with pytest.raises(UsageError, match="one exporter per registry"):
        PrometheusExporter(registry)
    client = FakeClient("c")
    exporter.attach(client)
    client.messages.on_next({"topic": "t", "seq": 1, "data": {}})
    assert 'rxws_messages_total{client="c",topic="t",venue="generic"} 1.0' in exporter.text()
    assert exporter.clients == ["c"]
    exporter.close()
    exporter.close()  # idempotent
    assert "rxws_messages_total" not in prometheus_client.generate_latest(registry).decode()


def test_without_prometheus_client_the_constructor_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "prometheus_client" or m.startswith("prometheus_client.")]:
        monkeypatch.setitem(sys.modules, name, None)  # "not installed"
    with pytest.raises(ImportError, match=r"rxws\[prometheus\]"):
        PrometheusExporter()
