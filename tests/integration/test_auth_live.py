"""Login over real sockets for every dialect twin: MockVenue verifies the signature the venue's way,
refuses private topics before a login and a wrong secret with the venue's code, and pushes on a
private channel only after a login.

The ``exchange`` the Authenticator needs is built here over the client's public surface
(``client.send`` + ``client.messages``); the session's own ``exchange`` replaces it once the
client wiring lands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxws import WebSocketClient
from rxws._auth_flow import Authenticator, Exchange
from rxws.auth import Credentials
from rxws.core.clock import VenueClock
from rxws.events import Authenticated, AuthFailed, Event
from rxws.exceptions import AuthenticationError, VenueError
from rxws.protocols import Binance, Bybit, Deribit, GenericJson, Okx
from rxws.protocols.base import VenueProtocol
from rxws.testing import MockVenue

GOOD = Credentials(api_key="live-key-123456", secret="live-secret-abcdef", passphrase="live-phrase-9")
WRONG = Credentials(api_key="live-key-123456", secret="not-the-secret", passphrase="live-phrase-9")

CASES: list[tuple[str, Callable[[], VenueProtocol], str, Any, Any]] = [
    # dialect, protocol, private topic, code refusing it before login, code refusing a wrong secret
    ("generic", GenericJson, "private.orders", 401, 401),
    ("okx", Okx, "orders:instType=ANY", 60011, 60007),
    ("bybit", lambda: Bybit(category="private"), "order", None, None),
    ("deribit", lambda: Deribit(private=True), "user.orders.BTC-PERPETUAL.raw", 13009, 13004),
    ("binance", Binance, "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1", -2015, -1022),
]
IDS = [c[0] for c in CASES]


def socket_exchange(client: WebSocketClient) -> Exchange:
    """``exchange(frame, key, timeout)`` over ``client.send`` and ``client.messages``."""
    protocol = client.protocol

    def exchange(frame: Any, key: Any, timeout: float) -> Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> Any:
            reply = client.messages.pipe(
                ops.filter(lambda m: protocol.login_reply_key(m) == key),
                ops.take(1),
                ops.timeout(timeout, scheduler=client.scheduler),
            ).subscribe(observer, scheduler=scheduler)
            client.send(frame)
            return reply

        return reactivex.create(subscribe)

    return exchange


async def watch_first(client: WebSocketClient, topic: str, timeout: float = 5.0) -> tuple[Any, Any]:
    """The first message on ``topic``, or the watch's error: (message, None) or (None, error)."""
    done: asyncio.Future[tuple[Any, Any]] = asyncio.get_running_loop().create_future()

    def settle(value: tuple[Any, Any]) -> None:
        if not done.done():
            done.set_result(value)

    sub = client.watch(topic).subscribe(lambda m: settle((m, None)), lambda e: settle((None, e)))
    try:
        return await asyncio.wait_for(asyncio.shield(done), timeout)
    finally:
        sub.dispose()


@pytest.mark.parametrize(("name", "protocol", "topic", "before_code", "wrong_code"), CASES, ids=IDS)
async def test_login_then_private_channel(
    no_leaked_tasks: None,
    name: str,
    protocol: Callable[[], VenueProtocol],
    topic: str,
    before_code: Any,
    wrong_code: Any,
) -> None:
    async with MockVenue(rate=0, dialect=name, credentials=GOOD) as venue:
        client = WebSocketClient(venue.url, protocol=protocol(), ping_interval=None, subscribe_timeout=3)
        events: list[Event] = []
        await client.connect()
        try:
            # Before the login the venue refuses the private topic with its documented code.
            _, error = await watch_first(client, topic)
            assert isinstance(error, VenueError) and error.code == before_code
            assert venue.connections[0].topics == []

            auth = Authenticator(client.protocol, GOOD, VenueClock(), events.append, timeout=3.0)
            assert await auth.login(socket_exchange(client)) is None
            assert [type(e) for e in events] == [Authenticated]
            assert venue.core.auth is not None and venue.core.auth.logins == 1

            got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            sub = client.watch(topic).subscribe(lambda m: got.done() or got.set_result(m))
            await venue.wait_subscribed(topic)
            await asyncio.sleep(0)  # let the ack reach the client
            assert await venue.publish(topic, {"order": "filled"}) == 1
            message = await asyncio.wait_for(got, 3.0)
            assert "filled" in str(message)
            sub.dispose()
        finally:
            await client.close()


@pytest.mark.parametrize(("name", "protocol", "topic", "before_code", "wrong_code"), CASES, ids=IDS)
async def test_wrong_secret_is_refused_and_private_stays_closed(
    no_leaked_tasks: None,
    name: str,
    protocol: Callable[[], VenueProtocol],
    topic: str,
    before_code: Any,
    wrong_code: Any,
) -> None:
    async with MockVenue(rate=0, dialect=name, credentials=GOOD) as venue:
        client = WebSocketClient(venue.url, protocol=protocol(), ping_interval=None, subscribe_timeout=3)
        events: list[Event] = []
        await client.connect()
        try:
            auth = Authenticator(client.protocol, WRONG, VenueClock(), events.append, timeout=3.0)
            with pytest.raises(AuthenticationError) as caught:
                await auth.login(socket_exchange(client))
            assert caught.value.refused and caught.value.code == wrong_code
            [failed] = [e for e in events if isinstance(e, AuthFailed)]
            assert failed.code == wrong_code and "not-the-secret" not in failed.model_dump_json()
            _, error = await watch_first(client, topic)
            assert isinstance(error, VenueError) and error.code == before_code
            assert venue.core.auth is not None and venue.core.auth.logins == 0
        finally:
            await client.close()


async def test_okx_login_without_an_answer_times_out(no_leaked_tasks: None) -> None:
    """A venue that never answers the login: the Authenticator fails (not refused) after its
    timeout and leaves nothing pending."""
    async with MockVenue(rate=0, dialect="okx") as venue:  # no credentials: logins go unanswered
        client = WebSocketClient(venue.url, protocol=Okx(), ping_interval=None)
        events: list[Event] = []
        await client.connect()
        try:
            auth = Authenticator(client.protocol, GOOD, VenueClock(), events.append, timeout=0.3)
            with pytest.raises(AuthenticationError) as caught:
                await auth.login(socket_exchange(client))
            assert not caught.value.refused
            assert [type(e) for e in events] == [AuthFailed]
        finally:
            await client.close()
