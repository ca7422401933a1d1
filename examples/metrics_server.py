"""Serve a client's metrics on ``/metrics`` for Prometheus while it runs against a MockVenue.

The client watches two topics, sends a few requests, loses its connection once and reconnects;
meanwhile ``http://127.0.0.1:<port>/metrics`` serves what it knows (extra ``prometheus``). At the
end the script scrapes its own endpoint, as Prometheus would, and prints the series::

    python examples/metrics_server.py [--port 9464] [--seconds 3]

Point Prometheus at the printed URL (and pass ``--seconds 600``) to watch it on a dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import urllib.request

from rxws import ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.events import Reconnected
from rxws.metrics import PrometheusExporter
from rxws.protocols import GenericJson
from rxws.testing import MockVenue

TOPICS = ("trades.BTC-USD", "book.ETH-USD")


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5.0) as response:
        return str(response.read().decode())


async def run(port: int, seconds: float) -> None:
    exporter = PrometheusExporter()  # prometheus_client's default registry
    async with MockVenue(rate=20) as venue:
        client = WebSocketClient(
            venue.url,
            protocol=GenericJson(),
            reconnect=ReconnectPolicy(backoff=ExponentialBackoff(0.05, 2.0, 1.0, jitter="none")),
            name="demo",
        )
        exporter.attach(client)
        reconnected = asyncio.Event()
        client.events.subscribe(lambda e: reconnected.set() if isinstance(e, Reconnected) else None)
        with exporter.serve(port=port) as server:
            print(f"serving {server.url}")
            await client.connect()
            client.watch(*TOPICS).subscribe()
            for i in range(5):
                await client.request("echo", {"i": i}, timeout=5.0)
            await asyncio.sleep(seconds / 2)
            venue.drop_all()  # the venue drops us: a reconnection, a disconnect gap per topic
            await asyncio.wait_for(reconnected.wait(), 10.0)
            await asyncio.sleep(seconds / 2)
            text = await asyncio.to_thread(scrape, server.url)
            await client.close()
    for line in text.splitlines():
        if line.startswith("rxws_") and "_bucket{" not in line:
            print(line)
    print(f"done: {client.stats.frames_in} frames in")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to serve /metrics on (0: a free one)")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long the client runs")
    args = parser.parse_args()
    asyncio.run(run(args.port, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
