"""Venue presets: each factory returns a fresh :class:`~rxws.ratelimit.WebSocketRateLimiter`.

Every number comes from ``shared/VENUE_LIMITS.md`` (the venues' public documentation and peer
projects quoting it), read 2026-11-25. What the documentation leaves out is left out here too,
and said so; figures marked *unverified* come from secondary sources.

Headroom: every preset takes ``headroom=`` (default :data:`~rxws.ratelimit.headroom.DEFAULT_HEADROOM`,
10% of each count and 0.25 s added to each window) and paces *inside* the documented figures. The
algorithms are exact on the client's clock, but the venue counts arrivals on its own, and a delay
that varies by ``J`` between the two compresses them: only a window lengthened by ``J`` keeps the
venue's count within its limit (:mod:`rxws.ratelimit.headroom` says why and what the defaults are
sized from). The rule names keep the documented figure and add the paced one.
``headroom=Headroom()`` (or None) paces at exactly the documented figures; caps (topics or
connections open at once) are counts without timing and are never reduced.

Dialect: every preset names the venue whose dialect it belongs to (``venue``, a protocol's
``name``); a client built with another dialect refuses the pair (:mod:`rxws.ratelimit.pairing`).
``venue=None`` lends the limits to any dialect on purpose.

Share one instance between every client behind the same IP (and account): budgets are per IP,
not per client. The ``ip``/``uid``/``product`` arguments only label the keys.

Several *processes* (or hosts) behind one IP or account share every budget through Redis: pass
``shared=`` a :class:`~rxws.ratelimit.fleet.FleetLedger` (or a ``redis.asyncio`` client, wrapped in
a default one) to any preset. Every rule whose scope is wider than one connection (IP, account,
product) and every concurrent-connection cap is then decided in Redis, atomically per action, on
the server's clock, without blocking the event loop; penalties are shared too
(:mod:`rxws.ratelimit.fleet`). Per-connection rules stay in memory (connection ids are unique).
Every process must use the same preset arguments (headroom included).

The older synchronous ledger (:class:`~rxws.ratelimit.redis_store.RedisLedger`, or a synchronous
redis-py client) is still accepted by :func:`binance_spot`, :func:`binance_usdm`, :func:`okx`,
:func:`bybit` and :func:`kraken`: it shares the connection-attempt window and the penalties only,
with a blocking round trip per attempt.
"""

from __future__ import annotations

from typing import Any

from rxws.ratelimit.base import Algorithm, Scope
from rxws.ratelimit.buckets import TokenBucket
from rxws.ratelimit.fleet import FleetLedger
from rxws.ratelimit.headroom import DEFAULT_HEADROOM, Headroom
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

Shared = FleetLedger | RedisLedger | RedisClient | None
"""What ``shared=`` takes: a :class:`~rxws.ratelimit.fleet.FleetLedger` (or a ``redis.asyncio``
client, wrapped in a default one), the older synchronous ledger or client, or None."""


def _fleet(shared: Shared) -> FleetLedger | None:
    if isinstance(shared, FleetLedger):
        return shared
    if shared is not None and type(shared).__module__.startswith("redis.asyncio"):
        return FleetLedger(shared)
    return None


def _ledger(shared: Shared) -> RedisLedger | None:
    if shared is None or isinstance(shared, RedisLedger | FleetLedger) or _fleet(shared) is not None:
        return shared if isinstance(shared, RedisLedger) else None
    return RedisLedger(shared)


def _fleet_only(shared: Shared, name: str) -> FleetLedger | None:
    fleet = _fleet(shared)
    if shared is not None and fleet is None:
        raise ValueError(f"{name}(shared=...) needs a FleetLedger (or a redis.asyncio client)")
    return fleet


def _connect_window(ledger: RedisLedger | None, venue: str, limit: int, per: float) -> Algorithm:
    if ledger is None:
        return SlidingWindow(limit, per)
    return ledger.sliding_window(f"{venue}:connect", limit, per)


def _penalties(shared: Shared, venue: str, policy: PenaltyPolicy | None) -> dict[str, Any]:
    fleet = _fleet(shared)
    if fleet is not None:
        return {"ledger": fleet, "penalty_store": fleet.penalty_box(f"{venue}:penalty", policy)}
    ledger = _ledger(shared)
    if ledger is None:
        return {"penalty": policy}
    return {"penalty_store": ledger.penalty_box(f"{venue}:penalty", policy)}


