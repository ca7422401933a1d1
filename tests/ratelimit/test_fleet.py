"""The fleet ledger against a real redis-server: atomic rules, leases, blocks, outage and restart.

Starts its own ``redis-server`` on a free loopback port (``make services`` installs it); skipped
when there is none. Every test uses a fresh key prefix.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

pytest.importorskip("redis", reason="the redis extra (redis-py) is not installed")

from redis_server import RedisServer, running_redis

from rxws.exceptions import UsageError
from rxws.ratelimit import (
    Action,
    LedgerRestored,
    LedgerUnavailable,
    RateLimitEvent,
    Rejected,
    Rule,
    Scope,
    SlidingWindow,
    VenueRateLimiter,
    presets,
)
from rxws.ratelimit.fleet import FleetLedger, SharedRule

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with running_redis() as made:
        yield made


@pytest.fixture
def ledger_of(server: RedisServer) -> Iterator[Callable[..., FleetLedger]]:
    prefix = f"fleet-{uuid.uuid4().hex[:10]}"
    made: list[FleetLedger] = []

    def make(**options: object) -> FleetLedger:
        # These tests are not about the ledger's timeout (the outage tests set their own): a loaded
        # machine can take longer than the default 250 ms to answer, and a timed-out decision is a
        # refusal by design (fail_closed), which is not what they check.
        options.setdefault("timeout", 2.0)  # (under half the default 5 s lease TTL)
        ledger = FleetLedger.from_url(server.url, prefix=prefix, **options)  # type: ignore[arg-type]
        made.append(ledger)
        return ledger

    yield make


@pytest.fixture
async def closing(ledger_of: Callable[..., FleetLedger]) -> AsyncIterator[list[FleetLedger]]:
    ledgers: list[FleetLedger] = []
    yield ledgers
    for ledger in ledgers:
        await ledger.aclose()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` every 5 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


# The script -------------------------------------------------------------------------------------
async def test_several_rules_are_decided_all_or_nothing(
    ledger_of: Callable[..., FleetLedger], closing: list[FleetLedger]
) -> None:
    ledger = ledger_of()
    closing.append(ledger)
    roomy = SharedRule("window", ledger.key("roomy"), 10, 60.0)
    tight = SharedRule("window", ledger.key("tight"), 2, 60.0)
    bucket = SharedRule.bucket(ledger.key("bucket"), 1.0, 1.0, 5, 0.0)
    assert await ledger.decide([roomy, tight, bucket], [1, 1, 1]) == (True, 0.0)
    assert await ledger.decide([roomy, tight, bucket], [1, 1, 1]) == (True, 0.0)
    refused = await ledger.decide([roomy, tight, bucket], [1, 1, 1])
    assert refused is not None and not refused.allowed and 59 < refused.retry_after <= 60
    # the refusal spent nothing: roomy still has 8, the bucket 3 (plus a little refill)
    assert await ledger.decide([roomy], [8]) == (True, 0.0)
    assert await ledger.decide([roomy], [1]) != (True, 0.0)
    assert await ledger.decide([bucket], [3]) == (True, 0.0)
    no_room = await ledger.decide([bucket], [6])  # more than the bucket holds: never
    assert no_room is not None and no_room.retry_after == math.inf


async def test_a_window_logs_a_grant_at_the_end_of_its_hold(
    ledger_of: Callable[..., FleetLedger], closing: list[FleetLedger]
) -> None:
    ledger = ledger_of()
    closing.append(ledger)
    window = SharedRule("window", ledger.key("w"), 1, 0.2, hold=0.3)
    assert await ledger.decide([window], [1]) == (True, 0.0)
    refused = await ledger.decide([window], [1])
    assert refused is not None and 0.3 < refused.retry_after <= 0.5  # per + hold, not per


async def test_bucket_hold_takes_what_refills_meanwhile() -> None:
    rule = SharedRule.bucket("k", 10_000, 1.0, 50_000, 0.1)
    assert rule.limit == 49_000
    with pytest.raises(ValueError, match="no room"):
        SharedRule.bucket("k", 100, 1.0, 5, 0.1)


async def test_a_ledger_needs_a_running_loop_for_sync_calls(ledger_of: Callable[..., FleetLedger]) -> None:
    ledger = ledger_of()
    limiter = VenueRateLimiter(ledger=ledger, connect=[SlidingWindow(3, 1.0)])

    def outside() -> None:
        limiter.acquire_connect("x", 0.0)

    with pytest.raises(UsageError, match="running asyncio loop"):
        await asyncio.to_thread(outside)


# Leases -----------------------------------------------------------------------------------------
async def test_connection_cap_is_shared_and_a_clean_close_frees_at_once(
    ledger_of: Callable[..., FleetLedger], closing: list[FleetLedger]
) -> None:
    one, two = ledger_of(), ledger_of()
    closing += [one, two]
    a = VenueRateLimiter(name="v", ledger=one, max_connections={Scope.IP: 2})
    b = VenueRateLimiter(name="v", ledger=two, max_connections={Scope.IP: 2})
    ids = [a.connection_id("ws://same"), b.connection_id("ws://same"), b.connection_id("ws://same")]
    assert len(set(ids)) == 3
    assert (await a.acquire_connect_async(ids[0], 0.0)).allowed
    assert (await b.acquire_connect_async(ids[1], 0.0)).allowed
    full = await b.acquire_connect_async(ids[2], 0.0)
    assert full == (False, math.inf)
    a.release_connection(ids[0], 0.0)  # the lease goes at once, not after its TTL
    await until(lambda: not one._tasks)
    assert (await b.acquire_connect_async(ids[2], 0.0)).allowed
    assert a.open_connections() == 0 and b.open_connections() == 2


async def test_leases_are_renewed_by_the_ledger_and_expire_when_not(
    ledger_of: Callable[..., FleetLedger], closing: list[FleetLedger], server: RedisServer
) -> None:
    import redis

    ledger = ledger_of(lease_ttl=1.0, timeout=0.2)
    closing.append(ledger)
    limiter = VenueRateLimiter(name="v", ledger=ledger, max_connections={Scope.IP: 1})
    conn = limiter.connection_id("c")
    assert (await limiter.acquire_connect_async(conn, 0.0)).allowed
    key = ledger.key("v", "conns", "ip:local")
    probe = redis.Redis.from_url(server.url)
    try:
        first = probe.zscore(key, conn)
        assert first is not None
        await until(lambda: (probe.zscore(key, conn) or 0) > first, timeout=5)  # renewed by the timer
        ledger.drop_leases(conn)  # as if the holder stopped renewing (a SIGKILL)
        expired_by = time.monotonic() + 1.0 + 0.5
        await until(
            lambda: probe.zscore(key, conn) is None or probe.zcount(key, time.time() * 1e6, "+inf") == 0, 5
        )
        assert time.monotonic() <= expired_by
        other = VenueRateLimiter(name="v", ledger=ledger, max_connections={Scope.IP: 1})
        assert (await other.acquire_connect_async(other.connection_id("d"), 0.0)).allowed
    finally:
        probe.close()


# Messages ---------------------------------------------------------------------------------------
async def test_message_blocks_never_admit_more_than_the_shared_window(
    ledger_of: Callable[..., FleetLedger], closing: list[FleetLedger]
) -> None:
    ledgers = [ledger_of(hold=0.05), ledger_of(hold=0.05)]
    closing += ledgers
    limiters = [
        VenueRateLimiter(name="m", ledger=led, message=[Rule(SlidingWindow(20, 0.5), Scope.IP)])
        for led in ledgers
    ]
    admitted: list[float] = []
    end = time.monotonic() + 1.6

    async def sender(limiter: VenueRateLimiter) -> None:
        while time.monotonic() < end:
            d = limiter.acquire_message("c", 0.0)
            if d.allowed:
                admitted.append(time.monotonic())
            else:
                await asyncio.sleep(min(d.retry_after, 0.05))

    await asyncio.gather(*(sender(lim) for lim in limiters for _ in range(3)))
    admitted.sort()
    most = max(sum(1 for u in admitted if t <= u < t + 0.5) for t in admitted)
    assert most <= 20
    assert len(admitted) >= 40  # and the budget is used, not starved: 3+ windows of 20


async def test_deribit_and_coinbase_take_shared(
    ledger_of: Callable[..., FleetLedger], closing: list[FleetLedger]
) -> None:
    ledger = ledger_of()
    closing.append(ledger)
    deribit = presets.deribit(shared=ledger, uid="acct")
    assert {r.scope for r in deribit.shared_rules(Action.MESSAGE)} == {Scope.UID}
    conn = deribit.connection_id("d")
    assert (await deribit.acquire_connect_async(conn, 0.0)).allowed
    assert deribit.shared_rules(Action.SUBSCRIBE)
    coinbase = presets.coinbase(shared=ledger)
    assert [r.scope for r in coinbase.shared_rules(Action.CONNECT)] == [Scope.IP]
    assert [r.scope for r in coinbase.shared_rules(Action.MESSAGE)] == [Scope.IP]
    with pytest.raises(ValueError, match="FleetLedger"):
        presets.coinbase(shared=object())  # type: ignore[arg-type]


# Outage -----------------------------------------------------------------------------------------
async def _heartbeat(stop: asyncio.Event, stalls: list[float], period: float = 0.01) -> None:
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(period)
        now = time.monotonic()
        stalls.append(now - last - period)
        last = now


@pytest.mark.parametrize(
    ("policy", "fault"), [("fail_closed", "stop"), ("local_share", "stop"), ("fail_closed", "freeze")]
)
async def test_redis_stopped_then_restarted(policy: str, fault: str, closing: list[FleetLedger]) -> None:
    """Killed (connections refused) or frozen (SIGSTOP: every call times out), then back."""
    server = RedisServer()
    server.start()
    try:
        ledger = FleetLedger.from_url(
            server.url,
            prefix="outage",
            timeout=0.2,
            lease_ttl=1.0,
            probe_every=0.05,
            outage=policy,
            local_share=0.5,
        )
        closing.append(ledger)
        limiter = VenueRateLimiter(
            name="o", ledger=ledger, connect=[SlidingWindow(100, 1.0)], max_connections={Scope.IP: 4}
        )
        events: list[RateLimitEvent] = []
        limiter.add_listener(events.append)
        held = limiter.connection_id("held")
        assert (await limiter.acquire_connect_async(held, 0.0)).allowed
        stop, stalls = asyncio.Event(), []
        beat = asyncio.create_task(_heartbeat(stop, stalls))
        if fault == "stop":
            server.stop()
        else:
            server.pause()
        answers = []
        for i in range(4):
            answers.append(await limiter.acquire_connect_async(limiter.connection_id(f"n{i}"), 0.0))
        await until(lambda: any(isinstance(e, LedgerUnavailable) for e in events))
        if policy == "fail_closed":
            assert not any(d.allowed for d in answers)
            assert any(isinstance(e, Rejected) and e.why == "ledger" for e in events)
        else:
            # floor(4 * 0.5) = 2 connections of this process, the one held before the outage included
            assert [d.allowed for d in answers] == [True, False, False, False]
        if fault == "stop":
            server.start()
        else:
            server.resume()
        await until(lambda: any(isinstance(e, LedgerRestored) for e in events))
        stop.set()
        await beat
        assert max(stalls) < ledger.timeout  # the loop kept answering all along
        # sharing resumes: the lease held before the outage is back in the (empty) restarted Redis
        import redis

        probe = redis.Redis.from_url(server.url)
        try:
            await until(lambda: probe.zscore(ledger.key("o", "conns", "ip:local"), held) is not None)
        finally:
            probe.close()
        assert (await limiter.acquire_connect_async(limiter.connection_id("after"), 0.0)).allowed
        [down] = [e for e in events if isinstance(e, LedgerUnavailable)]
        assert down.policy == policy
    finally:
        server.close()


# Penalties --------------------------------------------------------------------------------------
async def test_a_violation_in_one_process_holds_back_the_other(
    ledger_of: Callable[..., FleetLedger], closing: list[FleetLedger]
) -> None:
    one, two = ledger_of(), ledger_of()
    closing += [one, two]
    a, b = presets.binance_spot(shared=one), presets.binance_spot(shared=two)
    conn = b.connection_id("b")
    assert (await b.acquire_connect_async(conn, 0.0)).allowed
    assert b.acquire_message(conn, 0.0).allowed
    seconds = a.report_violation(a.connection_id("a"), "close_1008", 0.0)
    assert seconds == pytest.approx(1.0)
    # b learns of it within max_age (0.25 s) plus a round trip, without ever waiting on Redis
    await until(lambda: b.penalty_remaining(conn, 0.0) > 0, timeout=2.0)
    assert b.penalty_remaining(conn, 0.0) <= 1.0
    events: list[RateLimitEvent] = []
    b.add_listener(events.append)
    d = b.acquire_message(conn, 0.0)
    assert not d.allowed and 0 < d.retry_after <= 1.0
    assert [e.why for e in events if isinstance(e, Rejected)] == ["penalty"]
    assert not (await b.acquire_connect_async(b.connection_id("b2"), 0.0)).allowed
    await until(lambda: b.penalty_remaining(conn, 0.0) == 0, timeout=3.0)  # and it ends


async def test_a_client_waits_out_an_outage_and_sees_it_on_rate_limit_events(
    closing: list[FleetLedger],
) -> None:
    from rxws import WebSocketClient
    from rxws.protocols import GenericJson
    from rxws.testing import MockVenue

    server = RedisServer()
    server.start()
    try:
        ledger = FleetLedger.from_url(server.url, prefix="client", timeout=0.2, probe_every=0.05)
        closing.append(ledger)
        limiter = presets.okx(shared=ledger, venue=None)
        async with MockVenue(rate=0) as venue:
            client = WebSocketClient(venue.url, protocol=GenericJson(), rate_limiter=limiter)
            seen: list[RateLimitEvent] = []
            client.rate_limit_events.subscribe(seen.append)
            server.stop()
            connecting = asyncio.ensure_future(client.connect())
            await until(lambda: any(isinstance(e, Rejected) and e.why == "ledger" for e in seen))
            assert not connecting.done() and not venue.connections  # fail_closed: it waits
            server.start()
            await asyncio.wait_for(connecting, 10.0)
            assert len(venue.connections) == 1
            kinds = [e.kind for e in seen]
            assert kinds.index("ledger_unavailable") < kinds.index("ledger_restored")
            await client.close()
    finally:
        server.close()
