"""The interface a client asks of a rate limiter, and where a limiter keeps penalties.

Private: :mod:`rxws.ratelimit.venue` re-exports :class:`WebSocketRateLimiter`,
:class:`PenaltyStore` and :data:`Listener`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from rxws.ratelimit.base import Decision
from rxws.ratelimit.events import RateLimitEvent
from rxws.ratelimit.penalty import PenaltyPolicy

__all__ = ["Listener", "PenaltyStore", "WebSocketRateLimiter"]

Listener = Callable[[RateLimitEvent], None]
"""Told every rate-limit event a limiter emits (see ``add_listener``)."""


@runtime_checkable
class WebSocketRateLimiter(Protocol):
    """The decisions a WebSocket client asks of a venue's rate limiter.

    Every method takes ``now`` in seconds from the caller's clock (the client's scheduler), and
    every ``acquire_*`` returns a :class:`~rxws.ratelimit.Decision`. While a penalty is active,
    every ``acquire_*`` is refused with ``retry_after`` = the seconds left.
    """

    def acquire_connect(self, conn_id: str, now: float) -> Decision:
        """A connection attempt: connection-rate and concurrent-connection limits.

        When allowed, ``conn_id`` counts as open until :meth:`release_connection`.
        """
        ...

    def release_connection(self, conn_id: str, now: float) -> None:
        """``conn_id`` ended: free its concurrent slot and its per-connection budgets."""
        ...

    def acquire_message(self, conn_id: str, now: float, cost: float = 1.0) -> Decision:
        """One outbound frame on ``conn_id`` (subscribe frames, pings and pongs included)."""
        ...

    def acquire_subscribe(self, conn_id: str, now: float, topics: int) -> Decision:
        """Adding ``topics`` topics to ``conn_id``: topic cap and subscribe-request rate.

        A topic cap that would be exceeded answers ``retry_after=inf``: waiting never frees it.
        """
        ...

    def release_subscriptions(self, conn_id: str, now: float, topics: int) -> None:
        """``topics`` topics were unsubscribed from ``conn_id``."""
        ...

    def report_violation(
        self, conn_id: str, signal: str, now: float, retry_after: float | None = None
    ) -> float:
        """The venue said "too many": start or extend a penalty; returns its seconds from ``now``."""
        ...

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn`` with every event; returns a function that removes it."""
        ...


class PenaltyStore(Protocol):
    """Where a :class:`VenueRateLimiter` keeps penalties: a local
    :class:`~rxws.ratelimit.PenaltyBox` by default, or a shared one
    (:class:`~rxws.ratelimit.redis_store.RedisPenaltyBox`) so every process behind an IP obeys it.
    """

    policy: PenaltyPolicy

    def __len__(self) -> int:
        """0 only when no penalty can be active (the limiter then skips asking)."""
        ...

    def report(self, key: str, now: float, retry_after: float | None = None) -> float:
        """Start or extend the penalty of ``key``; returns the seconds from ``now`` to its end."""
        ...

    def remaining(self, key: str, now: float) -> float:
        """Seconds left of the penalty of ``key`` (0.0 when none is active)."""
        ...

    def ended(self, key: str, now: float) -> bool:
        """True once, on the first call after the penalty of ``key`` ended."""
        ...
