"""The composite :class:`RateLimiter`: several rules, keyed scopes, all or nothing.

A :class:`Rule` pairs an algorithm (a template instance or a factory) with the :class:`Scope` whose
budget it counts against. One ``RateLimiter`` holds one algorithm instance per rule and key, made
on first use, so "5 per second per connection AND 300 per 5 minutes per IP" is two rules and any
number of connections::

    limiter = RateLimiter(
        Rule(SlidingWindow(5, 1.0), Scope.CONNECTION),
        Rule(SlidingWindow(300, 300.0), Scope.IP),
    )
    limiter.try_acquire(now, keys={Scope.CONNECTION: "c1", Scope.IP: "10.0.0.1"})

A request is checked against every rule first and counted against all of them only when all
allow it, so a refusal by one rule never spends another's budget. Keys whose algorithm has
returned to its fresh state are forgotten by a periodic sweep (forgetting them changes no
decision), so memory follows the keys in use, not every key ever seen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

from rxws.ratelimit.base import ALLOWED, Algorithm, Decision, Scope

__all__ = ["Keys", "RateLimiter", "Rule"]

Keys = Mapping[Scope, Hashable]
"""Which key of each scope a request belongs to; a scope left out (or None) skips its rules."""

_NO_KEYS: Keys = {}


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit and whose budget it counts.

    Attributes:
        limit: an algorithm used as a template (each key gets a ``clone()``) or a zero-argument
            factory returning a fresh algorithm.
        scope: whose budget: the limit applies separately to each key of this scope.
        weight: multiplies the request's cost for this rule (e.g. 500 credits per request).
        name: a label for errors and events; defaults to the algorithm's repr.
    """

    limit: Algorithm | Callable[[], Algorithm]
    scope: Scope = Scope.GLOBAL
    weight: float = 1
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.limit, Algorithm) and not callable(self.limit):
            raise ValueError(f"Rule limit must be an algorithm or a factory, got {self.limit!r}")
        if not self.weight > 0:
            raise ValueError(f"Rule weight must be > 0, got {self.weight!r}")
        object.__setattr__(self, "scope", Scope(self.scope))  # ValueError on an unknown scope

    @property
    def shared(self) -> bool:
        """True when the limit is a shared ledger (it has ``for_key``, e.g. ``RedisSlidingWindow``)."""
        return callable(getattr(self.limit, "for_key", None))

    def make(self, key: Hashable = None) -> Algorithm:
        """A fresh algorithm for one key.

        A shared ledger is not cloned: it is asked for the key's own entry with
        ``for_key("<scope>:<key>")`` (``"global"`` for the global scope), so every process
        counting the same key shares one budget.
        """
        for_key = getattr(self.limit, "for_key", None)
        if callable(for_key):
            label = Scope.GLOBAL.value if self.scope is Scope.GLOBAL else f"{self.scope.value}:{key}"
            made = for_key(label)
        elif isinstance(self.limit, Algorithm):
            return self.limit.clone()
        else:
            made = self.limit()
        if not isinstance(made, Algorithm):
            raise ValueError(f"Rule factory returned {made!r}, not a rate-limit algorithm")
        return made

    @property
    def label(self) -> str:
        """The name, or a description made from the limit and scope."""
        return self.name or f"{self.limit!r} per {Scope(self.scope).value}"


