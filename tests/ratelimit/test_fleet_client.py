"""Clients on a shared ledger (a real redis-server): one id per connection, connects awaited.

Two clients of one venue URL sharing a limiter are two connections to it (their own ids, their own
per-connection budgets, their own slots and releases), and a connect whose decision the fleet
ledger makes is awaited on the loop (``limiter.acquire_connect_async``) instead of being polled
every 2 ms (which showed as a ``Throttled(delay=0.002)`` per poll).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

pytest.importorskip("redis", reason="the redis extra (redis-py) is not installed")

from redis_server import RedisServer, running_redis

from rxws import ConnectionLost, ConnectionState, RateLimitExceeded, WebSocketClient
from rxws.protocols import GenericJson
from rxws.ratelimit import (
    Action,
    ConnectionReleased,
    RateLimitEvent,
    Rejected,
    Scope,
    Throttled,
    VenueRateLimiter,
    presets,
)
from rxws.ratelimit.fleet import FleetLedger
from rxws.testing import MockVenue

pytestmark = [pytest.mark.redis, pytest.mark.integration]


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with running_redis() as made:
        yield made


@pytest.fixture
async def ledger(server: RedisServer) -> AsyncIterator[FleetLedger]:
    made = FleetLedger.from_url(
        server.url, prefix=f"client-{uuid.uuid4().hex[:10]}", timeout=2.0
    )  # not a timeout test: a loaded machine may answer late
    yield made
    await made.aclose()


def _client(url: str, limiter: VenueRateLimiter) -> WebSocketClient:
    return WebSocketClient(url, protocol=GenericJson(), rate_limiter=limiter, ping_interval=None)


async def test_two_clients_of_one_url_on_a_shared_okx_are_two_connections_and_never_poll(
    ledger: FleetLedger,
) -> None:
    limiter = presets.okx(shared=ledger, venue=None)  # 3 connects / s / IP, decided in Redis
    seen: list[RateLimitEvent] = []
    limiter.add_listener(seen.append)
    async with MockVenue(rate=0) as venue:
        a, b, c = (_client(venue.url, limiter) for _ in range(3))
        waits: list[Throttled] = []  # the session's waits go to its client's stream
        for client in (a, b, c):
            client.rate_limit_events.subscribe(
                lambda e: waits.append(e) if isinstance(e, Throttled) else None
            )
        try:
            await a.connect()
            await b.connect()
            assert a.conn_id is not None and b.conn_id is not None and a.conn_id != b.conn_id
            assert a.conn_id.startswith(f"{venue.url}#") and b.conn_id.startswith(f"{venue.url}#")
            a.watch("t.1", "t.2").subscribe()
            b.watch("t.3").subscribe()
            await venue.wait_subscribed("t.1", "t.2")
            await venue.wait_subscribed("t.3")
            # okx counts subscriptions per connection: each client's topics under its own id
            assert (limiter.topics(a.conn_id), limiter.topics(b.conn_id)) == (2, 1)
            # the shared window (2 per 1.25 s with the default headroom) counted both connects:
            # a third one is refused by Redis, told as a wait of the window's remainder, and opens
            await c.connect()
            assert len(venue.connections) == 3
            await a.close()
            assert limiter.topics(a.conn_id) == 0 and limiter.topics(b.conn_id) == 1  # a's release only
            assert [e.conn_id for e in seen if isinstance(e, ConnectionReleased)] == [a.conn_id]
        finally:
            for client in (a, b, c):
                await client.close()
    connect_waits = [e for e in waits if e.action is Action.CONNECT]
    refused = [e for e in seen if isinstance(e, Rejected) and e.action is Action.CONNECT]
    assert [(e.conn_id, e.why) for e in refused] == [(c.conn_id, "rate")]
    assert [e.conn_id for e in connect_waits] == [c.conn_id]  # no 2 ms polls: only c's real wait
    assert 0.1 < connect_waits[0].delay < 2.0  # the rest of the shared window (1.25 s), as Redis says


async def test_a_shared_connection_cap_holds_one_slot_per_client_of_one_url(ledger: FleetLedger) -> None:
    limiter = VenueRateLimiter(ledger=ledger, max_connections={Scope.IP: 1})  # the cap: a Redis lease
    async with MockVenue(rate=0) as venue:
        a, b, c = (_client(venue.url, limiter) for _ in range(3))
        try:
            await a.connect()
            with pytest.raises(RateLimitExceeded) as refused:
                await b.connect()  # the fleet's one slot is held by a
            assert refused.value.retry_after == math.inf
            await b.close()
            assert limiter.open_connections() == 1  # b's close did not free a's slot
            await a.close()
            assert limiter.open_connections() == 0
            await c.connect()  # a's close freed it, in Redis too
            assert c.state_value is ConnectionState.CONNECTED and len(venue.connections) == 1
        finally:
            for client in (a, b, c):
                await client.close()


async def test_a_client_closed_while_the_ledger_decides_gives_the_granted_slot_back(
    ledger: FleetLedger,
) -> None:
    limiter = VenueRateLimiter(ledger=ledger, max_connections={Scope.IP: 1})
    released: list[str] = []
    limiter.add_listener(lambda e: released.append(e.conn_id) if isinstance(e, ConnectionReleased) else None)
    async with MockVenue(rate=0) as venue:
        a, b = _client(venue.url, limiter), _client(venue.url, limiter)
        try:
            connecting = a.connect()  # the ledger is asked; its answer comes on a later turn of the loop
            await a.close()
            with pytest.raises(ConnectionLost):
                await connecting
            deadline = asyncio.get_running_loop().time() + 10.0
            while a.conn_id not in released:  # the grant that came after the close is given back
                assert asyncio.get_running_loop().time() < deadline, "the granted slot was never released"
                await asyncio.sleep(0.005)
            assert limiter.open_connections() == 0 and not venue.connections
            await b.connect()  # the fleet's one slot is free
        finally:
            await a.close()
            await b.close()
