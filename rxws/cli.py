"""The ``rxws`` command: ``demo``, ``mock-venue`` and ``listen``.

``rxws demo`` is the README's main job: an embedded MockVenue, a client watching two topics, a
correlated request, state changes, events and message rates, a venue drop with a reconnection the
demo's policy approves, the gap it reports, and a graceful close. Errors print one clear line and
exit non-zero; the library itself never prints (it logs under the ``rxws`` logger).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from rxws import __version__
from rxws.client import WebSocketClient
from rxws.core.backoff import ExponentialBackoff
from rxws.events import Event, ReconnectProposed
from rxws.exceptions import RxwsError
from rxws.protocols import GenericJson
from rxws.protocols.base import VenueProtocol
from rxws.reconnect import ReconnectPolicy
from rxws.testing import MockVenue

__all__ = ["main"]

log = logging.getLogger("rxws.cli")


def _protocols() -> dict[str, type[VenueProtocol]]:
    import rxws.protocols as p

    known: dict[str, type[VenueProtocol]] = {"generic": GenericJson}
    for name, attr in (("binance", "Binance"), ("okx", "Okx"), ("bybit", "Bybit"), ("deribit", "Deribit")):
        cls = getattr(p, attr, None)
        if cls is not None:
            known[name] = cls
    jsonrpc = getattr(p, "JsonRpc", None)
    if jsonrpc is not None:
        known["jsonrpc"] = jsonrpc
    return known


class _Printer:
    """Readable, timestamped lines for the demo."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.monotonic()

    def line(self, tag: str, text: str) -> None:
        print(f"{time.monotonic() - self.t0:6.2f}s  {tag:<9} {text}", file=self.out, flush=True)


def _describe(event: Event) -> str:
    fields = event.model_dump(exclude={"at", "kind"}, exclude_defaults=True)
    inner = ", ".join(f"{k}={v}" for k, v in fields.items())
    return f"{type(event).__name__}({inner})"


async def run_demo(duration: float, out: TextIO = sys.stdout) -> int:
    """The demo's script; returns the exit status."""
    p = _Printer(out)
    topics = ("trades.BTC-USD", "book.ETH-USD")
    async with MockVenue(rate=20) as venue:
        p.line("venue", f"MockVenue listening on {venue.url} (GenericJson dialect, 20 msgs/s per topic)")

        def approve(proposal: ReconnectProposed) -> bool:
            p.line(
                "policy",
                f"asked to reconnect (attempt {proposal.attempt}, in {proposal.delay:.2f}s): approved",
            )
            return True

        policy = ReconnectPolicy(
            backoff=ExponentialBackoff(initial=0.2, max_delay=2.0, seed=7), approve=approve
        )
        client = WebSocketClient(venue.url, protocol=GenericJson(), reconnect=policy, name="demo")
        counts: Counter[str] = Counter()
        client.state.subscribe(lambda s: p.line("state", str(s)))
        client.events.subscribe(lambda e: p.line("event", _describe(e)))
        await client.connect()
        sub = client.watch(*topics).subscribe(lambda m: counts.update([m["topic"]]))
        await venue.wait_subscribed(*topics)
        reply = await client.request("echo", {"hello": "venue"}, timeout=2.0)
        p.line("request", f"echo -> {reply} (correlated by id)")
        end = time.monotonic() + duration
        dropped = False
        last = dict(counts)
        while time.monotonic() < end:
            await asyncio.sleep(1.0)
            rates = ", ".join(f"{t} {counts[t] - last.get(t, 0)}/s" for t in topics)
            last = dict(counts)
            p.line("rates", rates)
            if not dropped and time.monotonic() > end - duration / 2:
                dropped = True
                p.line("venue", "dropping every connection abruptly (no close frame)")
                venue.skip_sequence(topics[0], 3)
                venue.drop_all()
        sub.dispose()
        await client.close()
        p.line("done", f"{sum(counts.values())} messages; stats {client.stats.as_dict()}")
    return 0


async def run_mock_venue(port: int, dialect: str, rate: float, out: TextIO = sys.stdout) -> int:
    async with MockVenue(port=port, dialect=dialect, rate=rate) as venue:
        print(f"mock venue ({dialect}) listening on {venue.url} — Ctrl-C to stop", file=out, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    return 0


async def run_listen(url: str, protocol: str, topics: Sequence[str], reconnect: bool, out: TextIO) -> int:
    known = _protocols()
    if protocol not in known:
        raise RxwsError(f"unknown protocol {protocol!r}; known: {', '.join(sorted(known))}")
    policy = ReconnectPolicy() if reconnect else None
    client = WebSocketClient(url, protocol=known[protocol](), reconnect=policy)
    client.events.subscribe(lambda e: print(e.model_dump_json(), file=sys.stderr, flush=True))
    await client.connect()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, done.set)

    def emit(message: Any) -> None:
        print(json.dumps(message, separators=(",", ":"), default=str), file=out, flush=True)

    client.watch(*topics).subscribe(emit, on_error=lambda e: done.set(), on_completed=done.set)
    client.state.subscribe(
        lambda s: done.set() if s.value in ("ERROR", "DISCONNECTED") and not reconnect else None
    )
    await done.wait()
    await client.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rxws", description="Reactive WebSocket client for trading venues.")
    parser.add_argument("--version", action="version", version=f"rxws {__version__}")
    parser.add_argument("--log-level", default="WARNING", help="logging level for the rxws logger")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a live run against the embedded mock venue")
    demo.add_argument("--duration", type=float, default=8.0, help="seconds to run (default 8)")
    mock = sub.add_parser("mock-venue", help="serve the mock venue for other programs")
    mock.add_argument("--port", type=int, default=0)
    mock.add_argument("--dialect", default="generic")
    mock.add_argument("--rate", type=float, default=10.0, help="messages per second per topic")
    listen = sub.add_parser("listen", help="print a venue's messages as JSON lines")
    listen.add_argument("url")
    listen.add_argument("--protocol", default="generic")
    listen.add_argument("--watch", nargs="+", required=True, metavar="TOPIC")
    listen.add_argument("--reconnect", action="store_true", help="reconnect with the default backoff")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxws`` console script."""
    args = _parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"rxws: error: unknown log level {args.log_level!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            if args.duration <= 0:
                raise RxwsError("--duration must be > 0")
            return asyncio.run(run_demo(args.duration))
        if args.command == "mock-venue":
            from rxws.testing.dialects import server_dialect

            server_dialect(args.dialect)  # unknown names fail here, with the list
            return asyncio.run(run_mock_venue(args.port, args.dialect, args.rate))
        return asyncio.run(run_listen(args.url, args.protocol, args.watch, args.reconnect, sys.stdout))
    except KeyboardInterrupt:
        return 130
    except (RxwsError, ValueError, OSError) as exc:
        print(f"rxws: error: {exc}", file=sys.stderr)
        return 1
