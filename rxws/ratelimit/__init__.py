"""Rate limiting: pure algorithms, the composite limiter, venue limiters, events and presets.

Algorithms (pure, ``now`` in seconds, integer-nanosecond bookkeeping):
:class:`TokenBucket`, :class:`LeakyBucket` (GCRA), :class:`SlidingWindow` (exact),
:class:`SlidingWindowCounter` (O(1) memory, never over), :class:`FixedWindow`; each has
``check``/``commit``/``try_acquire(now, cost=1) -> Decision(allowed, retry_after)``.

:class:`RateLimiter` combines :class:`Rule` objects all-or-nothing across keyed :class:`Scope`\\ s.
:class:`WebSocketRateLimiter` is what the client calls; :class:`VenueRateLimiter` implements it
from rules, and :mod:`rxws.ratelimit.presets` fills it in per venue, with a :class:`Headroom`
inside each documented limit (:mod:`rxws.ratelimit.headroom`) and the dialect it belongs to
(:mod:`rxws.ratelimit.pairing`).

A fleet of processes behind one budget shares every rule through a :class:`FleetLedger`
(Redis, asynchronous, leases for concurrent caps, an outage policy: :mod:`rxws.ratelimit.fleet`);
connection ids unique across the fleet come from :func:`connection_id`.
"""

from rxws.ratelimit.base import ALLOWED, Action, Algorithm, Decision, Scope
from rxws.ratelimit.buckets import LeakyBucket, TokenBucket
from rxws.ratelimit.events import (
    ConnectionReleased,
    Dropped,
    LedgerRestored,
    LedgerUnavailable,
    PenaltyEnded,
    PenaltyStarted,
    Queued,
    RateLimitEvent,
    RateLimitEventAdapter,
    Rejected,
    Throttled,
    ViolationReported,
)
from rxws.ratelimit.fleet import FleetLedger, SharedRule
from rxws.ratelimit.fleet_penalty import FleetPenaltyBox
from rxws.ratelimit.headroom import Headroom
from rxws.ratelimit.identity import connection_id
from rxws.ratelimit.limiter import Keys, RateLimiter, Rule
from rxws.ratelimit.penalty import PenaltyBox, PenaltyPolicy, Signal, classify_violation
from rxws.ratelimit.redis_store import RedisLedger, RedisPenaltyBox, RedisSlidingWindow
from rxws.ratelimit.venue import Listener, PenaltyStore, VenueRateLimiter, WebSocketRateLimiter
from rxws.ratelimit.windows import FixedWindow, SlidingWindow, SlidingWindowCounter

__all__ = [
    "ALLOWED",
    "Action",
    "Algorithm",
    "ConnectionReleased",
    "Decision",
    "Dropped",
    "FixedWindow",
    "FleetLedger",
    "FleetPenaltyBox",
    "Headroom",
    "Keys",
    "LeakyBucket",
    "LedgerRestored",
    "LedgerUnavailable",
    "Listener",
    "PenaltyBox",
    "PenaltyEnded",
    "PenaltyPolicy",
    "PenaltyStarted",
    "PenaltyStore",
    "Queued",
    "RateLimitEvent",
    "RateLimitEventAdapter",
    "RateLimiter",
    "RedisLedger",
    "RedisPenaltyBox",
    "RedisSlidingWindow",
    "Rejected",
    "Rule",
    "Scope",
    "SharedRule",
    "Signal",
    "SlidingWindow",
    "SlidingWindowCounter",
    "Throttled",
    "TokenBucket",
    "VenueRateLimiter",
    "ViolationReported",
    "WebSocketRateLimiter",
    "classify_violation",
    "connection_id",
]
