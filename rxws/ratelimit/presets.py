"""Venue presets: each factory returns a fresh :class:`~rxws.ratelimit.WebSocketRateLimiter`.

Every number comes from ``shared/VENUE_LIMITS.md`` (the venues' public documentation and peer
projects quoting it), read 2026-11-25. Limits use exactly the documented figures: the algorithms
are exact (``SlidingWindow`` never admits more than N in any window), so no headroom is needed for
our own counting. What the documentation leaves out is left out here too, and said so; figures
marked *unverified* come from secondary sources.

Share one instance between every client behind the same IP (and account): budgets are per IP,
not per client. The ``ip``/``uid``/``product`` arguments only label the keys.

Several *processes* behind one IP share the connection budget and the penalties through Redis:
pass ``shared=`` a :class:`~rxws.ratelimit.redis_store.RedisLedger` (or a redis-py client) to
:func:`binance_spot`, :func:`binance_usdm`, :func:`okx`, :func:`bybit` or :func:`kraken`. The
connection-attempt window then lives in Redis (keys ``<prefix>:<venue>:connect:ip:<ip>``), and so
do the penalties of every scope but the connection; message and subscription budgets, counted per
connection, stay in memory.
"""

from __future__ import annotations

from typing import Any

from rxws.ratelimit.base import Algorithm, Scope
from rxws.ratelimit.buckets import TokenBucket
from rxws.ratelimit.limiter import Rule
from rxws.ratelimit.penalty import PenaltyPolicy
from rxws.ratelimit.redis_store import RedisClient, RedisLedger
from rxws.ratelimit.venue import VenueRateLimiter
from rxws.ratelimit.windows import SlidingWindow

__all__ = [
    "PRESETS",
    "binance_spot",
    "binance_usdm",
    "bybit",
    "coinbase",
    "deribit",
    "kraken",
    "okx",
]

SOURCE = "shared/VENUE_LIMITS.md, read 2026-11-25"

Shared = RedisLedger | RedisClient | None
"""What ``shared=`` takes: a ledger, a redis-py client (wrapped in a default ledger) or None."""


def _ledger(shared: Shared) -> RedisLedger | None:
    if shared is None or isinstance(shared, RedisLedger):
        return shared
    return RedisLedger(shared)


def _connect_window(ledger: RedisLedger | None, venue: str, limit: int, per: float) -> Algorithm:
    if ledger is None:
        return SlidingWindow(limit, per)
    return ledger.sliding_window(f"{venue}:connect", limit, per)


def _penalties(ledger: RedisLedger | None, venue: str, policy: PenaltyPolicy | None) -> dict[str, Any]:
    if ledger is None:
        return {"penalty": policy}
    return {"penalty_store": ledger.penalty_box(f"{venue}:penalty", policy)}


def _binance(
    name: str, messages_per_second: int, ip: str, uid: str | None, shared: Shared
) -> VenueRateLimiter:
    ledger = _ledger(shared)
    return VenueRateLimiter(
        name=name,
        ip=ip,
        uid=uid,
        connect=[
            Rule(
                _connect_window(ledger, name, 300, 300.0),
                Scope.IP,
                name="300 connection attempts / 5 min / IP",
            )
        ],
        message=[
            Rule(
                SlidingWindow(messages_per_second, 1.0),
                Scope.CONNECTION,
                name=f"{messages_per_second} messages / s / connection",
            )
        ],
        max_topics_per_connection=1024,
        **_penalties(ledger, name, PenaltyPolicy(initial=1.0, factor=2.0, max=600.0, reset_after=300.0)),
    )


