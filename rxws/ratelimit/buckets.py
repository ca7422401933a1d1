"""Bucket algorithms: :class:`TokenBucket` (a token count) and :class:`LeakyBucket` (GCRA).

Both allow a sustained ``rate`` per ``per`` seconds with a burst of at most ``burst`` cost units;
they are the same rule written two ways, and the tests hold them to identical decisions. The
token bucket keeps a token count scaled to integers; the leaky bucket keeps one integer, the
theoretical arrival time (TAT) of the Generic Cell Rate Algorithm. ``LeakyBucket`` defaults to a
burst of one: it spaces actions evenly, one every ``per / rate`` seconds, which is what a leaky
bucket used as a queue does.

Neither guarantees "at most ``rate`` in any window of ``per`` seconds" (a full bucket plus the
refill admits up to ``burst + rate * window / per``). For a venue limit phrased as "N per window",
use :class:`~rxws.ratelimit.SlidingWindow`.
"""

from __future__ import annotations

import math
from fractions import Fraction

from rxws.ratelimit.base import (
    ALLOWED,
    Decision,
    cost_error,
    denied,
    positive_amount,
    positive_ns,
)

__all__ = ["LeakyBucket", "TokenBucket"]

_FAR_PAST = -(1 << 62)


def _units(cost: float, scale: int) -> int:
    """``cost * scale`` as an int, rounded up (a fractional cost is never under-counted)."""
    if cost.__class__ is int:
        return int(cost) * scale
    if cost != cost or cost < 0:  # NaN or negative: let the caller's check raise
        return -1
    if cost.__class__ is float and cost.is_integer():
        return int(cost) * scale
    if math.isinf(cost):
        return 1 << 200  # larger than any capacity: the caller raises
    return math.ceil(Fraction(cost) * scale)


class _Shape:
    """What a bucket is made of, read-only (``rate`` per ``per`` seconds, ``burst``): the
    properties :mod:`rxws.ratelimit.headroom` reads to rebuild a bucket with a margin."""

    __slots__ = ()
    _rate: float
    _per: float
    _burst: float

    @property
    def rate(self) -> float:
        """Cost units refilled per ``per`` seconds."""
        return self._rate

    @property
    def per(self) -> float:
        """The refill period in seconds."""
        return self._per

    @property
    def burst(self) -> float:
        """The bucket size (the tolerance, for GCRA) in cost units."""
        return self._burst