def _binance(
    name: str,
    messages_per_second: int,
    ip: str,
    uid: str | None,
    shared: Shared,
    headroom: Headroom | None,
    venue: str | None,
) -> VenueRateLimiter:
    ledger = _ledger(shared)
    return VenueRateLimiter(
        name=name,
        venue=venue,
        headroom=headroom,
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
        **_penalties(shared, name, PenaltyPolicy(initial=1.0, factor=2.0, max=600.0, reset_after=300.0)),
    )


def binance_spot(
    *,
    ip: str = "local",
    uid: str | None = None,
    shared: Shared = None,
    headroom: Headroom | None = DEFAULT_HEADROOM,
    venue: str | None = "binance",
) -> VenueRateLimiter:
    """Binance spot WebSocket streams, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    - 300 connection attempts per 5 minutes per IP (documented ``SlidingWindow(300, 300)`` per
      IP; paced at 270 per 300.25 s with the default headroom);
    - 5 messages per second per connection, ping and pong frames included (documented
      ``SlidingWindow(5, 1)`` per connection; paced at 4 per 1.25 s with the default headroom:
      the 0.25 s absorb the jitter between our clock and Binance's count, the fifth slot is left
      for the pong the transport sends unasked when Binance pings). The client passes every
      frame, control frames included, through ``acquire_message`` (or ``charge_message``);
    - 1024 streams per connection (a cap: no headroom).

    A close 1008 "Too many requests" or an HTTP 429/418 starts a penalty (1 s doubling to 10 min;
    Binance's own bans run from 2 min to 3 days, so a Retry-After is honoured when longer).

    ``shared=`` a :class:`~rxws.ratelimit.fleet.FleetLedger` counts the 300 attempts per 5
    minutes, and keeps the penalties, in Redis, across every process behind the IP, without
    blocking the loop (the older synchronous :class:`~rxws.ratelimit.redis_store.RedisLedger`
    does the same with one blocking round trip per attempt); every process must use the same
    headroom.

    ``headroom`` (default 10% of each count, 0.25 s added to each window: see
    :mod:`rxws.ratelimit.headroom`); ``venue`` (default ``'binance'``): the dialect these
    limits belong to, None to lend them to any dialect.
    """
    return _binance("binance_spot", 5, ip, uid, shared, headroom, venue)


def binance_usdm(
    *,
    ip: str = "local",
    uid: str | None = None,
    shared: Shared = None,
    headroom: Headroom | None = DEFAULT_HEADROOM,
    venue: str | None = "binance",
) -> VenueRateLimiter:
    """Binance USDⓈ-M futures streams, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    As :func:`binance_spot` except 10 messages per second per connection (paced at 9 per 1.25 s
    with the default headroom).

    ``headroom`` (default 10% of each count, 0.25 s added to each window: see
    :mod:`rxws.ratelimit.headroom`); ``venue`` (default ``'binance'``): the dialect these
    limits belong to, None to lend them to any dialect.
    """
    return _binance("binance_usdm", 10, ip, uid, shared, headroom, venue)


def okx(
    *,
    ip: str = "local",
    uid: str | None = None,
    shared: Shared = None,
    headroom: Headroom | None = DEFAULT_HEADROOM,
    venue: str | None = "okx",
) -> VenueRateLimiter:
    """OKX v5 WebSocket, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    - 3 connection attempts per second per IP (documented ``SlidingWindow(3, 1)``; paced at 2
      per 1.25 s with the default headroom);
    - 480 subscribe/unsubscribe/login requests per connection per hour (documented
      ``SlidingWindow(480, 3600)`` per connection, paced at 432 per 3600.25 s; unsubscribes
      count, via ``release_subscriptions``);
    - not modelled: "30 connections per channel per sub-account" (a per-channel cap the limiter
      cannot see); no per-message rate is documented.

    ``shared=``: the connection rate and penalties counted in Redis (see :func:`binance_spot`).

    ``headroom`` (default 10% of each count, 0.25 s added to each window: see
    :mod:`rxws.ratelimit.headroom`); ``venue`` (default ``'okx'``): the dialect these
    limits belong to, None to lend them to any dialect.
    """
    ledger = _ledger(shared)
    return VenueRateLimiter(
        name="okx",
        venue=venue,
        headroom=headroom,
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
        **_penalties(shared, "okx", None),
    )