def binance_spot(*, ip: str = "local", uid: str | None = None, shared: Shared = None) -> VenueRateLimiter:
    """Binance spot WebSocket streams, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    - 300 connection attempts per 5 minutes per IP (``SlidingWindow(300, 300)`` per IP);
    - 5 messages per second per connection, ping and pong frames included
      (``SlidingWindow(5, 1)`` per connection; exactly the documented limit: the window is exact,
      so no headroom is taken). The client must pass every frame, control frames included, through
      ``acquire_message``;
    - 1024 streams per connection.

    A close 1008 "Too many requests" or an HTTP 429/418 starts a penalty (1 s doubling to 10 min;
    Binance's own bans run from 2 min to 3 days, so a Retry-After is honoured when longer).

    ``shared=`` a :class:`~rxws.ratelimit.redis_store.RedisLedger` (or redis-py client) counts
    the 300 attempts per 5 minutes, and keeps the penalties, in Redis, across every process
    behind the IP (one round trip per connection attempt).
    """
    return _binance("binance_spot", 5, ip, uid, shared)


def binance_usdm(*, ip: str = "local", uid: str | None = None, shared: Shared = None) -> VenueRateLimiter:
    """Binance USDⓈ-M futures streams, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    As :func:`binance_spot` except 10 messages per second per connection.
    """
    return _binance("binance_usdm", 10, ip, uid, shared)


def okx(*, ip: str = "local", uid: str | None = None, shared: Shared = None) -> VenueRateLimiter:
    """OKX v5 WebSocket, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    - 3 connection attempts per second per IP (``SlidingWindow(3, 1)``);
    - 480 subscribe/unsubscribe/login requests per connection per hour
      (``SlidingWindow(480, 3600)`` per connection; unsubscribes count, via
      ``release_subscriptions``);
    - not modelled: "30 connections per channel per sub-account" (a per-channel cap the limiter
      cannot see); no per-message rate is documented.

    ``shared=``: the connection rate and penalties counted in Redis (see :func:`binance_spot`).
    """
    ledger = _ledger(shared)
    return VenueRateLimiter(
        name="okx",
        ip=ip,
        uid=uid,
        connect=[Rule(_connect_window(ledger, "okx", 3, 1.0), Scope.IP, name="3 connections / s / IP")],
        subscribe=[
            Rule(
                SlidingWindow(480, 3600.0),
                Scope.CONNECTION,
                name="480 subscribe/unsubscribe/login / h / connection",
            )
        ],
        unsubscribe_counts=True,
        **_penalties(ledger, "okx", None),
    )


def bybit(
    *, ip: str = "local", uid: str | None = None, market: str | None = None, shared: Shared = None
) -> VenueRateLimiter:
    """Bybit v5 WebSocket, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    - at most 500 connection attempts per 5 minutes per IP (``SlidingWindow(500, 300)``);
    - at most 1000 market-data connections open per IP per market (``market`` labels the
      product scope; without it the cap counts all markets of the IP together, which is stricter);
    - the client message rate is *unverified* (undocumented), so no message rule is set;
    - the 21,000-character ``args`` and 10-args-per-request (spot) caps are message-shape limits,
      applied by the Bybit dialect's batching, not by this limiter.

    ``shared=``: the connection rate and penalties counted in Redis (see :func:`binance_spot`);
    the cap on open connections stays per process.
    """
    ledger = _ledger(shared)
    return VenueRateLimiter(
        name="bybit",
        ip=ip,
        uid=uid,
        product=market,
        connect=[
            Rule(_connect_window(ledger, "bybit", 500, 300.0), Scope.IP, name="500 connections / 5 min / IP")
        ],
        max_connections={Scope.PRODUCT if market else Scope.IP: 1000},
        **_penalties(ledger, "bybit", None),
    )


def coinbase(*, ip: str = "local", uid: str | None = None, advanced_trade: bool = False) -> VenueRateLimiter:
    """Coinbase WebSocket feeds, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    Coinbase Exchange (default):

    - 8 connection attempts per second per IP, bursts to 20 (``TokenBucket(8, 1, burst=20)``);
    - 100 messages per second per IP (``SlidingWindow(100, 1)`` per IP, shared by connections);
    - "10 per product per channel" subscriptions is not a per-connection topic cap and is not
      modelled.

    Coinbase Advanced Trade (``advanced_trade=True``): 8 connection attempts per second per IP and,
    unauthenticated, 8 messages per second per IP (both ``SlidingWindow(8, 1)``).
    """
    if advanced_trade:
        return VenueRateLimiter(
            name="coinbase_advanced",
            ip=ip,
            uid=uid,
            connect=[Rule(SlidingWindow(8, 1.0), Scope.IP, name="8 connections / s / IP")],
            message=[Rule(SlidingWindow(8, 1.0), Scope.IP, name="8 messages / s / IP")],
        )
    return VenueRateLimiter(
        name="coinbase",
        ip=ip,
        uid=uid,
        connect=[Rule(TokenBucket(8, 1.0, 20), Scope.IP, name="8 connections / s / IP, burst 20")],
        message=[Rule(SlidingWindow(100, 1.0), Scope.IP, name="100 messages / s / IP")],
    )


