"""rxws.ratelimit.presets: each venue's documented numbers (``headroom=Headroom()``), the paced
numbers with the default headroom, fresh instances, named sources, the dialect each belongs to."""

from __future__ import annotations

import math

import pytest

from rxws.ratelimit import Scope, VenueRateLimiter, WebSocketRateLimiter, presets
from rxws.ratelimit.headroom import DEFAULT_HEADROOM, Headroom
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


EXACT = Headroom()  # the documented figures, no margin: what the venue itself allows


def admitted(fn: object, n: int) -> int:
    return sum(fn().allowed for _ in range(n))  # type: ignore[operator]


def test_binance_spot_numbers() -> None:
    lim = presets.binance_spot(headroom=EXACT)
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
    lim = presets.binance_usdm(headroom=EXACT)
    assert admitted(lambda: lim.acquire_message("c", 0.0), 20) == 10


def test_okx_numbers() -> None:
    lim = presets.okx(headroom=EXACT)
    assert admitted(lambda: lim.acquire_connect(str(object()), 0.0), 10) == 3
    for i in range(240):
        assert lim.acquire_subscribe("c", float(i), 1).allowed
        lim.release_subscriptions("c", float(i), 1)  # unsubscribes count too
    assert not lim.acquire_subscribe("c", 300.0, 1).allowed


def test_bybit_numbers() -> None:
    lim = presets.bybit(headroom=EXACT)
    assert sum(lim.acquire_connect(f"c{i}", 0.0).allowed for i in range(600)) == 500
    assert lim.max_connections == {Scope.IP: 1000}
    assert presets.bybit(headroom=EXACT, market="spot").max_connections == {Scope.PRODUCT: 1000}


def test_coinbase_numbers() -> None:
    lim = presets.coinbase(headroom=EXACT)
    assert sum(lim.acquire_connect(f"c{i}", 0.0).allowed for i in range(50)) == 20, "burst 20"
    assert lim.acquire_connect("next", 0.125).allowed, "then 8 per second"
    # 100 messages per second per IP, shared across connections.
    assert (
        admitted(lambda: lim.acquire_message("c1", 1.0), 60)
        + admitted(lambda: lim.acquire_message("c2", 1.0), 60)
        == 100
    )
    adv = presets.coinbase(headroom=EXACT, advanced_trade=True)
    assert admitted(lambda: adv.acquire_message("c1", 0.0), 20) == 8


def test_kraken_numbers() -> None:
    lim = presets.kraken(headroom=EXACT)
    assert sum(lim.acquire_connect(f"c{i}", 0.0).allowed for i in range(200)) == 150
    assert lim.report_violation("c1", "kraken_exceeded_msg_rate", 0.0) == 600.0


def test_deribit_credits() -> None:
    lim = presets.deribit(headroom=EXACT, uid="acct")
    assert admitted(lambda: lim.acquire_message("c", 0.0), 150) == 100, "50,000 / 500"
    d = lim.acquire_message("c", 0.0)
    assert d.retry_after == pytest.approx(0.05), "10,000 credits/s refill: 500 in 50 ms"
    assert admitted(lambda: lim.acquire_message("other-conn", 0.0), 5) == 0, "the pool is per account"
    assert sum(lim.acquire_subscribe("c", 0.0, 1).allowed for _ in range(20)) == 10, "30,000 / 3,000"
    assert sum(lim.acquire_connect(f"k{i}", 0.0).allowed for i in range(40)) == 32


# Default headroom: what each preset paces at unless told otherwise ---------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_takes_headroom_and_documents_its_default(name: str) -> None:
    factory = PRESETS[name]
    assert factory().headroom == DEFAULT_HEADROOM
    assert factory(headroom=None).headroom == EXACT
    custom = Headroom(fraction=0.5, margin=1.0)
    assert factory(headroom=custom).headroom == custom
    doc = " ".join((factory.__doc__ or "").split())
    assert "headroom" in doc and "default 10% of each count, 0.25 s added to each window" in doc


def test_binance_spot_paces_four_per_one_and_a_quarter_seconds_by_default() -> None:
    lim = presets.binance_spot()
    assert lim.acquire_connect("c", 0.0).allowed
    assert admitted(lambda: lim.acquire_message("c", 0.0), 20) == 4, "one of 5 left for an unasked pong"
    d = lim.acquire_message("c", 1.0)
    assert not d.allowed and d.retry_after == pytest.approx(0.25), "the window is 1.25 s, not 1 s"
    assert admitted(lambda: lim.acquire_message("c", 1.25), 20) == 4
    assert lim.acquire_subscribe("c", 1.25, 1024).allowed, "caps are never reduced"
    assert "5 messages / s / connection" in lim.message_rules[0].label, "the documented figure stays named"
    assert sum(lim.acquire_connect(f"x{i}", 2.0).allowed for i in range(400)) == 269, "270 of 300, one used"


@pytest.mark.parametrize(
    ("name", "kwargs", "action", "expected"),
    [
        ("binance_usdm", {}, "message", 9),
        ("okx", {}, "connect", 2),
        ("bybit", {}, "connect", 450),
        ("coinbase", {}, "connect", 16),
        ("coinbase", {}, "message", 90),
        ("coinbase", {"advanced_trade": True}, "message", 7),
        ("kraken", {}, "connect", 135),
        ("deribit", {"uid": "acct"}, "message", 85),
    ],
)
def test_default_headroom_figures(name: str, kwargs: dict[str, object], action: str, expected: int) -> None:
    lim = PRESETS[name](**kwargs)  # type: ignore[operator]
    if action == "connect":
        got = sum(lim.acquire_connect(f"c{i}", 0.0).allowed for i in range(1000))
    else:
        got = admitted(lambda: lim.acquire_message("c", 0.0), 1000)
    assert got == expected


def test_deribit_bucket_gives_up_what_refills_in_the_margin() -> None:
    lim = presets.deribit(uid="acct")
    # 50,000 * 0.9 - 9,000 * 0.25 = 42,750 credits: 85 requests of 500 at once, then 9,000 / s.
    assert admitted(lambda: lim.acquire_message("c", 0.0), 200) == 85
    d = lim.acquire_message("c", 0.0)
    assert d.retry_after == pytest.approx((500 - 250) / 9000)
    assert sum(lim.acquire_subscribe("c", 0.0, 1).allowed for _ in range(20)) == 8, "24,750 / 3,000"


# Dialects ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "venue"),
    [
        ("binance_spot", "binance"),
        ("binance_usdm", "binance"),
        ("okx", "okx"),
        ("bybit", "bybit"),
        ("coinbase", "coinbase"),
        ("kraken", "kraken"),
        ("deribit", "deribit"),
    ],
)
def test_each_preset_names_its_dialect_and_can_lend_it(name: str, venue: str) -> None:
    assert PRESETS[name]().venue == venue
    assert PRESETS[name](venue=None).venue is None
