"""How a :class:`~rxws.ratelimit.VenueRateLimiter` consults and reports penalties. Private.

A connection's identity (its keys per scope) maps to penalty keys (``"global"``, ``"ip:..."``,
``"connection:..."``); a penalty on any of them refuses every action of the connection.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

from rxws.ratelimit._interface import PenaltyStore
from rxws.ratelimit.base import Action, Decision, Scope
from rxws.ratelimit.events import PenaltyEnded, PenaltyStarted, RateLimitEvent, Rejected

__all__ = ["Penalties"]


class Penalties:
    """A penalty store and the scope a violation penalises by default."""

    __slots__ = ("scope", "store")

    def __init__(self, store: PenaltyStore, scope: Scope) -> None:
        self.store = store
        self.scope = Scope(scope)

    @staticmethod
    def keys(keys: Mapping[Scope, Hashable]) -> Iterable[str]:
        """Every penalty key a connection with ``keys`` answers to."""
        yield "global"
        for scope, key in keys.items():
            if key is not None:
                yield f"{scope.value}:{key}"

    def remaining(self, keys: Mapping[Scope, Hashable], now: float) -> float:
        """The longest penalty over ``keys`` (0.0 when none)."""
        return max((self.store.remaining(k, now) for k in self.keys(keys)), default=0.0)

    def check(
        self,
        action: Action,
        conn_id: str,
        keys: Mapping[Scope, Hashable],
        now: float,
        events: list[RateLimitEvent],
    ) -> Decision | None:
        """A refusal while a penalty runs (announcing ends seen), else None."""
        if not len(self.store):
            return None
        wait = 0.0
        for pkey in self.keys(keys):
            if self.store.ended(pkey, now):
                events.append(PenaltyEnded(at=now, scope=pkey))
            rem = self.store.remaining(pkey, now)
            if rem > wait:
                wait = rem
        if wait <= 0.0:
            return None
        events.append(Rejected(at=now, action=action, conn_id=conn_id, why="penalty", retry_after=wait))
        return Decision(False, wait)

    def report(
        self,
        keys: Mapping[Scope, Hashable],
        now: float,
        retry_after: float | None,
        scope: Scope | None,
        events: list[RateLimitEvent],
    ) -> float:
        """Start or extend the penalty of ``keys``' key of ``scope``; returns its seconds."""
        target = Scope(scope) if scope is not None else self.scope
        key = keys.get(target)
        if target is Scope.GLOBAL:
            pkey = "global"
        elif key is None:  # e.g. a UID penalty without a uid: fall back to the IP
            pkey = f"{Scope.IP.value}:{keys.get(Scope.IP)}"
        else:
            pkey = f"{target.value}:{key}"
        if self.store.ended(pkey, now):
            events.append(PenaltyEnded(at=now, scope=pkey))
        seconds = self.store.report(pkey, now, retry_after)
        events.append(PenaltyStarted(at=now, scope=pkey, seconds=seconds))
        return seconds
