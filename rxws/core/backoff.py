"""Exponential backoff: a frozen policy and the per-connection state that consumes it.

:class:`ExponentialBackoff` is the host's configuration and never changes. ``policy.start()``
returns a :class:`BackoffState` that hands out one delay per failed attempt and decides when the
attempt counter goes back to zero: only after a connection has stayed up for ``stable_after``
seconds, so a venue that accepts and closes at once is retried with growing delays instead of
being hammered. Time arrives as ``now`` arguments; this module never reads a clock.

Delay of attempt ``n`` (1-based), with ``base(n) = min(max_delay, initial * factor ** (n - 1))``:

- ``"none"``: ``base(n)``;
- ``"full"``: ``uniform(0, base(n))``;
- ``"equal"``: ``base(n) / 2 + uniform(0, base(n) / 2)``;
- ``"decorrelated"``: ``min(max_delay, uniform(initial, previous * 3))`` with ``previous``
  starting at ``initial`` (the AWS "decorrelated jitter" formula; ``factor`` is unused).
"""

from __future__ import annotations

import math
import random
from typing import Literal, get_args

__all__ = ["BackoffState", "ExponentialBackoff", "Jitter"]

Jitter = Literal["none", "full", "equal", "decorrelated"]
"""How randomness spreads the delays of clients that failed at the same moment."""

_JITTERS: tuple[str, ...] = get_args(Jitter)