class RateLimiter:
    """Several rules checked and counted together, each per key of its scope.

    Thread-safe: every public method holds an internal lock.

    Args:
        *rules: :class:`Rule` objects; a bare algorithm means ``Rule(algorithm)`` (global scope).
        sweep_every: seconds between sweeps that forget idle keys (checked on each call).

    Raises:
        ValueError: on an invalid rule or ``sweep_every``.
    """

    __slots__ = ("_lock", "_next_sweep", "_rules", "_shared", "_states", "_sweep_every")

    def __init__(self, *rules: Rule | Algorithm, sweep_every: float = 60.0) -> None:
        if not sweep_every > 0:
            raise ValueError(f"sweep_every must be > 0, got {sweep_every!r}")
        self._rules: tuple[Rule, ...] = tuple(r if isinstance(r, Rule) else Rule(r) for r in rules)
        self._states: tuple[dict[Hashable, Algorithm], ...] = tuple({} for _ in self._rules)
        self._sweep_every = sweep_every
        self._next_sweep: float | None = None
        self._shared: tuple[bool, ...] | None = None
        if any(r.shared for r in self._rules):
            self._shared = tuple(r.shared for r in self._rules)
        self._lock = threading.Lock()
        for rule in self._rules:
            rule.make()  # fail at construction, not at the first request

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they are checked."""
        return self._rules

    def __len__(self) -> int:
        """How many (rule, key) states are held."""
        with self._lock:
            return sum(len(s) for s in self._states)

    def _algorithms(self, keys: Keys) -> list[tuple[Algorithm, float]]:
        out: list[tuple[Algorithm, float]] = []
        for rule, states in zip(self._rules, self._states, strict=True):
            key = None if rule.scope is Scope.GLOBAL else keys.get(rule.scope)
            if key is None and rule.scope is not Scope.GLOBAL:
                continue
            alg = states.get(key)
            if alg is None:
                alg = states[key] = rule.make(key)
            out.append((alg, rule.weight))
        return out

    def _maybe_sweep(self, now: float) -> None:
        if self._next_sweep is None:
            self._next_sweep = now + self._sweep_every
        elif now >= self._next_sweep:
            self._sweep(now)
            self._next_sweep = now + self._sweep_every

    def check(self, now: float, cost: float = 1, *, keys: Keys = _NO_KEYS) -> Decision:
        """Whether every applicable rule would allow ``cost`` at ``now``; nothing is counted.

        When refused, ``retry_after`` is the longest wait any rule asks for (admission only
        grows with time, so after that long every rule allows it, barring other traffic).

        Raises:
            ValueError: ``cost`` (times a rule's weight) exceeds that rule's capacity.
        """
        with self._lock:
            return self._check(self._algorithms(keys), now, cost)

    @staticmethod
    def _check(algs: Iterable[tuple[Algorithm, float]], now: float, cost: float) -> Decision:
        wait = 0.0
        for alg, weight in algs:
            d = alg.check(now, cost * weight if weight != 1 else cost)
            if not d.allowed and d.retry_after > wait:
                wait = d.retry_after
        return ALLOWED if wait == 0.0 else Decision(False, wait)

    def commit(self, now: float, cost: float = 1, *, keys: Keys = _NO_KEYS) -> None:
        """Count ``cost`` against every applicable rule, allowed or not (e.g. a frame already sent)."""
        with self._lock:
            self._maybe_sweep(now)
            for alg, weight in self._algorithms(keys):
                alg.commit(now, cost * weight if weight != 1 else cost)

    def try_acquire(self, now: float, cost: float = 1, *, keys: Keys = _NO_KEYS) -> Decision:
        """Count ``cost`` against every applicable rule if all allow it; otherwise count nothing.

        Raises:
            ValueError: ``cost`` (times a rule's weight) exceeds that rule's capacity.
        """
        with self._lock:
            self._maybe_sweep(now)
            algs = self._algorithms(keys)
            if len(algs) == 1:
                alg, weight = algs[0]
                return alg.try_acquire(now, cost * weight if weight != 1 else cost)
            if self._shared is not None:
                return self._try_shared(algs, keys, now, cost)
            d = self._check(algs, now, cost)
            if d.allowed:
                for alg, weight in algs:
                    alg.commit(now, cost * weight if weight != 1 else cost)
            return d

    def _try_shared(
        self, algs: list[tuple[Algorithm, float]], keys: Keys, now: float, cost: float
    ) -> Decision:
        """All or nothing when some rules are shared ledgers that other processes spend too.

        The local rules are checked first (this lock keeps them still), then each shared rule is
        spent with one atomic ``try_acquire``, then the local rules are committed. A shared
        refusal after an earlier shared admission leaves that one spent: over-counted, never
        over-admitted.
        """
        assert self._shared is not None
        applies = [rule.scope is Scope.GLOBAL or keys.get(rule.scope) is not None for rule in self._rules]
        flags = [shared for shared, used in zip(self._shared, applies, strict=True) if used]
        local = [a for a, shared in zip(algs, flags, strict=True) if not shared]
        remote = [a for a, shared in zip(algs, flags, strict=True) if shared]
        d = self._check(local, now, cost)
        if not d.allowed:
            return self._check(algs, now, cost)  # the longest wait, shared rules included
        for alg, weight in remote:
            d = alg.try_acquire(now, cost * weight if weight != 1 else cost)
            if not d.allowed:
                return d
        for alg, weight in local:
            alg.commit(now, cost * weight if weight != 1 else cost)
        return ALLOWED

    def forget(self, scope: Scope, key: Hashable) -> None:
        """Drop every state held for ``key`` of ``scope`` (e.g. a connection that ended)."""
        with self._lock:
            for rule, states in zip(self._rules, self._states, strict=True):
                if rule.scope is scope:
                    states.pop(key, None)

    def sweep(self, now: float) -> int:
        """Forget every key whose algorithm is back to its fresh state; returns how many."""
        with self._lock:
            return self._sweep(now)

    def _sweep(self, now: float) -> int:
        dropped = 0
        for states in self._states:
            idle = [k for k, alg in states.items() if alg.idle(now)]
            for k in idle:
                del states[k]
            dropped += len(idle)
        return dropped