def bybit(
    *,
    ip: str = "local",
    uid: str | None = None,
    market: str | None = None,
    shared: Shared = None,
    headroom: Headroom | None = DEFAULT_HEADROOM,
    venue: str | None = "bybit",
) -> VenueRateLimiter:
    """Bybit v5 WebSocket, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    - at most 500 connection attempts per 5 minutes per IP (documented
      ``SlidingWindow(500, 300)``; paced at 450 per 300.25 s with the default headroom);
    - at most 1000 market-data connections open per IP per market (``market`` labels the
      product scope; without it the cap counts all markets of the IP together, which is stricter);
    - the client message rate is *unverified* (undocumented), so no message rule is set;
    - the 21,000-character ``args`` per connection and 10-args-per-request (spot) caps are
      message-shape limits: the Bybit dialect's batching splits requests, and the client refuses
      a ``watch()`` that would take a connection's ``args`` past 21,000 characters.

    ``shared=``: the connection rate and penalties counted in Redis (see :func:`binance_spot`);
    with a :class:`~rxws.ratelimit.fleet.FleetLedger` the cap on open connections is shared too
    (as leases); with the older synchronous ledger it stays per process.

    ``headroom`` (default 10% of each count, 0.25 s added to each window: see
    :mod:`rxws.ratelimit.headroom`); ``venue`` (default ``'bybit'``): the dialect these
    limits belong to, None to lend them to any dialect.
    """
    ledger = _ledger(shared)
    return VenueRateLimiter(
        name="bybit",
        venue=venue,
        headroom=headroom,
        ip=ip,
        uid=uid,
        product=market,
        connect=[
            Rule(_connect_window(ledger, "bybit", 500, 300.0), Scope.IP, name="500 connections / 5 min / IP")
        ],
        max_connections={Scope.PRODUCT if market else Scope.IP: 1000},
        **_penalties(shared, "bybit", None),
    )


def coinbase(
    *,
    ip: str = "local",
    uid: str | None = None,
    advanced_trade: bool = False,
    shared: Shared = None,
    headroom: Headroom | None = DEFAULT_HEADROOM,
    venue: str | None = "coinbase",
) -> VenueRateLimiter:
    """Coinbase WebSocket feeds, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    Coinbase Exchange (default):

    - 8 connection attempts per second per IP, bursts to 20 (documented
      ``TokenBucket(8, 1, burst=20)``; paced at 7 per second, bucket 16, with the default
      headroom: the bucket gives up what refills in 0.25 s);
    - 100 messages per second per IP (documented ``SlidingWindow(100, 1)`` per IP, shared by
      connections; paced at 90 per 1.25 s);
    - "10 per product per channel" subscriptions is not a per-connection topic cap and is not
      modelled.

    Coinbase Advanced Trade (``advanced_trade=True``): 8 connection attempts per second per IP and,
    unauthenticated, 8 messages per second per IP (both documented ``SlidingWindow(8, 1)``; paced
    at 7 per 1.25 s).

    ``shared=`` a :class:`~rxws.ratelimit.fleet.FleetLedger`: the connection bucket and the
    per-IP message window are decided in Redis for every process behind the IP (messages spent
    from blocks granted in advance: see :mod:`rxws.ratelimit.fleet`), and penalties are shared.

    rxws ships no Coinbase dialect: a custom one pairs with this preset by declaring
    ``name = "coinbase"`` (the same for Advanced Trade, whose messages differ).

    ``headroom`` (default 10% of each count, 0.25 s added to each window: see
    :mod:`rxws.ratelimit.headroom`); ``venue`` (default ``'coinbase'``): the dialect these
    limits belong to, None to lend them to any dialect.
    """
    sharing = _penalties(_fleet_only(shared, "coinbase"), "coinbase", None)
    if advanced_trade:
        return VenueRateLimiter(
            name="coinbase_advanced",
            venue=venue,
            headroom=headroom,
            ip=ip,
            uid=uid,
            connect=[Rule(SlidingWindow(8, 1.0), Scope.IP, name="8 connections / s / IP")],
            message=[Rule(SlidingWindow(8, 1.0), Scope.IP, name="8 messages / s / IP")],
            **sharing,
        )
    return VenueRateLimiter(
        name="coinbase",
        venue=venue,
        headroom=headroom,
        ip=ip,
        uid=uid,
        connect=[Rule(TokenBucket(8, 1.0, 20), Scope.IP, name="8 connections / s / IP, burst 20")],
        message=[Rule(SlidingWindow(100, 1.0), Scope.IP, name="100 messages / s / IP")],
        **sharing,
    )