class ExponentialBackoff:
    """An immutable exponential backoff policy.

    Args:
        initial: the base delay of the first attempt, in seconds (> 0).
        factor: growth per attempt (>= 1).
        max_delay: no delay is longer than this (>= ``initial``).
        jitter: ``"none"``, ``"full"``, ``"equal"`` or ``"decorrelated"`` (see the module doc).
        max_attempts: how many delays a state hands out before it is exhausted; ``None`` means
            no limit, ``0`` means never retry.
        stable_after: seconds a connection must stay up before the attempt counter resets.
        seed: seeds a fresh ``random.Random`` for every :meth:`start`, so every state draws the
            same delays (for tests and reproducible runs).
        rng: a random source shared by every state; mutually exclusive with ``seed``. Without
            either, each state gets its own system-seeded ``random.Random``.

    Raises:
        ValueError: a parameter is out of range, or both ``seed`` and ``rng`` are given.
    """

    __slots__ = (
        "_factor",
        "_initial",
        "_jitter",
        "_max_attempts",
        "_max_delay",
        "_rng",
        "_seed",
        "_stable_after",
    )

    def __init__(
        self,
        initial: float = 0.5,
        factor: float = 2.0,
        max_delay: float = 30.0,
        *,
        jitter: Jitter = "full",
        # Limits
        max_attempts: int | None = None,
        stable_after: float = 10.0,
        # Randomness
        seed: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        _check_real("initial", initial)
        _check_real("factor", factor)
        _check_real("max_delay", max_delay)
        _check_real("stable_after", stable_after)
        if initial <= 0:
            raise ValueError(f"initial must be > 0 seconds, got {initial!r}")
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor!r}")
        if max_delay < initial:
            raise ValueError(f"max_delay ({max_delay!r}) must be >= initial ({initial!r})")
        if stable_after < 0:
            raise ValueError(f"stable_after must be >= 0 seconds, got {stable_after!r}")
        if jitter not in _JITTERS:
            raise ValueError(f"jitter must be one of {', '.join(map(repr, _JITTERS))}; got {jitter!r}")
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 0
        ):
            raise ValueError(f"max_attempts must be None or an int >= 0, got {max_attempts!r}")
        if seed is not None and rng is not None:
            raise ValueError("give either seed or rng, not both")
        self._initial = float(initial)
        self._factor = float(factor)
        self._max_delay = float(max_delay)
        self._jitter: Jitter = jitter
        self._max_attempts = max_attempts
        self._stable_after = float(stable_after)
        self._seed = seed
        self._rng = rng

    # Configuration (read-only) -------------------------------------------------------------
    @property
    def initial(self) -> float:
        return self._initial

    @property
    def factor(self) -> float:
        return self._factor

    @property
    def max_delay(self) -> float:
        return self._max_delay

    @property
    def jitter(self) -> Jitter:
        return self._jitter

    @property
    def max_attempts(self) -> int | None:
        return self._max_attempts

    @property
    def stable_after(self) -> float:
        return self._stable_after

    @property
    def seed(self) -> int | None:
        return self._seed

    def base_delay(self, attempt: int) -> float:
        """The delay of ``attempt`` (1-based) before jitter: ``min(max_delay, initial * factor**(n-1))``."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt!r}")
        try:
            return min(self._max_delay, self._initial * self._factor ** (attempt - 1))
        except OverflowError:
            return self._max_delay

    def start(self) -> BackoffState:
        """A fresh state for one connection (or one subscription of an operator)."""
        if self._rng is not None:
            rng = self._rng
        elif self._seed is not None:
            rng = random.Random(self._seed)
        else:
            rng = random.Random()
        return BackoffState(self, rng)

    session = start

    def __repr__(self) -> str:
        return (
            f"ExponentialBackoff(initial={self._initial!r}, factor={self._factor!r}, "
            f"max_delay={self._max_delay!r}, jitter={self._jitter!r}, "
            f"max_attempts={self._max_attempts!r}, stable_after={self._stable_after!r}, "
            f"seed={self._seed!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExponentialBackoff):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (
            self._initial,
            self._factor,
            self._max_delay,
            self._jitter,
            self._max_attempts,
            self._stable_after,
            self._seed,
            id(self._rng) if self._rng is not None else None,
        )


class BackoffState:
    """The mutable side of a backoff: attempts so far and when the connection came up.

    Create it with :meth:`ExponentialBackoff.start`. The owner calls :meth:`next_delay` after
    each failure, :meth:`on_connected` when a connection is up and :meth:`on_disconnected` when
    it drops; the counter resets only when the connection lasted ``stable_after`` seconds.
    """

    __slots__ = ("_attempt", "_connected_at", "_last_delay", "_policy", "_prev", "_rng")

    def __init__(self, policy: ExponentialBackoff, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng
        self._attempt = 0
        self._prev = policy.initial
        self._last_delay: float | None = None
        self._connected_at: float | None = None

    @property
    def policy(self) -> ExponentialBackoff:
        return self._policy

    @property
    def attempt(self) -> int:
        """Delays handed out since the last reset (the number of the latest attempt)."""
        return self._attempt

    @property
    def last_delay(self) -> float | None:
        """The delay the latest :meth:`next_delay` returned, or None since a reset."""
        return self._last_delay

    @property
    def exhausted(self) -> bool:
        """Whether the next :meth:`next_delay` will return None."""
        limit = self._policy.max_attempts
        return limit is not None and self._attempt >= limit

    @property
    def connected_since(self) -> float | None:
        """The ``now`` of the last :meth:`on_connected`, or None while disconnected."""
        return self._connected_at

    def next_delay(self) -> float | None:
        """Count one more attempt and return its delay in seconds, or None when exhausted.

        An exhausted state stays exhausted (the counter does not move) until a reset.
        """
        if self.exhausted:
            return None
        self._attempt += 1
        p = self._policy
        jitter = p.jitter
        if jitter == "decorrelated":
            delay = min(p.max_delay, self._rng.uniform(p.initial, self._prev * 3.0))
            self._prev = delay
        else:
            base = p.base_delay(self._attempt)
            if jitter == "none":
                delay = base
            elif jitter == "full":
                delay = self._rng.uniform(0.0, base)
            else:  # equal
                delay = base / 2.0 + self._rng.uniform(0.0, base / 2.0)
        self._last_delay = delay
        return delay

    def on_connected(self, now: float) -> None:
        """The connection is up at ``now``; the stability clock starts (once per connection)."""
        if self._connected_at is None:
            self._connected_at = now

    def on_disconnected(self, now: float) -> bool:
        """The connection dropped at ``now``; reset the counter if it was up ``stable_after`` s.

        Returns:
            True when the counter was reset.
        """
        since = self._connected_at
        self._connected_at = None
        if since is not None and now - since >= self._policy.stable_after:
            self.reset()
            return True
        return False

    def reset(self) -> None:
        """Back to attempt 0, as if no attempt had failed (the connection clock is kept)."""
        self._attempt = 0
        self._prev = self._policy.initial
        self._last_delay = None

    def __repr__(self) -> str:
        return (
            f"BackoffState(attempt={self._attempt}, last_delay={self._last_delay!r}, "
            f"connected_since={self._connected_at!r})"
        )


def _check_real(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
