"""Window algorithms: :class:`SlidingWindow` (exact), :class:`SlidingWindowCounter` (bounded
memory, never over) and :class:`FixedWindow` (calendar windows).

A cost admitted at time ``t`` occupies the half-open window ``[t, t + per)``, on the algorithms'
integer-nanosecond clock (``int(now * 1e9)``): exact to the nanosecond, so two float times less
than a nanosecond from a window edge may round to either side of it. Then:

- ``SlidingWindow`` admits at most ``limit`` in *every* window of ``per`` seconds, exactly; it
  keeps one entry per admitted request (at most ``limit`` entries for whole costs).
- ``SlidingWindowCounter`` keeps ``buckets`` counters instead of a log. It counts the whole of the
  oldest, partly expired sub-bucket, so it errs towards refusing: it never admits more than
  ``limit`` in any window (like ``SlidingWindow``) but may admit up to one sub-bucket's worth less.
- ``FixedWindow`` admits at most ``limit`` per aligned window ``[k * per, (k + 1) * per)``, and so
  up to ``2 * limit`` across a window boundary. Use it only when the venue counts that way.

Time never runs backwards inside a window algorithm: a ``now`` earlier than one already seen is
taken as the latest seen, which only makes it stricter.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from rxws.ratelimit.base import ALLOWED, Decision, cost_error, denied, positive_amount, positive_ns

__all__ = ["FixedWindow", "SlidingWindow", "SlidingWindowCounter"]

_FAR_PAST = -(1 << 62)


def _bad_cost(cost: float, limit: float) -> bool:
    return not (0 <= cost <= limit)


class _Shape:
    """What a window is made of, read-only (``limit`` per ``per`` seconds): the properties
    :mod:`rxws.ratelimit.headroom` reads to rebuild a window with a margin."""

    __slots__ = ()
    _limit: float
    _per: float

    @property
    def capacity(self) -> float:
        """The window's limit: the largest cost one request may have."""
        return self._limit

    @property
    def limit(self) -> float:
        """The most cost admitted in one window."""
        return self._limit

    @property
    def per(self) -> float:
        """The window length in seconds."""
        return self._per


class SlidingWindow(_Shape):
    """At most ``limit`` cost in any ``per`` seconds, decided exactly from a log of admissions.

    Args:
        limit: the most cost admitted in any window (> 0).
        per: the window length in seconds (> 0).

    Raises:
        ValueError: on a non-positive or non-finite parameter.
    """

    __slots__ = ("_costs", "_last", "_limit", "_per", "_per_ns", "_total", "_ts")

    def __init__(self, limit: float, per: float) -> None:
        self._limit = positive_amount(limit, "SlidingWindow limit")
        self._per = per
        self._per_ns = positive_ns(per, "SlidingWindow per")
        self._ts: deque[int] = deque()
        self._costs: deque[float] = deque()
        self._total: float = 0
        self._last = _FAR_PAST

    def __repr__(self) -> str:
        return f"SlidingWindow(limit={self._limit!r}, per={self._per!r})"

    def __len__(self) -> int:
        """Entries in the log (admissions not yet known to have expired)."""
        return len(self._ts)

    def clone(self) -> SlidingWindow:
        """A new, empty window with the same parameters."""
        return SlidingWindow(self._limit, self._per)

    def _advance(self, now: float) -> int:
        t = int(now * 1e9)
        if t < self._last:
            t = self._last
        ts = self._ts
        edge = t - self._per_ns
        while ts and ts[0] <= edge:
            ts.popleft()
            self._total -= self._costs.popleft()
        if not ts:
            self._total = 0  # no float residue once the log is empty
        return t

    def check(self, now: float, cost: float = 1) -> Decision:
        """Whether ``cost`` fits in the window ending at ``now``; the state is left untouched."""
        t = int(now * 1e9)
        if t < self._last:
            t = self._last
        edge = t - self._per_ns
        live, start = self._total, 0
        for ts, c in zip(self._ts, self._costs, strict=True):
            if ts > edge:
                break
            live -= c
            start += 1
        if cost >= 0 and live + cost <= self._limit:
            return ALLOWED
        return self._deny(now, live, start, cost)

    def commit(self, now: float, cost: float = 1) -> None:
        """Record ``cost`` at ``now``, even past the limit."""
        if cost < 0 or cost != cost:
            raise cost_error(cost, self._limit, repr(self))
        t = self._advance(now)
        if cost:
            self._ts.append(t)
            self._costs.append(cost)
            self._total += cost
        self._last = t

    def try_acquire(self, now: float, cost: float = 1) -> Decision:
        """Admit and record ``cost`` if it fits in the window ending at ``now``."""
        t = int(now * 1e9)
        if t < self._last:
            t = self._last
        ts = self._ts
        edge = t - self._per_ns
        if ts and ts[0] <= edge:
            costs = self._costs
            while ts and ts[0] <= edge:
                ts.popleft()
                self._total -= costs.popleft()
            if not ts:
                self._total = 0
        total = self._total + cost
        if cost >= 0 and total <= self._limit:
            if cost:
                ts.append(t)
                self._costs.append(cost)
                self._total = total
            self._last = t
            return ALLOWED
        return self._deny(now, self._total, 0, cost)

    def _deny(self, now: float, live: float, start: int, cost: float) -> Decision:
        if _bad_cost(cost, self._limit):
            raise cost_error(cost, self._limit, repr(self))
        need = live + cost - self._limit
        if self._costs[start] >= need:  # the common case: the oldest live entry frees enough
            t0 = int(now * 1e9)
            return denied(now, t0, self._ts[start] + self._per_ns - t0)
        freed: float = 0
        for ts, c in islice(zip(self._ts, self._costs, strict=True), start, None):
            freed += c
            if freed >= need:
                t0 = int(now * 1e9)
                return denied(now, t0, ts + self._per_ns - t0)
        raise AssertionError("unreachable: the whole log frees enough")  # pragma: no cover

    def idle(self, now: float) -> bool:
        """True when every admission has left the window ending at ``now``."""
        ts = self._ts
        return not ts or ts[-1] <= max(int(now * 1e9), self._last) - self._per_ns


