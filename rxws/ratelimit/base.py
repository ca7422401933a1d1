"""What every rate-limit algorithm shares: the decision it returns, its interface, and its clock.

An algorithm is a small, pure, single-threaded object. It never reads a clock: every call takes
``now`` in seconds (any monotonic origin) and turns it into whole nanoseconds with :func:`to_ns`, so
all bookkeeping is integer arithmetic. Wherever a rate or a cost does not divide a nanosecond
evenly, the rounding goes against admission: an algorithm may admit a hair less than its
configured limit, never more.

Each algorithm offers three calls:

- ``check(now, cost)`` decides without changing state (a peek),
- ``commit(now, cost)`` records the cost unconditionally (it may go into debt),
- ``try_acquire(now, cost)`` does both when allowed, in one fast call.

``check`` then ``commit`` is how :class:`~rxws.ratelimit.RateLimiter` makes several rules all or
nothing. Asking again after ``retry_after`` seconds (with no other commits in between) is allowed:
admission is monotonic in time for every algorithm here.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = [
    "ALLOWED",
    "Action",
    "Algorithm",
    "Decision",
    "Scope",
    "to_ns",
]

_NS = 1_000_000_000


class Decision(NamedTuple):
    """The answer to "may I do this now?".

    Attributes:
        allowed: True when the action may go ahead now (and, for ``try_acquire``, was counted).
        retry_after: seconds until the same request would be allowed; 0.0 when allowed, ``inf``
            when waiting can never make it allowed (a cap, not a rate).
    """

    allowed: bool
    retry_after: float = 0.0


ALLOWED = Decision(True, 0.0)
"""The shared "yes" every algorithm returns, so the allowed path allocates nothing."""


class Action(StrEnum):
    """The kinds of action a :class:`~rxws.ratelimit.WebSocketRateLimiter` decides on."""

    CONNECT = "connect"
    MESSAGE = "message"
    SUBSCRIBE = "subscribe"


class Scope(StrEnum):
    """Whose budget a rule or a penalty counts against."""

    GLOBAL = "global"
    """One budget for everything the limiter sees."""
    IP = "ip"
    """One budget per source IP address."""
    UID = "uid"
    """One budget per account / sub-account."""
    PRODUCT = "product"
    """One budget per product or market (e.g. Bybit spot vs linear)."""
    CONNECTION = "connection"
    """One budget per WebSocket connection."""


@runtime_checkable
class Algorithm(Protocol):
    """A rate-limit algorithm over one key: pure, synchronous, time passed in as ``now``."""

    @property
    def capacity(self) -> float:
        """The largest cost a single request may have; a larger one raises ValueError."""
        ...

    def check(self, now: float, cost: float = 1) -> Decision:
        """Decide whether ``cost`` would be allowed at ``now``, without recording it."""
        ...

    def commit(self, now: float, cost: float = 1) -> None:
        """Record ``cost`` at ``now`` whether or not it fits (the all-or-nothing second step)."""
        ...

    def try_acquire(self, now: float, cost: float = 1) -> Decision:
        """Decide, and record ``cost`` when allowed."""
        ...

    def idle(self, now: float) -> bool:
        """True when the state equals a fresh instance's at ``now`` (so it may be forgotten)."""
        ...

    def clone(self) -> Algorithm:
        """A new instance with the same parameters and no history."""
        ...


def to_ns(now: float) -> int:
    """The integer-nanosecond clock every algorithm uses: monotone in ``now``."""
    return int(now * 1e9)


def positive_ns(seconds: float, what: str) -> int:
    """Validate a window length and return it in whole nanoseconds (at least 1)."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise ValueError(f"{what} must be a number of seconds, got {seconds!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {seconds!r}")
    ns = math.ceil(seconds * _NS)
    return max(ns, 1)


def positive_amount(value: float, what: str) -> int | float:
    """Validate a limit, rate or burst: finite and > 0; integral floats become ints."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be finite and > 0, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def cost_error(cost: float, capacity: float, name: str) -> ValueError:
    """The error for a cost no waiting can ever admit (or a negative one)."""
    if cost < 0 or math.isnan(cost):
        return ValueError(f"cost must be >= 0, got {cost!r}")
    return ValueError(f"cost {cost:g} exceeds the capacity {capacity:g} of {name}: it could never be allowed")


def seconds(ns: int) -> float:
    """Nanoseconds back to seconds, for ``retry_after``."""
    return ns / _NS


def denied(now: float, t: int, wait_ns: int) -> Decision:
    """A refusal whose ``retry_after`` covers ``wait_ns`` nanoseconds from ``t = to_ns(now)``."""
    r = wait_ns / _NS
    if int((now + r) * 1e9) < t + wait_ns:
        r = retry_after(now, wait_ns)
    return _new_decision(Decision, (False, r))


_new_decision = tuple.__new__


def retry_after(now: float, wait_ns: int) -> float:
    """Seconds ``r`` such that ``to_ns(now + r)`` is at least ``to_ns(now) + wait_ns``.

    The plain ``wait_ns / 1e9`` can fall a nanosecond short once added to a large ``now`` and
    rounded, and then the retry would be refused again; this nudges it up by whole ulps.
    """
    target = int(now * 1e9) + wait_ns
    r = wait_ns / _NS
    for _ in range(64):
        if to_ns(now + r) >= target:
            return r
        x = math.nextafter(now + r, math.inf)
        r = max(x - now, math.nextafter(r, math.inf))
    return r + 1e-9  # pragma: no cover - unreachable for finite inputs
