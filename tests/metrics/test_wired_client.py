"""The real client calling the instrumentation hook: bytes per topic and request round trips.

It checks, over real sockets, that the bytes exported per topic are the sizes of the frames the
venue sent, and that every request's end is one round trip with its outcome.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

from rxws import WebSocketClient  # noqa: E402
from rxws.exceptions import RequestTimeout, VenueError  # noqa: E402
from rxws.metrics import PrometheusExporter  # noqa: E402
from rxws.metrics._collect import MetricsCore  # noqa: E402
from rxws.protocols import GenericJson  # noqa: E402
from rxws.protocols.base import json_dumps  # noqa: E402
from rxws.testing import MockVenue  # noqa: E402

pytestmark = pytest.mark.integration


def samples(core: MetricsCore) -> dict[tuple[str, tuple[str, ...]], Any]:
    return {(s.name, labels): value for s, labels, value in core.collect()}


async def test_bytes_per_topic_and_round_trips_from_the_real_client(no_leaked_tasks: None) -> None:
    exporter = PrometheusExporter(prometheus_client.CollectorRegistry())
    core: MetricsCore = exporter._core
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None, name="w")
        exporter.attach(client)
        got: list[Any] = []
        done = asyncio.Event()

        def on_tick(message: Any) -> None:
            got.append(message)
            if len(got) == 4:
                done.set()

        await client.connect()
        client.watch("t.a", "t.b").subscribe(on_tick)
        await venue.wait_subscribed("t.a", "t.b")
        for payload in ({"p": 1}, {"p": "é" * 10}):  # one frame with non-ASCII text: bytes, not chars
            for topic in ("t.a", "t.b"):
                await venue.publish(topic, payload)
        await asyncio.wait_for(done.wait(), 10.0)
        assert await client.request("echo", {"x": 1}, timeout=5.0) == {"x": 1}
        with pytest.raises(VenueError):
            await client.request("fail", {"code": 7, "message": "no"}, timeout=5.0)
        with pytest.raises(RequestTimeout):
            await client.request("sleep", {"seconds": 2.0}, timeout=0.2)
        assert client.outbound_queue_depth == 0
        got_samples = samples(core)
        await client.close()
    base = ("w", "generic")
    for topic in ("t.a", "t.b"):
        frames = [json_dumps(m) for m in got if m["topic"] == topic]
        assert got_samples[("rxws_inbound_bytes", (*base, topic))] == sum(len(f.encode()) for f in frames)
        assert got_samples[("rxws_messages", (*base, topic))] == 2
    assert got_samples[("rxws_inbound_bytes", (*base, "(no topic)"))] > 0  # the acks and replies
    durations = {
        labels[2:]: value
        for (name, labels), value in got_samples.items()
        if name == "rxws_request_duration_seconds"
    }
    assert {k: v[2] for k, v in durations.items()} == {
        ("echo", "ok"): 1,
        ("fail", "error"): 1,
        ("sleep", "timeout"): 1,
    }
    assert durations["sleep", "timeout"][1] >= 0.2
