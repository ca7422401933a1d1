"""rxws.ratelimit.presets: each venue's documented numbers, fresh instances, named sources."""

from __future__ import annotations

import math

import pytest

from rxws.ratelimit import Scope, VenueRateLimiter, WebSocketRateLimiter, presets
from rxws.ratelimit.presets import PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_is_a_fresh_limiter_naming_its_source(name: str) -> None:
    factory = PRESETS[name]
    a, b = factory(), factory()
    assert isinstance(a, WebSocketRateLimiter) and isinstance(a, VenueRateLimiter)
    assert a is not b
    doc = factory.__doc__ or ""
    assert "shared/VENUE_LIMITS.md" in doc and "read 2026-11-25" in doc


def test_presets_marked_unverified_say_so() -> None:
    assert "unverified" in (presets.deribit.__doc__ or "")
    assert "unverified" in (presets.bybit.__doc__ or "")


def admitted(fn: object, n: int) -> int:
    return sum(fn().allowed for _ in range(n))  # type: ignore[operator]


def test_binance_spot_numbers() -> None:
    lim = presets.binance_spot()
    assert lim.max_topics_per_connection == 1024
    assert lim.acquire_connect("c", 0.0).allowed
    assert admitted(lambda: lim.acquire_message("c", 0.0), 20) == 5
    d = lim.acquire_message("c", 0.5)
    assert d == (False, pytest.approx(0.5))
    assert admitted(lambda: lim.acquire_message("c", 1.0), 20) == 5
    assert lim.acquire_subscribe("c", 1.0, 1024).allowed
    assert lim.acquire_subscribe("c", 1.0, 1) == (False, math.inf)
    # 300 connection attempts per 5 minutes per IP (299 more after "c").
    assert sum(lim.acquire_connect(f"x{i}", 2.0).allowed for i in range(400)) == 299
    d = lim.acquire_connect("late", 100.0)
    assert not d.allowed and d.retry_after == pytest.approx(200.0)


def test_binance_usdm_is_ten_per_second() -> None:
    lim = presets.binance_usdm()
    assert admitted(lambda: lim.acquire_message("c", 0.0), 20) == 10


def test_okx_numbers() -> None:
    lim = presets.okx()
    assert admitted(lambda: lim.acquire_connect(str(object()), 0.0), 10) == 3
    for i in range(240):
        assert lim.acquire_subscribe("c", float(i), 1).allowed
        lim.release_subscriptions("c", float(i), 1)  # unsubscribes count too
    assert not lim.acquire_subscribe("c", 300.0, 1).allowed


def test_bybit_numbers() -> None:
    lim = presets.bybit()
    assert sum(lim.acquire_connect(f"c{i}", 0.0).allowed for i in range(600)) == 500
    assert lim.max_connections == {Scope.IP: 1000}
    assert presets.bybit(market="spot").max_connections == {Scope.PRODUCT: 1000}


def test_coinbase_numbers() -> None:
    lim = presets.coinbase()
    assert sum(lim.acquire_connect(f"c{i}", 0.0).allowed for i in range(50)) == 20, "burst 20"
    assert lim.acquire_connect("next", 0.125).allowed, "then 8 per second"
    # 100 messages per second per IP, shared across connections.
    assert (
        admitted(lambda: lim.acquire_message("c1", 1.0), 60)
        + admitted(lambda: lim.acquire_message("c2", 1.0), 60)
        == 100
    )
    adv = presets.coinbase(advanced_trade=True)
    assert admitted(lambda: adv.acquire_message("c1", 0.0), 20) == 8


def test_kraken_numbers() -> None:
    lim = presets.kraken()
    assert sum(lim.acquire_connect(f"c{i}", 0.0).allowed for i in range(200)) == 150
    assert lim.report_violation("c1", "kraken_exceeded_msg_rate", 0.0) == 600.0


def test_deribit_credits() -> None:
    lim = presets.deribit(uid="acct")
    assert admitted(lambda: lim.acquire_message("c", 0.0), 150) == 100, "50,000 / 500"
    d = lim.acquire_message("c", 0.0)
    assert d.retry_after == pytest.approx(0.05), "10,000 credits/s refill: 500 in 50 ms"
    assert admitted(lambda: lim.acquire_message("other-conn", 0.0), 5) == 0, "the pool is per account"
    assert sum(lim.acquire_subscribe("c", 0.0, 1).allowed for _ in range(20)) == 10, "30,000 / 3,000"
    assert sum(lim.acquire_connect(f"k{i}", 0.0).allowed for i in range(40)) == 32
