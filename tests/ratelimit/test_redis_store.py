"""The shared Redis ledger against a real redis-server.

Uses ``RXWS_REDIS_URL`` (e.g. ``redis://127.0.0.1:6379/15``) when set; otherwise starts a
throwaway ``redis-server`` on a free port when one is on PATH (``apt-get install redis-server``);
otherwise the module is skipped. Every test works under its own random key prefix and deletes it.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis", reason="the redis extra (redis-py) is not installed")

from rxws.ratelimit import Rule, Scope, SlidingWindow, VenueRateLimiter, presets  # noqa: E402
from rxws.ratelimit.headroom import DEFAULT_HEADROOM, Headroom  # noqa: E402
from rxws.ratelimit.penalty import PenaltyPolicy  # noqa: E402
from rxws.ratelimit.redis_store import (  # noqa: E402
    RedisLedger,
    RedisPenaltyBox,
    RedisSlidingWindow,
    SharedStoreError,
    wall_clock,
)

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0  # a wall-clock time (2027) for the deterministic clock="caller" tests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    url = os.environ.get("RXWS_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: set RXWS_REDIS_URL or install redis-server (apt-get install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"redis://127.0.0.1:{port}/0"
            probe = redis.Redis.from_url(url)
            deadline = time.monotonic() + 10
            while True:
                try:
                    probe.ping()
                    break
                except redis.ConnectionError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.skip(f"redis-server did not start on port {port}")
                    time.sleep(0.05)
            probe.close()
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                proc.kill()
                proc.wait()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"rxws-test-{uuid.uuid4().hex[:12]}"
    yield name
    c = redis.Redis.from_url(redis_url)
    keys = [*c.scan_iter(match=f"*{name}*")]
    if keys:
        c.delete(*keys)
    c.close()


@pytest.fixture
def clients(redis_url: str) -> Iterator[list[Any]]:
    """Two separate clients (separate connections), standing for two processes."""
    made = [redis.Redis.from_url(redis_url) for _ in range(2)]
    yield made
    for c in made:
        c.close()


def _window(client: Any, key: str, limit: float, per: float, **kw: Any) -> RedisSlidingWindow:
    return RedisSlidingWindow(client, key, limit, per, **kw)


# Exactness across clients -------------------------------------------------------------------------
def test_two_clients_share_one_exact_budget(clients: list[Any], prefix: str) -> None:
    a, b = (_window(c, prefix, 5, 60.0) for c in clients)
    results = [(a if i % 2 else b).try_acquire(0.0).allowed for i in range(20)]
    assert sum(results) == 5
    assert results[:5] == [True] * 5  # the first five, whichever client asked


def test_caller_clock_window_slides_exactly(clients: list[Any], prefix: str) -> None:
    a, b = (_window(c, prefix, 3, 10.0, clock="caller") for c in clients)
    assert a.try_acquire(T0).allowed
    assert b.try_acquire(T0 + 2.5).allowed
    assert a.try_acquire(T0 + 4).allowed
    d = b.try_acquire(T0 + 5)
    assert not d.allowed and d.retry_after == pytest.approx(5.0, abs=1e-6)
    assert not a.try_acquire(T0 + 5 + d.retry_after - 1e-3).allowed
    assert a.try_acquire(T0 + 5 + d.retry_after).allowed  # exactly when the oldest leaves
    assert not b.try_acquire(T0 + 10).allowed  # the one at T0 + 2.5 is still in


def test_matches_the_in_memory_window(clients: list[Any], prefix: str) -> None:
    import random

    rng = random.Random(7)
    shared = _window(clients[0], prefix, 7, 2.0, clock="caller")
    local = SlidingWindow(7, 2.0)
    t = T0
    for _ in range(300):
        t += rng.choice((0.0, 0.01, 0.1, 0.3, 1.0))
        cost = rng.choice((1, 1, 1, 2, 3.5))
        mine, theirs = shared.try_acquire(t, cost), local.try_acquire(t, cost)
        assert mine.allowed == theirs.allowed
        assert mine.retry_after == pytest.approx(theirs.retry_after, abs=2e-6)


# retry_after ------------------------------------------------------------------------------------
def test_retry_after_with_weighted_costs(clients: list[Any], prefix: str) -> None:
    w = _window(clients[0], prefix, 10, 5.0, clock="caller")
    assert w.try_acquire(T0, 4).allowed
    assert w.try_acquire(T0 + 1, 3).allowed
    assert w.try_acquire(T0 + 2, 3).allowed
    d = w.try_acquire(T0 + 3, 6)  # needs the first two (4 + 3 >= 6) to leave: at T0 + 6
    assert not d.allowed and d.retry_after == pytest.approx(3.0, abs=1e-6)
    peek = w.check(T0 + 3, 4)  # the first entry alone frees enough: at T0 + 5
    assert not peek.allowed and peek.retry_after == pytest.approx(2.0, abs=1e-6)
    assert w.try_acquire(T0 + 3 + d.retry_after, 6).allowed


def test_retry_after_on_the_server_clock(clients: list[Any], prefix: str) -> None:
    w = _window(clients[0], prefix, 2, 0.3)
    assert w.try_acquire(0).allowed and w.try_acquire(0).allowed
    d = w.try_acquire(0)
    assert not d.allowed and 0 < d.retry_after <= 0.3
    time.sleep(d.retry_after + 0.005)
    assert w.try_acquire(0).allowed


def test_check_records_nothing_and_commit_goes_into_debt(clients: list[Any], prefix: str) -> None:
    w = _window(clients[0], prefix, 2, 10.0, clock="caller")
    for _ in range(5):
        assert w.check(T0).allowed
    w.commit(T0, 1)
    w.commit(T0 + 1, 2)  # past the limit: recorded anyway
    d = w.try_acquire(T0 + 2)
    assert not d.allowed and d.retry_after == pytest.approx(9.0, abs=1e-6)  # both must leave


def test_time_never_runs_backwards(clients: list[Any], prefix: str) -> None:
    w = _window(clients[0], prefix, 1, 10.0, clock="caller")
    assert w.try_acquire(T0 + 100).allowed
    d = w.try_acquire(T0)  # a lagging clock is taken as the latest time recorded
    assert not d.allowed and d.retry_after == pytest.approx(110.0, abs=1e-6)


def test_bad_costs_raise_before_any_round_trip() -> None:
    class NoRedis:
        def register_script(self, script: str) -> Any:
            def run(**_: Any) -> Any:
                raise AssertionError("no round trip expected")

            return run

    w = RedisSlidingWindow(NoRedis(), "k", 5, 1.0)
    for bad in (6, -1, math.nan):
        with pytest.raises(ValueError):
            w.try_acquire(0, bad)
    with pytest.raises(ValueError):
        w.commit(0, -1)
    with pytest.raises(ValueError, match="wall-clock"):
        RedisSlidingWindow(NoRedis(), "k", 5, 1.0, clock="caller").try_acquire(12.5)
    with pytest.raises(ValueError, match="clock"):
        RedisSlidingWindow(NoRedis(), "k", 5, 1.0, clock="local")  # type: ignore[arg-type]


# Memory ------------------------------------------------------------------------------------------
def test_old_entries_are_trimmed_and_keys_expire(clients: list[Any], prefix: str) -> None:
    c = clients[0]
    w = _window(c, prefix, 5, 0.05, clock="caller")
    t = T0
    for _ in range(2000):
        t += 0.003
        w.try_acquire(t)
    log, meta = f"{{{prefix}}}:log", f"{{{prefix}}}:meta"
    assert c.zcard(log) <= 5
    assert 0 < c.pttl(log) <= 1050 and 0 < c.pttl(meta) <= 1050  # the window plus a second
    assert float(c.hget(meta, "total")) == c.zcard(log)


# Concurrency -------------------------------------------------------------------------------------
def test_threads_with_their_own_clients_never_exceed(redis_url: str, prefix: str) -> None:
    limit, threads, attempts = 50, 8, 40
    allowed = [0] * threads
    start = threading.Barrier(threads)

    def hammer(i: int) -> None:
        client = redis.Redis.from_url(redis_url)
        w = _window(client, prefix, limit, 60.0)
        start.wait()
        allowed[i] = sum(w.try_acquire(0).allowed for _ in range(attempts))
        client.close()

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(threads)]
    for th in workers:
        th.start()
    for th in workers:
        th.join(timeout=30)
    assert sum(allowed) == limit


_WORKER = textwrap.dedent(
    """
    import sys, time
    import redis
    from rxws.ratelimit.redis_store import RedisSlidingWindow

    url, key, limit, attempts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    w = RedisSlidingWindow(redis.Redis.from_url(url), key, limit, 60.0)
    while time.time() < float(sys.argv[5]):  # start together
        time.sleep(0.001)
    print(sum(w.try_acquire(0).allowed for _ in range(attempts)))
    """
)


def test_two_processes_hammering_one_key_admit_exactly_the_limit(redis_url: str, prefix: str) -> None:
    limit, attempts = 137, 150
    start_at = str(time.time() + 1.0)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, prefix, str(limit), str(attempts), start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        counts.append(int(out))
    assert sum(counts) == limit  # 300 attempts from two processes, exactly the limit admitted


# Penalties ---------------------------------------------------------------------------------------
def test_penalty_reported_by_one_client_holds_back_the_other(clients: list[Any], prefix: str) -> None:
    policy = PenaltyPolicy(initial=2.0, factor=2.0, max=60.0, reset_after=30.0)
    a, b = (RedisPenaltyBox(c, prefix, policy, clock="caller", max_age=0) for c in clients)
    assert b.remaining("ip:1.2.3.4", T0) == 0.0
    assert a.report("ip:1.2.3.4", T0) == pytest.approx(2.0)
    assert b.remaining("ip:1.2.3.4", T0 + 0.5) == pytest.approx(1.5, abs=1e-6)
    assert b.report("ip:1.2.3.4", T0 + 1) == pytest.approx(4.0)  # escalates across clients
    assert a.report("ip:1.2.3.4", T0 + 1, retry_after=30) == pytest.approx(30.0)  # Retry-After wins
    assert a.remaining("ip:other", T0 + 1) == 0.0
    # ended(): once per process, for a penalty that process saw
    assert not b.ended("ip:1.2.3.4", T0 + 2)
    assert b.ended("ip:1.2.3.4", T0 + 31) and not b.ended("ip:1.2.3.4", T0 + 32)
    assert a.ended("ip:1.2.3.4", T0 + 31)
    # after the quiet period the level starts again from initial
    assert a.report("ip:1.2.3.4", T0 + 31 + 30) == pytest.approx(2.0)


def test_connection_penalties_stay_local(clients: list[Any], prefix: str) -> None:
    a, b = (RedisPenaltyBox(c, prefix, max_age=0) for c in clients)
    assert a.report("connection:c1", 100.0) == 1.0
    assert a.remaining("connection:c1", 100.5) == 0.5
    assert b.remaining("connection:c1", 100.5) == 0.0  # "c1" in another process is another socket
    assert not [*clients[0].scan_iter(match=f"*{prefix}*")]


def test_penalty_reads_are_cached_for_max_age(clients: list[Any], prefix: str) -> None:
    a = RedisPenaltyBox(clients[0], prefix, clock="caller", max_age=0)
    b = RedisPenaltyBox(clients[1], prefix, clock="caller", max_age=0.5)
    assert b.remaining("global", T0) == 0.0
    a.report("global", T0 + 0.1)
    assert b.remaining("global", T0 + 0.2) == 0.0  # cached "none"
    assert b.remaining("global", T0 + 0.6) > 0.0  # re-read after max_age


# The venue limiter and presets -------------------------------------------------------------------
def test_binance_preset_shares_connect_budget_and_penalties(clients: list[Any], prefix: str) -> None:
    for headroom, budget, name in ((Headroom(), 300, "exact"), (DEFAULT_HEADROOM, 270, "default")):
        one, two = (
            presets.binance_spot(
                shared=RedisLedger(c, prefix=f"{prefix}-{name}", max_age=0), headroom=headroom
            )
            for c in clients
        )
        allowed = 0
        for i in range(320):
            limiter = one if i % 3 else two
            d = limiter.acquire_connect(f"c{i}", 0.0)
            if d.allowed:
                allowed += 1
                limiter.release_connection(f"c{i}", 0.0)
            else:
                assert 0 < d.retry_after <= 300.0 + headroom.margin
        assert allowed == budget  # 300 documented; 270 (in 300.25 s) with the default headroom
    assert presets.binance_spot(shared=clients[0]).connect_rules[0].shared  # a bare client works too

    # a violation seen by one process refuses connections and messages in the other
    fresh = f"{prefix}-p"
    one, two = (presets.binance_spot(shared=RedisLedger(c, prefix=fresh, max_age=0)) for c in clients)
    assert two.acquire_connect("x", 0.0).allowed
    assert one.report_violation("y", "close_1008", 0.0) == pytest.approx(1.0)
    d = two.acquire_message("x", 0.0)
    assert not d.allowed and 0 < d.retry_after <= 1.0
    assert not two.acquire_connect("z", 0.0).allowed
    assert two.penalty_remaining("x", 0.0) > 0
    for c in clients:
        keys = [*c.scan_iter(match=f"*{fresh}*")]
        if keys:
            c.delete(*keys)


def test_presets_without_shared_are_unchanged() -> None:
    for make in (presets.binance_spot, presets.binance_usdm, presets.okx, presets.bybit, presets.kraken):
        limiter = make()
        assert all(isinstance(r.limit, SlidingWindow) for r in limiter.connect_rules)


def test_each_scope_key_gets_its_own_ledger_entry(clients: list[Any], prefix: str) -> None:
    ledger = RedisLedger(clients[0], prefix=prefix, clock="caller")
    limiter = VenueRateLimiter(connect=[Rule(ledger.sliding_window("connect", 1, 60.0), Scope.IP)])
    assert limiter.acquire_connect("a", T0, ip="10.0.0.1").allowed
    assert limiter.acquire_connect("b", T0, ip="10.0.0.2").allowed
    assert not limiter.acquire_connect("c", T0, ip="10.0.0.1").allowed
    keys = {k.decode() for k in clients[0].scan_iter(match=f"*{prefix}*:log")}
    assert keys == {f"{{{prefix}:connect:ip:10.0.0.1}}:log", f"{{{prefix}:connect:ip:10.0.0.2}}:log"}


def test_shared_and_local_rules_stay_all_or_nothing(clients: list[Any], prefix: str) -> None:
    from rxws.ratelimit import RateLimiter

    shared = RedisSlidingWindow(clients[0], prefix, 3, 60.0, clock="caller")
    limiter = RateLimiter(Rule(SlidingWindow(2, 1.0)), Rule(shared))
    assert limiter.try_acquire(T0).allowed and limiter.try_acquire(T0).allowed
    d = limiter.try_acquire(T0)  # the local 2/s refuses: the shared budget is not spent
    assert not d.allowed and d.retry_after == pytest.approx(1.0)
    assert limiter.try_acquire(T0 + 1).allowed  # the third shared slot is still there
    d = limiter.try_acquire(T0 + 1)
    assert not d.allowed and d.retry_after == pytest.approx(59.0, abs=1e-6)  # now the shared one
    other = RedisSlidingWindow(clients[1], f"{prefix}:global", 3, 60.0, clock="caller")  # the same entry
    assert not other.try_acquire(T0 + 2).allowed


def test_penalty_store_and_policy_are_exclusive(clients: list[Any], prefix: str) -> None:
    box = RedisPenaltyBox(clients[0], prefix)
    with pytest.raises(ValueError, match="penalty_store"):
        VenueRateLimiter(penalty=PenaltyPolicy(), penalty_store=box)
    assert VenueRateLimiter(penalty_store=box).penalty_policy is box.policy


# Failures ----------------------------------------------------------------------------------------
def test_an_unreachable_redis_raises_shared_store_error() -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        host="127.0.0.1", port=_free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    with pytest.raises(SharedStoreError) as info:
        RedisSlidingWindow(client, "k", 5, 1.0).try_acquire(0)
    assert isinstance(info.value.__cause__, redis.RedisError)
    with pytest.raises(SharedStoreError):
        RedisPenaltyBox(client, "p", max_age=0).remaining("ip:x", 0)


def test_wall_clock_is_epoch_seconds() -> None:
    assert abs(wall_clock() - time.time()) < 1.0
