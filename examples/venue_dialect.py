"""One venue dialect, against the real venue or an embedded MockVenue that speaks it.

With no URL, an embedded MockVenue speaking the dialect runs on 127.0.0.1 and nothing else is
touched. Give a URL to connect to the venue itself (public market data, no key needed)::

    python examples/venue_dialect.py --dialect okx
    python examples/venue_dialect.py --dialect binance wss://stream.binance.com:9443/stream
    python examples/venue_dialect.py --dialect okx wss://ws.okx.com:8443/ws/v5/public
    python examples/venue_dialect.py --dialect bybit wss://stream.bybit.com/v5/public/linear
    python examples/venue_dialect.py --dialect deribit wss://www.deribit.com/ws/api/v2

The protocol object is the only venue-specific piece: it encodes subscribes, reads topics,
sequence numbers and errors, and the venue's rate-limit preset paces what the client sends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from rxws import WebSocketClient
from rxws.events import Event
from rxws.protocols import Binance, Bybit, Deribit, Okx, VenueProtocol
from rxws.ratelimit import VenueRateLimiter, presets
from rxws.testing import MockVenue

# dialect -> (protocol factory, rate-limit preset, topics to watch, the venue's public URL)
DIALECTS: dict[
    str, tuple[Callable[[], VenueProtocol], Callable[[], VenueRateLimiter], tuple[str, ...], str]
] = {
    "binance": (
        Binance,
        presets.binance_spot,
        ("btcusdt@trade", "ethusdt@trade"),
        "wss://stream.binance.com:9443/stream",
    ),
    "okx": (Okx, presets.okx, ("trades:BTC-USDT", "books5:ETH-USDT"), "wss://ws.okx.com:8443/ws/v5/public"),
    "bybit": (
        Bybit,
        presets.bybit,
        ("publicTrade.BTCUSDT", "orderbook.1.ETHUSDT"),
        "wss://stream.bybit.com/v5/public/linear",
    ),
    "deribit": (
        Deribit,
        presets.deribit,
        ("trades.BTC-PERPETUAL.100ms", "book.ETH-PERPETUAL.100ms"),
        "wss://www.deribit.com/ws/api/v2",
    ),
}


async def run(url: str, dialect: str, count: int, timeout: float) -> int:
    make_protocol, make_limiter, topics, _ = DIALECTS[dialect]
    client = WebSocketClient(url, protocol=make_protocol(), rate_limiter=make_limiter())

    def on_event(event: Event) -> None:
        if event.kind != "subscription_changed":
            print(f"event    {event.kind}: {event.model_dump(mode='json', exclude={'at', 'kind'})}")

    client.events.subscribe(on_event)
    client.state.subscribe(lambda state: print(f"state    {state}"))
    received: list[Any] = []
    enough = asyncio.Event()

    def on_message(message: Any) -> None:
        received.append(message)
        if len(received) <= count:
            print("message ", json.dumps(message, default=str)[:160])
        if len(received) >= count:
            enough.set()

    await client.connect()
    sub = client.watch(*topics).subscribe(on_message)
    try:
        await asyncio.wait_for(enough.wait(), timeout)
    except TimeoutError:
        print(f"only {len(received)} of {count} messages within {timeout:g}s")
    sub.dispose()
    await client.close()
    print(f"{dialect}: {len(received)} messages on {', '.join(topics)}")
    return 0 if received else 1


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dialect", choices=sorted(DIALECTS), default="binance")
    parser.add_argument("url", nargs="?", help="the venue's URL; an embedded MockVenue when omitted")
    parser.add_argument("--count", type=int, default=6, help="stop after this many messages")
    parser.add_argument("--timeout", type=float, default=10.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    if args.url:
        return await run(args.url, args.dialect, args.count, args.timeout)
    async with MockVenue(dialect=args.dialect, rate=20) as venue:
        print(f"MockVenue speaking {args.dialect} on {venue.url} (pass a URL to use the real venue)")
        return await run(venue.url, args.dialect, args.count, min(args.timeout, 4.0))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
