"""Connection identity: ids unique per connection, in the process and across a fleet."""

from __future__ import annotations

import math
import multiprocessing
import os

import pytest

from rxws import RateLimitExceeded, WebSocketClient
from rxws.protocols import GenericJson
from rxws.ratelimit import Scope, SlidingWindow, VenueRateLimiter, connection_id
from rxws.ratelimit.identity import process_token
from rxws.testing import MockVenue


def test_ids_from_one_label_never_repeat() -> None:
    limiter = VenueRateLimiter()
    ids = {limiter.connection_id("ws://venue") for _ in range(1000)} | {
        connection_id("ws://venue") for _ in range(10)
    }
    assert len(ids) == 1010
    assert all(i.startswith(f"ws://venue#{process_token()}-") for i in ids)
    assert len(process_token()) == 16  # 64 random bits


def test_connection_id_asks_the_limiter_or_makes_one() -> None:
    class Labelled:
        def connection_id(self, label: str) -> str:
            return f"mine:{label}"

    assert connection_id("x", Labelled()) == "mine:x"
    assert connection_id("x", object()).startswith(f"x#{process_token()}-")


def _child_token(queue: multiprocessing.Queue[str]) -> None:
    queue.put(process_token())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_its_own_token() -> None:
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    child = ctx.Process(target=_child_token, args=(queue,))
    child.start()
    try:
        theirs = queue.get(timeout=30)
    finally:
        child.join(timeout=30)
    assert theirs != process_token() and len(theirs) == 16


def test_two_connections_of_one_label_hold_two_slots_and_release_their_own() -> None:
    limiter = VenueRateLimiter(max_connections={Scope.IP: 1}, message=[SlidingWindow(1, 1.0)])
    a, b = limiter.connection_id("ws://same"), limiter.connection_id("ws://same")
    assert limiter.acquire_connect(a, 0.0).allowed
    assert limiter.acquire_connect(b, 0.0) == (False, math.inf)  # the second waits for a slot
    assert limiter.acquire_message(a, 0.0).allowed
    assert limiter.acquire_message(b, 0.0).allowed  # per-connection budgets are not pooled
    limiter.release_connection(b, 0.0)  # b held nothing: a keeps its slot
    assert limiter.open_connections() == 1
    limiter.release_connection(a, 0.0)
    assert limiter.acquire_connect(b, 1.0).allowed


async def test_two_clients_of_one_url_sharing_a_limiter_are_two_connections() -> None:
    limiter = VenueRateLimiter(max_connections={Scope.IP: 1})
    async with MockVenue(rate=0) as venue:
        a = WebSocketClient(venue.url, protocol=GenericJson(), rate_limiter=limiter)
        b = WebSocketClient(venue.url, protocol=GenericJson(), rate_limiter=limiter)
        c = WebSocketClient(venue.url, protocol=GenericJson(), rate_limiter=limiter)
        try:
            await a.connect()
            with pytest.raises(RateLimitExceeded):
                await b.connect()  # the cap of one is held by a
            await b.close()
            assert limiter.open_connections() == 1  # b's close did not free a's slot
            with pytest.raises(RateLimitExceeded):
                await c.connect()
            await a.close()
            assert limiter.open_connections() == 0
            await c.connect()  # a's close freed its slot
        finally:
            for client in (a, b, c):
                await client.close()