def kraken(
    *,
    ip: str = "local",
    uid: str | None = None,
    shared: Shared = None,
    headroom: Headroom | None = DEFAULT_HEADROOM,
    venue: str | None = "kraken",
) -> VenueRateLimiter:
    """Kraken v2 WebSocket, as documented in shared/VENUE_LIMITS.md, read 2026-11-25.

    - about 150 connection attempts per rolling 10 minutes per IP (documented
      ``SlidingWindow(150, 600)``; paced at 135 per 600.25 s with the default headroom),
      then a 10-minute ban: a violation therefore starts a 10-minute penalty (doubling to 1 h);
    - the message rate "varies with load" and is not documented as a number: no message rule; an
      "Exceeded msg rate" error is a violation signal (``kraken_exceeded_msg_rate``);
    - "reconnect no faster than once per 5 s after maintenance" applies only after maintenance
      and is left to the host's reconnect policy.

    ``shared=``: the connection rate and penalties counted in Redis (see :func:`binance_spot`).

    rxws ships no Kraken dialect: a custom one pairs with this preset by declaring
    ``name = "kraken"``.

    ``headroom`` (default 10% of each count, 0.25 s added to each window: see
    :mod:`rxws.ratelimit.headroom`); ``venue`` (default ``'kraken'``): the dialect these
    limits belong to, None to lend them to any dialect.
    """
    ledger = _ledger(shared)
    return VenueRateLimiter(
        name="kraken",
        venue=venue,
        headroom=headroom,
        ip=ip,
        uid=uid,
        connect=[
            Rule(
                _connect_window(ledger, "kraken", 150, 600.0), Scope.IP, name="150 connections / 10 min / IP"
            )
        ],
        **_penalties(
            shared, "kraken", PenaltyPolicy(initial=600.0, factor=2.0, max=3600.0, reset_after=600.0)
        ),
    )


DERIBIT_CREDITS_PER_REQUEST = 500
DERIBIT_CREDITS_PER_SUBSCRIBE = 3_000


def deribit(
    *,
    ip: str = "local",
    uid: str | None = None,
    shared: Shared = None,
    headroom: Headroom | None = DEFAULT_HEADROOM,
    venue: str | None = "deribit",
) -> VenueRateLimiter:
    """Deribit JSON-RPC over WebSocket (credit-based), as documented in shared/VENUE_LIMITS.md,
    read 2026-11-25.

    - every request costs 500 credits from a pool of 50,000 refilled at 10,000 per second
      (documented ``TokenBucket(10_000, 1, burst=50_000)``, each message weighted 500 credits:
      100 at once, 20 per second sustained; paced at 9,000 per second from a pool of 42,750 with
      the default headroom); the pool is per sub-account when ``uid`` is given, else per IP;
    - ``public/subscribe`` costs 3,000 credits of a separate 30,000 pool; that pool's refill rate
      is *unverified* (not in the document; a secondary source, NautilusTrader, quotes about 3.3
      subscribes per second, i.e. 10,000 credits per second, which is used here; paced at 9,000
      per second from a pool of 24,750);
    - 32 connections per IP (*unverified*), taken as concurrent connections (a cap: no headroom).

    An error 10028 ``too_many_requests`` terminates the session; report it as ``deribit_10028``.

    ``shared=`` a :class:`~rxws.ratelimit.fleet.FleetLedger`: both credit pools (per account or
    IP) and the 32-connection cap (as leases) are decided in Redis for every process, and
    penalties are shared. The pools give up what refills in the ledger's ``hold``.

    ``headroom`` (default 10% of each count, 0.25 s added to each window: see
    :mod:`rxws.ratelimit.headroom`); ``venue`` (default ``'deribit'``): the dialect these
    limits belong to, None to lend them to any dialect.
    """
    credit_scope = Scope.UID if uid else Scope.IP
    sharing = _penalties(_fleet_only(shared, "deribit"), "deribit", None)
    return VenueRateLimiter(
        name="deribit",
        venue=venue,
        headroom=headroom,
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
        **sharing,
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
