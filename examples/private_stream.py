"""A private stream: an OKX-speaking MockVenue, ``credentials=`` on the client, the ``orders`` channel.

The venue verifies the OKX login signature with a known secret, refuses private channels before a
login (60011) and a wrong secret (60007). The client logs in by itself as the first step of every
connection (so also after an approved reconnection, before the private topic is restored), signs
with its estimate of the venue's clock (``client.clock``, fed by the handshake's ``Date``), and
runs a keepalive task every half second while connected (``client.every``)::

    python examples/private_stream.py
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from rxws import Credentials, ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.events import Event
from rxws.exceptions import AuthenticationError
from rxws.protocols import Okx
from rxws.testing import MockVenue

CREDENTIALS = Credentials(api_key="example-key-1", secret="example-secret-2", passphrase="example-phrase")
ORDERS = "orders:instType=ANY"


def show(event: Event) -> None:
    if event.kind in ("authenticated", "auth_failed", "clock_skew", "reconnected", "keepalive_failed"):
        detail = event.model_dump(mode="json", exclude={"at", "kind"}, exclude_defaults=True)
        print(f"event  {event.kind}: {detail}")


async def next_message(got: asyncio.Queue[Any], venue: MockVenue, payload: Any) -> Any:
    await venue.wait_subscribed(ORDERS)
    await asyncio.sleep(0.05)  # let the subscription's ack reach the client
    await venue.publish(ORDERS, payload)
    return await asyncio.wait_for(got.get(), 5.0)


async def run(venue: MockVenue) -> None:
    policy = ReconnectPolicy(backoff=ExponentialBackoff(0.05, 2.0, 1.0, jitter="none"))
    client = WebSocketClient(
        venue.url, protocol=Okx(), ping_interval=None, credentials=CREDENTIALS, reconnect=policy
    )
    client.events.subscribe(show)
    beats: list[int] = []
    client.every(0.5, lambda: beats.append(len(beats) + 1), name="keepalive")
    got: asyncio.Queue[Any] = asyncio.Queue()
    sub = client.watch(ORDERS).subscribe(got.put_nowait)
    await client.connect()
    offset = client.clock.offset
    print(f"venue clock offset: {offset if offset is None else round(offset, 1)} s")
    print(f"private push: {await next_message(got, venue, {'ordId': '1', 'state': 'filled'})}")

    auth = venue.core.auth
    assert auth is not None
    venue.drop_all()  # the client logs in again, then restores the private topic
    await venue.wait_for(lambda: auth.logins == 2)
    print(f"after reconnect: {await next_message(got, venue, {'ordId': '2', 'state': 'live'})}")
    await asyncio.sleep(0.6)
    print(f"keepalive runs: {len(beats)} (logins at the venue: {auth.logins})")
    sub.dispose()
    await client.close()

    bad = Credentials(api_key="example-key-1", secret="not-it", passphrase="example-phrase")
    wrong = WebSocketClient(venue.url, protocol=Okx(), ping_interval=None, credentials=bad)
    wrong.events.subscribe(show)
    try:
        await wrong.connect()
    except AuthenticationError as exc:
        print(f"wrong secret: {exc}")
    await wrong.close()


async def main() -> int:
    async with MockVenue(rate=0, dialect="okx", credentials=CREDENTIALS) as venue:
        await run(venue)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