class TokenBucket(_Shape):
    """``rate`` tokens per ``per`` seconds, up to ``burst`` tokens; a request spends ``cost``.

    The bucket starts full. Token counts are integers scaled by ``per`` in nanoseconds times the
    denominator of ``rate``, so refill is exact for any ``rate`` a float can express.

    Args:
        rate: tokens added per ``per`` seconds (> 0).
        per: the refill period in seconds (> 0).
        burst: the bucket size: the most cost admitted at once (> 0).

    Raises:
        ValueError: on a non-positive or non-finite parameter.
    """

    __slots__ = ("_burst", "_cap", "_level", "_num", "_per", "_rate", "_scale", "_t")

    def __init__(self, rate: float, per: float, burst: float) -> None:
        self._rate = positive_amount(rate, "TokenBucket rate")
        self._per = per
        self._burst = positive_amount(burst, "TokenBucket burst")
        per_ns = positive_ns(per, "TokenBucket per")
        frac = Fraction(self._rate)
        self._num = frac.numerator  # refill per ns, in scaled units
        self._scale = per_ns * frac.denominator  # scaled units per token
        self._cap = math.floor(Fraction(self._burst) * self._scale)
        self._level = self._cap
        self._t = _FAR_PAST

    @property
    def capacity(self) -> float:
        """The bucket size: the largest cost one request may have."""
        return self._burst

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self._rate!r}, per={self._per!r}, burst={self._burst!r})"

    def clone(self) -> TokenBucket:
        """A new, full bucket with the same parameters."""
        return TokenBucket(self._rate, self._per, self._burst)

    def _level_at(self, t: int) -> int:
        elapsed = t - self._t
        if elapsed <= 0:
            return self._level
        level = self._level + elapsed * self._num
        return self._cap if level > self._cap else level

    def check(self, now: float, cost: float = 1) -> Decision:
        """Whether ``cost`` tokens are available at ``now``; nothing is spent."""
        t = int(now * 1e9)
        c = _units(cost, self._scale)
        level = self._level_at(t)
        if 0 <= c <= level:
            return ALLOWED
        return self._deny(now, t, level, c, cost)

    def commit(self, now: float, cost: float = 1) -> None:
        """Spend ``cost`` tokens at ``now``, going into debt if there are not enough."""
        t = int(now * 1e9)
        c = _units(cost, self._scale)
        if c < 0:
            raise cost_error(cost, self._burst, repr(self))
        self._level = self._level_at(t) - c
        if t > self._t:
            self._t = t

    def try_acquire(self, now: float, cost: float = 1) -> Decision:
        """Spend ``cost`` tokens if available at ``now``; otherwise say how long until they are."""
        t = int(now * 1e9)
        c = int(cost) * self._scale if cost.__class__ is int else _units(cost, self._scale)
        elapsed = t - self._t
        if elapsed > 0:
            level = self._level + elapsed * self._num
            if level > self._cap:
                level = self._cap
        else:
            level = self._level
        if 0 <= c <= level:
            self._level = level - c
            if elapsed > 0:
                self._t = t
            return ALLOWED
        return self._deny(now, t, level, c, cost)

    def _deny(self, now: float, t: int, level: int, c: int, cost: float) -> Decision:
        if c < 0 or c > self._cap:
            raise cost_error(cost, self._burst, repr(self))
        wait_ns = -(-(c - level) // self._num)
        return denied(now, t, wait_ns)

    def idle(self, now: float) -> bool:
        """True when the bucket is full again at ``now``."""
        return self._level_at(int(now * 1e9)) >= self._cap


class LeakyBucket(_Shape):
    """GCRA: one cost unit every ``per / rate`` seconds, with a tolerance of ``burst`` units.

    State is a single integer, the theoretical arrival time in nanoseconds. The emission interval
    is rounded *up* to a whole nanosecond, so the effective rate is never above ``rate``.

    Args:
        rate: cost units admitted per ``per`` seconds (> 0).
        per: the period in seconds (> 0).
        burst: how many units may go back to back (default 1: evenly spaced, no burst).

    Raises:
        ValueError: on a non-positive or non-finite parameter.
    """

    __slots__ = ("_burst", "_interval", "_per", "_rate", "_tat", "_tau")

    def __init__(self, rate: float, per: float, *, burst: float = 1) -> None:
        self._rate = positive_amount(rate, "LeakyBucket rate")
        self._per = per
        self._burst = positive_amount(burst, "LeakyBucket burst")
        per_ns = positive_ns(per, "LeakyBucket per")
        self._interval = max(1, math.ceil(Fraction(per_ns) / Fraction(self._rate)))
        self._tau = math.floor(Fraction(self._burst) * self._interval)
        self._tat = _FAR_PAST

    @property
    def capacity(self) -> float:
        """The tolerance in cost units: the largest cost one request may have."""
        return self._burst

    @property
    def interval(self) -> float:
        """Seconds between two unit-cost actions at the sustained rate."""
        return self._interval / 1e9

    def __repr__(self) -> str:
        return f"LeakyBucket(rate={self._rate!r}, per={self._per!r}, burst={self._burst!r})"

    def clone(self) -> LeakyBucket:
        """A new, empty bucket with the same parameters."""
        return LeakyBucket(self._rate, self._per, burst=self._burst)

    def check(self, now: float, cost: float = 1) -> Decision:
        """Whether ``cost`` conforms at ``now``; the TAT is not moved."""
        t = int(now * 1e9)
        inc = _units(cost, self._interval)
        tat = self._tat if self._tat > t else t
        if inc >= 0 and tat + inc - t <= self._tau:
            return ALLOWED
        return self._deny(now, t, tat + inc - t, inc, cost)

    def commit(self, now: float, cost: float = 1) -> None:
        """Move the TAT by ``cost`` intervals, conforming or not."""
        t = int(now * 1e9)
        inc = _units(cost, self._interval)
        if inc < 0:
            raise cost_error(cost, self._burst, repr(self))
        self._tat = (self._tat if self._tat > t else t) + inc

    def try_acquire(self, now: float, cost: float = 1) -> Decision:
        """Admit ``cost`` if it conforms at ``now``; otherwise say how long until it would."""
        t = int(now * 1e9)
        inc = int(cost) * self._interval if cost.__class__ is int else _units(cost, self._interval)
        tat = self._tat
        if tat < t:
            tat = t
        ahead = tat + inc - t
        if inc >= 0 and ahead <= self._tau:
            self._tat = tat + inc
            return ALLOWED
        return self._deny(now, t, ahead, inc, cost)

    def _deny(self, now: float, t: int, ahead: int, inc: int, cost: float) -> Decision:
        if inc < 0 or inc > self._tau:
            raise cost_error(cost, self._burst, repr(self))
        return denied(now, t, ahead - self._tau)

    def idle(self, now: float) -> bool:
        """True when the TAT lies in the past: the bucket has drained."""
        return self._tat <= int(now * 1e9)