def kraken(*, ip: str = "local", uid: str | None = None, shared: Shared = None) -> VenueRateLimiter:
    """Kraken v2 WebSocket, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    - about 150 connection attempts per rolling 10 minutes per IP (``SlidingWindow(150, 600)``),
      then a 10-minute ban: a violation therefore starts a 10-minute penalty (doubling to 1 h);
    - the message rate "varies with load" and is not documented as a number: no message rule; an
      "Exceeded msg rate" error is a violation signal (``kraken_exceeded_msg_rate``);
    - "reconnect no faster than once per 5 s after maintenance" applies only after maintenance
      and is left to the host's reconnect policy.

    ``shared=``: the connection rate and penalties counted in Redis (see :func:`binance_spot`).
    """
    ledger = _ledger(shared)
    return VenueRateLimiter(
        name="kraken",
        ip=ip,
        uid=uid,
        connect=[
            Rule(
                _connect_window(ledger, "kraken", 150, 600.0), Scope.IP, name="150 connections / 10 min / IP"
            )
        ],
        **_penalties(
            ledger, "kraken", PenaltyPolicy(initial=600.0, factor=2.0, max=3600.0, reset_after=600.0)
        ),
    )


DERIBIT_CREDITS_PER_REQUEST = 500
DERIBIT_CREDITS_PER_SUBSCRIBE = 3_000


def deribit(*, ip: str = "local", uid: str | None = None) -> VenueRateLimiter:
    """Deribit JSON-RPC over WebSocket (credit-based), as documented in shared/VENUE_LIMITS.md,
    read 2026-11-25.

    - every request costs 500 credits from a pool of 50,000 refilled at 10,000 per second
      (``TokenBucket(10_000, 1, burst=50_000)``, each message weighted 500 credits: 100 at once,
      20 per second sustained); the pool is per sub-account when ``uid`` is given, else per IP;
    - ``public/subscribe`` costs 3,000 credits of a separate 30,000 pool; that pool's refill rate
      is *unverified* (not in the document; a secondary source, NautilusTrader, quotes about 3.3
      subscribes per second, i.e. 10,000 credits per second, which is used here);
    - 32 connections per IP (*unverified*), taken as concurrent connections.

    An error 10028 ``too_many_requests`` terminates the session; report it as ``deribit_10028``.
    """
    credit_scope = Scope.UID if uid else Scope.IP
    return VenueRateLimiter(
        name="deribit",
        ip=ip,
        uid=uid,
        max_connections={Scope.IP: 32},
        message=[
            Rule(
                TokenBucket(10_000, 1.0, 50_000),
                credit_scope,
                weight=DERIBIT_CREDITS_PER_REQUEST,
                name="credits: 500 / request, pool 50,000, refill 10,000 / s",
            )
        ],
        subscribe=[
            Rule(
                TokenBucket(10_000, 1.0, 30_000),
                credit_scope,
                weight=DERIBIT_CREDITS_PER_SUBSCRIBE,
                name="subscribe credits: 3,000 / request, pool 30,000, refill 10,000 / s (unverified)",
            )
        ],
    )


PRESETS = {
    "binance_spot": binance_spot,
    "binance_usdm": binance_usdm,
    "okx": okx,
    "bybit": bybit,
    "coinbase": coinbase,
    "kraken": kraken,
    "deribit": deribit,
}
"""Every preset factory by venue name."""