class SlidingWindowCounter(_Shape):
    """At most ``limit`` cost in any ``per`` seconds, from ``buckets`` counters (O(1) memory).

    The window is cut into ``buckets`` sub-buckets of ``per / buckets`` seconds. A request is
    allowed when the sub-buckets that may still hold something from the last ``per`` seconds
    sum, with it, to no more than ``limit``. The oldest of them is counted whole even if part of
    it has expired: the approximation only ever refuses early, never admits over the limit.

    Args:
        limit: the most cost admitted in any window (> 0).
        per: the window length in seconds (> 0).
        buckets: sub-buckets per window (>= 1; more is closer to exact, default 10).

    Raises:
        ValueError: on a non-positive or non-finite parameter.
    """

    __slots__ = ("_buckets", "_counts", "_last", "_limit", "_per", "_per_ns", "_size", "_tail", "_total")

    def __init__(self, limit: float, per: float, *, buckets: int = 10) -> None:
        self._limit = positive_amount(limit, "SlidingWindowCounter limit")
        self._per = per
        self._per_ns = positive_ns(per, "SlidingWindowCounter per")
        if not isinstance(buckets, int) or isinstance(buckets, bool) or buckets < 1:
            raise ValueError(f"SlidingWindowCounter buckets must be an int >= 1, got {buckets!r}")
        self._buckets = buckets
        self._size = -(-self._per_ns // buckets)  # sub-bucket length in ns, rounded up
        self._counts: list[float] = [0] * (buckets + 1)
        self._tail = _FAR_PAST // self._size  # lowest sub-bucket id still counted
        self._total: float = 0
        self._last = _FAR_PAST

    def __repr__(self) -> str:
        return f"SlidingWindowCounter(limit={self._limit!r}, per={self._per!r}, buckets={self._buckets})"

    @property
    def buckets(self) -> int:
        """Sub-buckets per window."""
        return self._buckets

    def clone(self) -> SlidingWindowCounter:
        """A new, empty counter with the same parameters."""
        return SlidingWindowCounter(self._limit, self._per, buckets=self._buckets)

    def _advance(self, now: float) -> int:
        t = int(now * 1e9)
        if t < self._last:
            t = self._last
        low = (t - self._per_ns + 1) // self._size
        tail = self._tail
        if low > tail:
            counts = self._counts
            m = len(counts)
            if low - tail >= m:
                for i in range(m):
                    counts[i] = 0
                self._total = 0
            else:
                for bid in range(tail, low):
                    counts[bid % m] = 0
                self._total = sum(counts)  # recomputed, so fractional costs leave no residue
            self._tail = low
        return t

    def check(self, now: float, cost: float = 1) -> Decision:
        """Whether ``cost`` fits at ``now``; the state is left untouched."""
        t = int(now * 1e9)
        if t < self._last:
            t = self._last
        low = (t - self._per_ns + 1) // self._size
        live, start = self._total, self._tail
        if low > start:
            counts = self._counts
            m = len(counts)
            live = 0 if low - start >= m else sum(counts[b % m] for b in range(low, start + m))
            start = low
        if cost >= 0 and live + cost <= self._limit:
            return ALLOWED
        return self._deny(now, live, start, cost)

    def commit(self, now: float, cost: float = 1) -> None:
        """Record ``cost`` at ``now``, even past the limit."""
        if cost < 0 or cost != cost:
            raise cost_error(cost, self._limit, repr(self))
        t = self._advance(now)
        self._counts[(t // self._size) % len(self._counts)] += cost
        self._total += cost
        self._last = t

    def try_acquire(self, now: float, cost: float = 1) -> Decision:
        """Admit and record ``cost`` if it fits at ``now``."""
        t = int(now * 1e9)
        if t < self._last:
            t = self._last
        if (t - self._per_ns + 1) // self._size > self._tail:
            self._advance(now)
        total = self._total + cost
        if cost >= 0 and total <= self._limit:
            self._counts[(t // self._size) % len(self._counts)] += cost
            self._total = total
            self._last = t
            return ALLOWED
        return self._deny(now, self._total, self._tail, cost)

    def _deny(self, now: float, live: float, start: int, cost: float) -> Decision:
        if _bad_cost(cost, self._limit):
            raise cost_error(cost, self._limit, repr(self))
        need = live + cost - self._limit
        freed: float = 0
        counts = self._counts
        m = len(counts)
        bid = start
        while True:  # sub-bucket `bid` leaves the window once t >= (bid + 1) * size + per - 1
            freed += counts[bid % m]
            if freed >= need:
                due = (bid + 1) * self._size + self._per_ns - 1
                t0 = int(now * 1e9)
                return denied(now, t0, max(due - t0, 1))
            bid += 1

    def idle(self, now: float) -> bool:
        """True when nothing admitted is still counted at ``now``."""
        t = max(int(now * 1e9), self._last)
        low = (t - self._per_ns + 1) // self._size
        last_id = self._last // self._size
        return self._total == 0 or last_id < low


class FixedWindow(_Shape):
    """At most ``limit`` cost per aligned window ``[k * per, (k + 1) * per)``.

    Cheap and common at venues that reset a counter on the clock; across a window boundary it
    admits up to ``2 * limit`` within ``per`` seconds.

    Args:
        limit: the most cost admitted per window (> 0).
        per: the window length in seconds (> 0).

    Raises:
        ValueError: on a non-positive or non-finite parameter.
    """

    __slots__ = ("_count", "_limit", "_per", "_per_ns", "_window")

    def __init__(self, limit: float, per: float) -> None:
        self._limit = positive_amount(limit, "FixedWindow limit")
        self._per = per
        self._per_ns = positive_ns(per, "FixedWindow per")
        self._window = _FAR_PAST
        self._count: float = 0

    def __repr__(self) -> str:
        return f"FixedWindow(limit={self._limit!r}, per={self._per!r})"

    def clone(self) -> FixedWindow:
        """A new, empty window with the same parameters."""
        return FixedWindow(self._limit, self._per)

    def _count_at(self, w: int) -> float:
        return self._count if w <= self._window else 0

    def check(self, now: float, cost: float = 1) -> Decision:
        """Whether ``cost`` fits in the current window; nothing is recorded."""
        w = int(now * 1e9) // self._per_ns
        if cost >= 0 and self._count_at(w) + cost <= self._limit:
            return ALLOWED
        return self._deny(now, w, cost)

    def commit(self, now: float, cost: float = 1) -> None:
        """Record ``cost`` in the current window, even past the limit."""
        if cost < 0 or cost != cost:
            raise cost_error(cost, self._limit, repr(self))
        w = int(now * 1e9) // self._per_ns
        if w > self._window:
            self._window, self._count = w, 0
        self._count += cost

    def try_acquire(self, now: float, cost: float = 1) -> Decision:
        """Admit and record ``cost`` if it fits in the current window."""
        w = int(now * 1e9) // self._per_ns
        count = self._count if w <= self._window else 0
        if cost >= 0 and count + cost <= self._limit:
            if w > self._window:
                self._window = w
            self._count = count + cost
            return ALLOWED
        return self._deny(now, w, cost)

    def _deny(self, now: float, w: int, cost: float) -> Decision:
        if _bad_cost(cost, self._limit):
            raise cost_error(cost, self._limit, repr(self))
        w = max(w, self._window)
        t0 = int(now * 1e9)
        return denied(now, t0, (w + 1) * self._per_ns - t0)

    def idle(self, now: float) -> bool:
        """True when the current window holds nothing."""
        return self._count_at(int(now * 1e9) // self._per_ns) == 0
