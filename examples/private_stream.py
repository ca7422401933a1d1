"""A private stream: log in to an OKX-speaking MockVenue, then watch the ``orders`` channel.

The venue verifies the OKX login signature with a known secret, refuses private channels before a
login (60011) and a wrong secret (60007). Until the client wires logins in itself (``credentials=``
on ``WebSocketClient``), the login runs here over the client's public ``send`` and ``messages``.
A keepalive task runs every half second while connected (``client.every`` will expose it)::

    python examples/private_stream.py
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxws import ConnectionState, Credentials, WebSocketClient
from rxws._auth_flow import Authenticator
from rxws._every import every
from rxws.core.clock import VenueClock
from rxws.events import Event
from rxws.exceptions import AuthenticationError, VenueError
from rxws.protocols import Okx
from rxws.testing import MockVenue

CREDENTIALS = Credentials(api_key="example-key-1", secret="example-secret-2", passphrase="example-phrase")
ORDERS = "orders:instType=ANY"


def exchange_over(client: WebSocketClient) -> Any:
    """``exchange(frame, key, timeout)``: send a login frame, yield the reply the dialect pairs with it."""

    def exchange(frame: Any, key: Any, timeout: float) -> Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> Any:
            reply = client.messages.pipe(
                ops.filter(lambda m: client.protocol.login_reply_key(m) == key),
                ops.take(1),
                ops.timeout(timeout, scheduler=client.scheduler),
            ).subscribe(observer, scheduler=scheduler)
            client.send(frame)
            return reply

        return reactivex.create(subscribe)

    return exchange


def show(event: Event) -> None:
    print(
        f"event  {event.kind}: {event.model_dump(mode='json', exclude={'at', 'kind'}, exclude_defaults=True)}"
    )


async def first(client: WebSocketClient, topic: str) -> Any:
    done = asyncio.get_running_loop().create_future()
    sub = client.watch(topic).subscribe(
        lambda m: done.done() or done.set_result(m), lambda e: done.done() or done.set_result(e)
    )
    try:
        return await asyncio.wait_for(done, 5.0)
    finally:
        sub.dispose()


async def run(venue: MockVenue) -> None:
    client = WebSocketClient(venue.url, protocol=Okx(), ping_interval=None)
    await client.connect()
    refused = await first(client, ORDERS)
    if isinstance(refused, VenueError):
        print(f"refused before login: {refused.code} {refused.message}")

    auth = Authenticator(client.protocol, CREDENTIALS, VenueClock(), show)
    await auth.login(exchange_over(client))
    print(f"authenticated: {auth.authenticated}")

    assert client.scheduler is not None
    beats: list[int] = []
    keepalive = every(
        0.5,
        lambda: beats.append(len(beats) + 1),
        scheduler=client.scheduler,
        connected=client.state.pipe(ops.map(lambda s: s is ConnectionState.CONNECTED)),
        emit=show,
        name="keepalive",
    )
    push = asyncio.ensure_future(first(client, ORDERS))
    await venue.wait_subscribed(ORDERS)
    await asyncio.sleep(0.05)
    await venue.publish(ORDERS, {"ordId": "312269865356374016", "state": "filled"})
    print(f"private push: {await push}")
    await asyncio.sleep(1.1)
    keepalive.dispose()
    print(f"keepalive runs: {len(beats)}")
    await client.close()

    wrong = WebSocketClient(venue.url, protocol=Okx(), ping_interval=None)
    await wrong.connect()
    bad = Credentials(api_key="example-key-1", secret="not-it", passphrase="example-phrase")
    try:
        await Authenticator(wrong.protocol, bad, VenueClock(), show).login(exchange_over(wrong))
    except AuthenticationError as exc:
        print(f"wrong secret: {exc}")
    await wrong.close()


async def main() -> int:
    async with MockVenue(rate=0, dialect="okx", credentials=CREDENTIALS) as venue:
        await run(venue)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
