"""ConnectionBudget: a connect is awaited on the loop when the limiter asks a ledger, asked at once
otherwise (no ledger, or virtual time, where nothing may be awaited). The real ledger (Redis) is in
``tests/ratelimit/test_fleet_client.py``."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Virtual

from rxws import ConnectionState, WebSocketClient
from rxws.protocols import GenericJson
from rxws.ratelimit.base import Decision
from rxws.ratelimit.venue import VenueRateLimiter
from rxws.testing import MockVenue


class Asked(VenueRateLimiter):
    """A limiter that says it has a ledger and records how each connect was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    @property
    def ledger(self) -> Any:  # (VenueRateLimiter's own attribute, made read-only here)
        return "a ledger"

    @ledger.setter
    def ledger(self, _value: Any) -> None:
        pass

    def acquire_connect(self, conn_id: str, now: float, **keys: Any) -> Decision:
        self.asked.append("sync")
        return super().acquire_connect(conn_id, now, **keys)

    async def acquire_connect_async(self, conn_id: str, now: float, **keys: Any) -> Decision:
        self.asked.append("async")
        return super().acquire_connect(conn_id, now, **keys)


async def test_on_a_loop_a_connect_through_a_ledger_is_awaited() -> None:
    limiter = Asked()
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson(), rate_limiter=limiter, ping_interval=None)
        await client.connect()
        assert limiter.asked == ["async"] and limiter.open_connections() == 0  # no caps: no slot
        assert client.conn_id is not None and client.state_value is ConnectionState.CONNECTED
        await client.close()


def test_in_virtual_time_a_connect_through_a_ledger_is_asked_at_once() -> None:
    limiter = Asked()
    scheduler, _transport, make_client = Virtual(latency=0.1)
    client = make_client(rate_limiter=limiter)
    client.connect()
    scheduler.advance_to(1.0)
    assert limiter.asked == ["sync"] and client.state_value is ConnectionState.CONNECTED


async def test_without_a_ledger_a_connect_is_asked_at_once() -> None:
    limiter = VenueRateLimiter()
    assert limiter.ledger is None
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson(), rate_limiter=limiter, ping_interval=None)
        called: list[str] = []
        original = limiter.acquire_connect

        def spy(conn_id: str, now: float, **keys: Any) -> Decision:
            called.append(conn_id)
            return original(conn_id, now, **keys)

        limiter.acquire_connect = spy  # type: ignore[method-assign]
        await client.connect()
        assert called == [client.conn_id]
        await client.close()


async def test_a_ledger_decision_that_raises_fails_the_connect_with_its_error() -> None:
    class Broken(Asked):
        async def acquire_connect_async(self, conn_id: str, now: float, **keys: Any) -> Decision:
            raise RuntimeError("the ledger is confused")

    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson(), rate_limiter=Broken(), ping_interval=None)
        with pytest.raises(RuntimeError, match="confused"):
            await client.connect()
        assert client.state_value is ConnectionState.ERROR and not venue.connections
        await client.close()
