"""Headroom: a documented safety margin between what the client sends and what the venue allows.

Why an exact limiter is not enough
----------------------------------
:class:`~rxws.ratelimit.SlidingWindow` admits at most ``N`` frames in any ``per`` seconds *of
the client's clock, at the moment it decides*. The venue counts on *its* clock, when each frame
*arrives*. Between the two lies a delay that is never constant: the event loop runs the write a
little late, the process is descheduled (on a loaded 2-core machine a callback waits up to
~20 ms, see below), TCP holds a segment back for a retransmission (Linux's minimum RTO is
200 ms), the venue's reader picks frames up in batches. A delay that *varies* compresses
arrivals: five frames admitted at ``t = 0`` and delayed 30 ms, then a sixth admitted at exactly
``t = 1.0`` and delayed 1 ms, arrive 0.971 s apart — six in one second, and Binance closes the
connection with 1008 (and escalating bans follow). Counting exactly cannot prevent that.

The margin that does
--------------------
Let every frame's delay from the limiter's decision to the venue's count lie in ``[a, a + J]``
for some ``a >= 0`` and a *jitter* ``J``. If the limiter admits at most ``N`` frames in **any**
window of length ``per + J``, then the venue sees at most ``N`` in any window of length ``per``:

    frames arriving in ``[s, s + per)`` were admitted in ``[s - a - J, s + per - a)``,
    an interval of length ``per + J``, which holds at most ``N`` admissions.

That holds for a venue counting in sliding windows and, a fortiori, in fixed (aligned) windows,
whatever the constant part ``a`` of the delay. So the margin that makes a window safe is a
**time** margin — lengthen the window by the jitter — not a count fraction: a limiter admitting
``N - 1`` per exact ``per`` still lets two bursts ``per`` apart arrive within one window. For a
token bucket (``rate`` per ``per``, size ``burst``) the same argument gives: a sender conforming
to ``(rate', burst')`` is seen by the venue as conforming to ``(rate', burst' + rate' * J / per)``,
so the bucket is shrunk by what refills during ``J``.

A count fraction is still worth keeping, for what the model above leaves out: frames the client
sends *without asking* the limiter first (the transport answers a venue's ping by itself; Binance
counts pongs; the limiter is charged only afterwards, so one slot per window must be left free
for it), and venues whose counting is coarser than documented.

Defaults, and what they are sized from
--------------------------------------
:data:`DEFAULT_HEADROOM` is ``Headroom(fraction=0.1, margin=0.25)``:

- ``margin=0.25`` s. Measured on this project's 2-core machine (2026-11-30, Python 3.11,
  loopback websockets): asyncio timer lateness p50 0.1 ms, p99 4 ms, max 12 ms with two
  busy-looping processes, max 20 ms with six; the spread of the delay from ``send`` to the
  server's read over loopback, max 4.4 ms under the same load. 0.25 s covers that local jitter
  more than ten times over, and one TCP retransmission (200 ms minimum RTO) on a path of up to
  ~50 ms round trip. It costs Binance spot's 5 frames per second 20% of its throughput, paid only
  while the client is at the limit (a start-up burst of subscriptions); a ban costs hours.
- ``fraction=0.1``, rounded down to whole frames and never below 1: one of Binance's 5 frames per
  window stays free for the pong the transport sends unasked.

``Headroom()`` (both zero) or ``headroom=None`` gives the exact documented figures.

Shared budgets
--------------
A budget shared by a fleet through :class:`~rxws.ratelimit.fleet.FleetLedger` is spent from
grants made *before* the units are used, so while Redis answers it admits nothing beyond the rule
the headroom produced. The grant-to-use delay (at most the ledger's ``hold``) is not taken from
this margin: a window logs each grant at the end of its hold, and a bucket gives up what refills
in ``hold`` (:mod:`rxws.ratelimit.fleet`), so the margin above still covers only the network and
the scheduler. During a Redis outage with ``outage="local_share"`` each process spends
``local_share`` of the headroom-reduced figure alone, so a fleet of ``P`` processes stays inside
it when ``local_share <= 1 / P``; with ``fail_closed`` nothing new is admitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rxws.ratelimit.base import Algorithm
from rxws.ratelimit.buckets import LeakyBucket, TokenBucket
from rxws.ratelimit.limiter import Rule
from rxws.ratelimit.redis_store import RedisSlidingWindow
from rxws.ratelimit.windows import FixedWindow, SlidingWindow, SlidingWindowCounter

__all__ = ["DEFAULT_HEADROOM", "NO_HEADROOM", "Headroom"]

_EPS = 1e-9  # 10 * 0.9 is 9.000000000000002: floor() must not lose a whole frame to rounding


@dataclass(frozen=True, slots=True)
class Headroom:
    """How far inside a venue's documented limit the client stays.

    Attributes:
        fraction: the share of each count left unused (0 <= fraction < 1). Whole-number limits
            are rounded down, never below 1 (one frame must stay possible).
        margin: seconds added to every window, and taken off every bucket as the tokens that
            refill in that time: the largest variation of the delay between the limiter's
            decision and the venue's count that the rule stays safe against (module docstring).

    Raises:
        ValueError: a fraction outside [0, 1) or a negative or non-finite margin.
    """

    fraction: float = 0.0
    margin: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.fraction, int | float) or not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"Headroom fraction must be in [0, 1), got {self.fraction!r}")
        if not isinstance(self.margin, int | float) or not (math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"Headroom margin must be a finite number of seconds >= 0, got {self.margin!r}")

    def __str__(self) -> str:
        return f"{self.fraction:.0%} of the count, {self.margin:g} s of time"

    @property
    def exact(self) -> bool:
        """True when this headroom changes nothing (both parts zero)."""
        return self.fraction == 0 and self.margin == 0

    def count(self, limit: float) -> float:
        """``limit`` less the fraction; whole numbers rounded down, never below ``min(limit, 1)``."""
        if self.fraction == 0:
            return limit
        kept = limit * (1.0 - self.fraction)
        if isinstance(limit, int) or float(limit).is_integer():
            kept = math.floor(kept + _EPS)
        return max(kept, min(limit, 1))

    def window(self, per: float) -> float:
        """``per`` lengthened by the time margin."""
        return per + self.margin

    def bucket(self, rate: float, per: float, burst: float) -> tuple[float, float]:
        """``(rate', burst')`` for a bucket of ``rate`` per ``per`` s and size ``burst``.

        Raises:
            ValueError: the margin would leave the bucket no room at all.
        """
        rate2 = self.count(rate)
        burst2 = self.count(burst) - rate2 * self.margin / per
        if isinstance(burst, int) or float(burst).is_integer():
            burst2 = math.floor(burst2 + _EPS)
        if not burst2 > 0:
            raise ValueError(
                f"headroom ({self}) leaves no room in a bucket of {burst:g} refilled at {rate:g} per {per:g} s"
            )
        return rate2, burst2

    def apply(self, algorithm: Algorithm) -> Algorithm:
        """A fresh algorithm as strict as ``algorithm`` or stricter, with this headroom taken.

        Windows keep their kind with ``count(limit)`` per ``window(per)``, except
        :class:`~rxws.ratelimit.FixedWindow`, which becomes a
        :class:`~rxws.ratelimit.SlidingWindowCounter`: a fixed window admits up to twice its
        limit across a boundary, so no margin makes it safe against a venue whose windows are not
        aligned with ours. Buckets get :meth:`bucket`. A shared
        :class:`~rxws.ratelimit.redis_store.RedisSlidingWindow` keeps its key and clock: every
        process sharing it must use the same headroom.

        Raises:
            ValueError: an algorithm this module does not know (size it yourself, and pass
                ``headroom=None``), or a bucket the margin would empty.
        """
        if self.exact:
            return algorithm.clone()
        if isinstance(algorithm, SlidingWindow):
            return SlidingWindow(self.count(algorithm.limit), self.window(algorithm.per))
        if isinstance(algorithm, SlidingWindowCounter):
            return SlidingWindowCounter(
                self.count(algorithm.limit), self.window(algorithm.per), buckets=algorithm.buckets
            )
        if isinstance(algorithm, FixedWindow):
            return SlidingWindowCounter(self.count(algorithm.limit), self.window(algorithm.per))
        if isinstance(algorithm, TokenBucket):
            rate, burst = self.bucket(algorithm.rate, algorithm.per, algorithm.burst)
            return TokenBucket(rate, algorithm.per, burst)
        if isinstance(algorithm, LeakyBucket):
            rate, burst = self.bucket(algorithm.rate, algorithm.per, algorithm.burst)
            return LeakyBucket(rate, algorithm.per, burst=burst)
        if isinstance(algorithm, RedisSlidingWindow):
            return algorithm.resized(self.count(algorithm.limit), self.window(algorithm.per))
        raise ValueError(f"cannot take headroom from {algorithm!r}: size it yourself and pass headroom=None")

    def rule(self, rule: Rule) -> Rule:
        """``rule`` with this headroom taken; the name says both figures.

        Raises:
            ValueError: as :meth:`apply`, or when the rule's weight no longer fits its capacity.
        """
        if self.exact:
            return rule
        limit = rule.limit
        if isinstance(limit, Algorithm):
            made = self.apply(limit)
            if made.capacity < rule.weight:
                raise ValueError(
                    f"headroom ({self}) leaves {made!r} too small for one request of weight {rule.weight:g}"
                )
            name = f"{rule.label} (headroom {self}: {made!r})"
            return Rule(made, rule.scope, weight=rule.weight, name=name)
        factory = limit

        def shrunk() -> Algorithm:
            return self.apply(factory())

        return Rule(shrunk, rule.scope, weight=rule.weight, name=f"{rule.label} (headroom {self})")


NO_HEADROOM = Headroom()
"""The exact documented figures: no margin at all."""

DEFAULT_HEADROOM = Headroom(fraction=0.1, margin=0.25)
"""Every preset's default: 10% of each count (rounded down, never below 1) and 0.25 s of time.
The module docstring says what the figures are sized from."""
