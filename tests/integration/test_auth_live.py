"""Login over real sockets for every dialect twin, through the client's own ``credentials=``:
MockVenue verifies the signature the venue's way, refuses a private topic before a login and a
wrong secret with the venue's code, and pushes on a private channel only after a login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from rxws import ExponentialBackoff, ReconnectPolicy, WebSocketClient
from rxws.auth import Credentials
from rxws.events import Authenticated, AuthFailed, Event, ReconnectProposed
from rxws.exceptions import AuthenticationError, VenueError
from rxws.protocols import Binance, Bybit, Deribit, GenericJson, Okx
from rxws.protocols.base import VenueProtocol
from rxws.testing import MockVenue

GOOD = Credentials(api_key="live-key-123456", secret="live-secret-abcdef", passphrase="live-phrase-9")
WRONG = Credentials(api_key="live-key-123456", secret="not-the-secret", passphrase="live-phrase-9")


class Case(NamedTuple):
    """One dialect twin: how the client speaks it and how the venue refuses it."""

    name: str  # the MockVenue dialect
    protocol: Callable[[], VenueProtocol]
    topic: str  # a private topic
    before_code: Any  # the code refusing the private topic before a login
    wrong_code: Any  # the code refusing a wrong secret

    def venue(self) -> MockVenue:
        """The dialect twin on a free loopback port, knowing the GOOD credentials."""
        return MockVenue(rate=0, dialect=self.name, credentials=GOOD)

    def client(self, venue: MockVenue, **options: Any) -> WebSocketClient:
        """A client of ``venue`` speaking this dialect (no pings; subscribes time out after 3 s)."""
        return WebSocketClient(
            venue.url, protocol=self.protocol(), ping_interval=None, subscribe_timeout=3, **options
        )


CASES = [
    Case("generic", GenericJson, "private.orders", 401, 401),
    Case("okx", Okx, "orders:instType=ANY", 60011, 60007),
    Case("bybit", lambda: Bybit(category="private"), "order", None, None),
    Case("deribit", lambda: Deribit(private=True), "user.orders.BTC-PERPETUAL.raw", 13009, 13004),
    Case(
        "binance", Binance, "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1", -2015, -1022
    ),
]
IDS = [c.name for c in CASES]


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


async def publish_when_subscribed(venue: MockVenue, topic: str, payload: Any) -> None:
    await venue.wait_subscribed(topic)
    await asyncio.sleep(0.05)  # let the ack reach the client before the push
    assert await venue.publish(topic, payload) == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_without_credentials_the_venue_refuses_the_private_topic(
    no_leaked_tasks: None,
    case: Case,
) -> None:
    topic = case.topic
    async with case.venue() as venue:
        client = case.client(venue)
        await client.connect()
        try:
            _, error = await watch_first(client, topic)
            assert isinstance(error, VenueError) and error.code == case.before_code
            assert venue.connections[0].topics == []
        finally:
            await client.close()


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_credentials_log_in_then_the_private_channel_pushes(
    no_leaked_tasks: None,
    case: Case,
) -> None:
    topic = case.topic
    async with case.venue() as venue:
        client = case.client(venue, credentials=GOOD)
        events: list[Event] = []
        client.events.subscribe(events.append)
        try:
            await client.connect()
            assert [type(e) for e in events if isinstance(e, Authenticated | AuthFailed)] == [Authenticated]
            assert venue.core.auth is not None and venue.core.auth.logins == 1
            assert client.clock.offset is not None  # the handshake's Date (and login replies)
            push = asyncio.ensure_future(publish_when_subscribed(venue, topic, {"order": "filled"}))
            message, error = await watch_first(client, topic)
            await push
            assert error is None and "filled" in str(message)
        finally:
            await client.close()


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_reconnection_logs_in_again_before_restoring(
    no_leaked_tasks: None,
    case: Case,
) -> None:
    topic = case.topic
    backoff = ExponentialBackoff(0.05, 2.0, 1.0, jitter="none")
    async with case.venue() as venue:
        client = case.client(venue, credentials=GOOD, reconnect=ReconnectPolicy(backoff=backoff))
        got: list[Any] = []
        sub = client.watch(topic).subscribe(got.append)
        try:
            await client.connect()
            await venue.wait_subscribed(topic)
            auth = venue.core.auth
            assert auth is not None and auth.logins == 1
            venue.drop_all()
            await venue.wait_for(lambda: auth.logins == 2)  # the new connection logs in ...
            await venue.wait_subscribed(topic)  # ... then restores: the venue refuses it before a login
            await asyncio.sleep(0.05)
            assert await venue.publish(topic, {"order": "after"}) >= 1
            for _ in range(100):
                if got:
                    break
                await asyncio.sleep(0.02)
            assert got and "after" in str(got[-1])
        finally:
            sub.dispose()
            await client.close()


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_wrong_secret_is_refused_and_private_stays_closed(
    no_leaked_tasks: None,
    caplog: Any,
    case: Case,
) -> None:
    topic = case.topic
    caplog.set_level(logging.DEBUG)
    async with case.venue() as venue:
        client = case.client(venue, credentials=WRONG, reconnect=ReconnectPolicy())
        events: list[Event] = []
        client.events.subscribe(events.append)
        errors: list[Exception] = []
        client.watch(topic).subscribe(on_error=errors.append)
        try:
            with pytest.raises(AuthenticationError) as caught:
                await client.connect()
            assert caught.value.refused and caught.value.code == case.wrong_code
            [failed] = [e for e in events if isinstance(e, AuthFailed)]
            assert failed.code == case.wrong_code
            assert [type(e) for e in errors] == [AuthenticationError]
            assert not [e for e in events if isinstance(e, ReconnectProposed)]
            assert venue.core.auth is not None and venue.core.auth.logins == 0
            assert len(venue.core.auth.refusals) == 1  # one attempt: nothing hammers the venue
            for text in (repr(client), " ".join(e.model_dump_json() for e in events), caplog.text):
                assert "not-the-secret" not in text
        finally:
            await client.close()


async def test_okx_login_without_an_answer_times_out(no_leaked_tasks: None) -> None:
    """A venue that never answers the login: the connect fails (not refused) after login_timeout."""
    async with MockVenue(rate=0, dialect="okx") as venue:  # no credentials: logins go unanswered
        client = WebSocketClient(
            venue.url, protocol=Okx(), ping_interval=None, credentials=GOOD, login_timeout=0.3
        )
        events: list[Event] = []
        client.events.subscribe(events.append)
        try:
            with pytest.raises(AuthenticationError) as caught:
                await client.connect()
            assert not caught.value.refused
            assert [type(e) for e in events if isinstance(e, AuthFailed)] == [AuthFailed]
            assert client.pending_requests == 0
        finally:
            await client.close()
