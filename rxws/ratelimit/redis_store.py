"""The synchronous Redis ledger: budgets and penalties that several processes on one IP count together.

Its successor is :class:`~rxws.ratelimit.fleet.FleetLedger` (asynchronous, every rule, leases,
an outage policy): this module's calls block the caller for a round trip, which on an event loop
stalls every connection while Redis is slow. It stays for synchronous callers.

A venue counts connection attempts per IP, not per process: five processes reconnecting in a loop
exhaust Binance's 300 attempts per 5 minutes together. The in-memory algorithms cannot see each
other, so this module keeps the state that must be shared in Redis:

- :class:`RedisSlidingWindow` is a :class:`~rxws.ratelimit.SlidingWindow` whose log is a Redis
  sorted set, decided atomically by a Lua script (trim, count, admit, compute ``retry_after``);
- :class:`RedisPenaltyBox` is a :class:`~rxws.ratelimit.PenaltyBox` whose penalties (level and
  end) live in Redis hashes, so a "too many" seen by one process holds every process back;
- :class:`RedisLedger` names both for one Redis client and key prefix; the presets take it as
  ``shared=``::

      ledger = RedisLedger.from_url("redis://127.0.0.1:6379/0")
      limiter = presets.binance_spot(shared=ledger)          # 300 / 5 min / IP across processes

      # or by hand, with any rule set:
      VenueRateLimiter(
          connect=[Rule(ledger.sliding_window("myvenue:connect", 300, 300.0), Scope.IP)],
          penalty_store=ledger.penalty_box("myvenue:penalty"),
      )

Keys: a rule's window gets one ledger entry per scope key (``Rule`` asks ``for_key("ip:10.0.0.1")``
instead of cloning), stored as ``{<prefix>:<name>:<scope>:<key>}:log`` (sorted set, score = admission
time in whole microseconds) and ``...:meta`` (hash: running total, last time, sequence); the
braces keep both in one Redis Cluster slot. Every write sets a TTL of the window plus a second, so
idle keys vanish and memory is bounded by the budgets in use (at most ``limit`` entries per key for
whole costs).

Time. The in-memory algorithms take ``now`` from any monotonic clock; across processes (and hosts)
the clocks must agree, so the ledger chooses its clock explicitly:

- ``clock="server"`` (the default): the script reads Redis ``TIME``; the caller's ``now`` is
  ignored. One clock for every process and host, immune to local clock skew; ``retry_after`` is a
  duration, valid on any clock. Virtual time (a ``TestScheduler``) does not move a server-clock
  window: use the in-memory algorithms there.
- ``clock="caller"``: the caller's ``now`` is used, and it must be wall-clock seconds since the
  epoch (:func:`wall_clock`, i.e. ``time.time``) on hosts kept in sync by NTP. A ``now`` before the
  year 2000 is refused as a likely monotonic clock. Useful for deterministic tests.

Either way time never runs backwards inside a window: a time earlier than the latest one recorded
counts as that one (stricter, never looser). Scores are microseconds, not nanoseconds, because a
Redis score is a double: integers are exact only below 2**53, and epoch nanoseconds are not.

Cost. Each call is one synchronous round trip (EVALSHA) plus the script: measured on loopback at
about 90-150 µs per ``try_acquire`` (where a bare PING took about 50 µs) against about 0.3 µs in
memory, and the limiter's lock is held meanwhile. That suits connection attempts
and penalties; per-message budgets of a single process are better kept in memory. A Redis failure
raises :class:`SharedStoreError` (the limiter cannot decide, so it does not guess).

Atomicity: a shared rule is decided atomically when it is the only shared rule of its action
(``RateLimiter`` then checks the local rules, spends the shared budget with one ``try_acquire``
and commits the local rules under its lock). With several shared rules a later refusal leaves the
earlier ones spent: counted, never over-admitted.

Needs the ``redis`` extra (``pip install 'rxws[redis]'``, redis-py >= 5); it is imported only
when a ledger object is made. The client is a synchronous redis-py ``Redis``; only redis-py's
errors are translated into :class:`SharedStoreError`.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from types import ModuleType
from typing import Any, Literal, Protocol

from rxws.exceptions import SharedStoreError
from rxws.ratelimit._lua import REMAINING_LUA, REPORT_LUA, WINDOW_LUA
from rxws.ratelimit.base import ALLOWED, Decision, cost_error, positive_amount, positive_ns
from rxws.ratelimit.penalty import PenaltyBox, PenaltyPolicy

__all__ = [
    "Clock",
    "RedisClient",
    "RedisLedger",
    "RedisPenaltyBox",
    "RedisSlidingWindow",
    "SharedStoreError",
    "wall_clock",
]

Clock = Literal["server", "caller"]
"""Whose clock a shared object reads: Redis ``TIME`` (``"server"``) or the caller's ``now``."""

_US = 1_000_000
_MIN_WALL = 946_684_800.0  # 2000-01-01T00:00:00Z: anything earlier is not a wall clock
_LOCAL_PREFIX = "connection:"  # connection ids are per process: never shared


class RedisClient(Protocol):
    """What the ledger needs of a client: redis-py's ``Redis`` (or a compatible one)."""

    def register_script(self, script: str) -> Any:
        """A callable ``script(keys=[...], args=[...])`` running ``script`` by its SHA."""
        ...


def wall_clock() -> float:
    """Wall-clock seconds since the epoch (``time.time``): the ``now`` for ``clock="caller"``."""
    return time.time()


def _import_redis() -> ModuleType:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - exercised where redis-py is absent
        raise ImportError(
            "rxws.ratelimit.redis_store needs redis-py: install the extra with pip install 'rxws[redis]'"
        ) from exc
    return redis


def _check_clock(clock: str) -> Clock:
    if clock not in ("server", "caller"):
        raise ValueError(f"clock must be 'server' or 'caller', got {clock!r}")
    return "server" if clock == "server" else "caller"


def _caller_us(now: float) -> str:
    if not now >= _MIN_WALL or not math.isfinite(now):
        raise ValueError(
            f"clock='caller' needs wall-clock seconds since the epoch (time.time()), got now={now!r}; "
            "use clock='server' with a monotonic or virtual clock"
        )
    return str(int(now * _US))


def _retry_after_us(now: float, t_us: int, wait_us: int) -> float:
    """Seconds ``r`` such that ``int((now + r) * 1e6)`` reaches ``t_us + wait_us`` (caller clock)."""
    target = t_us + wait_us
    r = max(target / _US - now, wait_us / _US)
    for _ in range(64):
        if int((now + r) * _US) >= target:
            return r
        r = max(math.nextafter(now + r, math.inf) - now, math.nextafter(r, math.inf))
    return r + 1e-6  # pragma: no cover - unreachable for finite inputs


class RedisSlidingWindow:
    """At most ``limit`` cost in any ``per`` seconds, counted in Redis by every process sharing ``key``.

    The shared counterpart of :class:`~rxws.ratelimit.SlidingWindow`: the same exact log and the
    same decisions (to the microsecond), each taken atomically by one Lua script, so clients in
    separate processes can never admit more than ``limit`` together.

    In a :class:`~rxws.ratelimit.Rule`, each scope key gets its own ledger entry via
    :meth:`for_key`. ``clone()`` shares the ledger (there is nothing local to copy), and
    ``idle()`` is always True: the object holds no state, so forgetting it changes nothing.

    Args:
        client: a redis-py ``Redis`` client (synchronous).
        key: the ledger key of this window; every process using the same key shares one budget.
        limit: the most cost admitted in any window (> 0).
        per: the window length in seconds (> 0; rounded up to a whole microsecond).
        clock: ``"server"`` (Redis ``TIME``, ``now`` ignored; the default) or ``"caller"``
            (``now`` must be wall-clock seconds, see :func:`wall_clock`).

    Raises:
        ValueError: on a non-positive or non-finite parameter, or an unknown clock.
        ImportError: redis-py is not installed.
    """

    __slots__ = ("_client", "_clock", "_keys", "_limit", "_per", "_per_us", "_script", "key")

    def __init__(
        self, client: RedisClient, key: str, limit: float, per: float, *, clock: Clock = "server"
    ) -> None:
        _import_redis()
        self._limit = positive_amount(limit, "RedisSlidingWindow limit")
        self._per = per
        self._per_us = -(-positive_ns(per, "RedisSlidingWindow per") // 1000)
        self._clock = _check_clock(clock)
        if not isinstance(key, str) or not key:
            raise ValueError(f"RedisSlidingWindow key must be a non-empty str, got {key!r}")
        self._client = client
        self._script = client.register_script(WINDOW_LUA)
        self._set_key(key)

    def _set_key(self, key: str) -> None:
        self.key = key
        self._keys = (f"{{{key}}}:log", f"{{{key}}}:meta")

    @property
    def capacity(self) -> float:
        """The window's limit: the largest cost one request may have."""
        return self._limit

    @property
    def clock(self) -> Clock:
        """Whose clock this window reads."""
        return self._clock

    @property
    def limit(self) -> float:
        """The most cost admitted in one window."""
        return self._limit

    @property
    def per(self) -> float:
        """The window length in seconds."""
        return self._per

    def resized(self, limit: float, per: float) -> RedisSlidingWindow:
        """The same ledger key and clock with another ``limit`` per ``per`` (e.g. with headroom)."""
        return RedisSlidingWindow(self._client, self.key, limit, per, clock=self._clock)

    def __repr__(self) -> str:
        return f"RedisSlidingWindow(key={self.key!r}, limit={self._limit!r}, per={self._per!r})"

    def for_key(self, label: str) -> RedisSlidingWindow:
        """The window of one scope key (``label`` such as ``"ip:10.0.0.1"``), under this key."""
        made = copy.copy(self)
        made._set_key(f"{self.key}:{label}")
        return made

    def clone(self) -> RedisSlidingWindow:
        """The same shared window: its state lives in Redis, not in this object."""
        return copy.copy(self)

    def idle(self, now: float) -> bool:
        """Always True: nothing is held locally, so the object may be forgotten at any time."""
        return True

    def _run(self, mode: int, now: float, cost: float) -> Decision:
        t_arg = "" if self._clock == "server" else _caller_us(now)
        try:
            allowed, wait_us, t_us = self._script(
                keys=self._keys,
                args=(mode, repr(float(cost)), repr(float(self._limit)), self._per_us, t_arg),
            )
        except _import_redis().RedisError as exc:
            raise SharedStoreError(f"{self!r}: the Redis ledger failed: {exc}") from exc
        if allowed:
            return ALLOWED
        wait_us = int(wait_us)
        if self._clock == "server":
            return Decision(False, wait_us / _US)
        return Decision(False, _retry_after_us(now, int(t_us), wait_us))

    def check(self, now: float, cost: float = 1) -> Decision:
        """Whether ``cost`` fits in the shared window ending now; nothing is recorded.

        Raises:
            ValueError: ``cost`` is negative or exceeds the limit.
            SharedStoreError: Redis failed.
        """
        if not 0 <= cost <= self._limit:
            raise cost_error(cost, self._limit, repr(self))
        return self._run(0, now, cost)

    def commit(self, now: float, cost: float = 1) -> None:
        """Record ``cost`` now, even past the limit.

        Raises:
            ValueError: ``cost`` is negative or NaN.
            SharedStoreError: Redis failed.
        """
        if cost < 0 or cost != cost or not math.isfinite(cost):
            raise cost_error(cost, self._limit, repr(self))
        self._run(1, now, cost)

    def try_acquire(self, now: float, cost: float = 1) -> Decision:
        """Admit and record ``cost`` if it fits in the shared window ending now (one round trip).

        Raises:
            ValueError: ``cost`` is negative or exceeds the limit.
            SharedStoreError: Redis failed.
        """
        if not 0 <= cost <= self._limit:
            raise cost_error(cost, self._limit, repr(self))
        return self._run(2, now, cost)


class RedisPenaltyBox:
    """Penalties per scope key shared through Redis: one process's violation holds back all.

    A drop-in for :class:`~rxws.ratelimit.PenaltyBox` (pass it to
    ``VenueRateLimiter(penalty_store=...)``): the level and end of each penalty live in a Redis
    hash under ``<prefix>:<key>``, reported and read atomically, with the same growth and reset
    as the local box. Keys of the connection scope (``"connection:..."``) stay in a local box:
    connection ids are per process and must not collide.

    Reads are cached for ``max_age`` seconds (a penalty reported here is seen at once; one
    reported by another process within ``max_age``); 0 asks Redis on every call. The cache ages
    on this host's monotonic clock with ``clock="server"`` (the caller's ``now`` is ignored), on
    ``now`` with ``clock="caller"``. ``ended()`` (for ``PenaltyEnded``) is answered per process: each
    process announces the end of a penalty it saw.

    Args:
        client: a redis-py ``Redis`` client.
        prefix: the key prefix; every process using it shares the penalties.
        policy: how long penalties last.
        clock: ``"server"`` (default) or ``"caller"`` (wall-clock ``now``), as for windows.
        max_age: seconds a read may be reused (>= 0).

    Raises:
        ValueError: on a negative ``max_age``, an empty prefix or an unknown clock.
        ImportError: redis-py is not installed.
    """

    def __init__(
        self,
        client: RedisClient,
        prefix: str,
        policy: PenaltyPolicy | None = None,
        *,
        clock: Clock = "server",
        max_age: float = 0.1,
    ) -> None:
        _import_redis()
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"RedisPenaltyBox prefix must be a non-empty str, got {prefix!r}")
        if not (math.isfinite(max_age) and max_age >= 0):
            raise ValueError(f"max_age must be finite and >= 0, got {max_age!r}")
        self.policy = policy or PenaltyPolicy()
        self.prefix = prefix
        self._clock = _check_clock(clock)
        self._max_age = max_age
        self._report = client.register_script(REPORT_LUA)
        self._remaining = client.register_script(REMAINING_LUA)
        self._local = PenaltyBox(self.policy)
        self._cache: dict[str, tuple[float, float]] = {}  # key -> (read at, ends at), _local_now()
        self._seen: set[str] = set()  # keys seen under penalty here, PenaltyEnded not yet given
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisPenaltyBox(prefix={self.prefix!r})"

    def __len__(self) -> int:
        """Never 0: another process may have started a penalty not yet seen here, so ask."""
        return 1 + len(self._local)

    def _t_arg(self, now: float) -> str:
        return "" if self._clock == "server" else _caller_us(now)

    def _local_now(self, now: float) -> float:
        return time.monotonic() if self._clock == "server" else now

    def _call(self, script: Any, key: str, args: tuple[object, ...]) -> tuple[int, int]:
        try:
            left_us, t_us = script(keys=(f"{self.prefix}:{key}",), args=args)
        except _import_redis().RedisError as exc:
            raise SharedStoreError(f"{self!r}: the Redis ledger failed: {exc}") from exc
        return int(left_us), int(t_us)

    def report(self, key: str, now: float, retry_after: float | None = None) -> float:
        """Start or extend the shared penalty of ``key``; returns the seconds from now to its end."""
        if key.startswith(_LOCAL_PREFIX):
            return self._local.report(key, now, retry_after)
        p = self.policy
        ra = repr(float(retry_after)) if retry_after is not None and math.isfinite(retry_after) else ""
        args = (repr(p.initial), repr(p.factor), repr(p.max), repr(p.reset_after), ra, self._t_arg(now))
        left_us, _ = self._call(self._report, key, args)
        seconds = left_us / _US
        at = self._local_now(now)
        with self._lock:
            self._cache[key] = (at, at + seconds)
            self._seen.add(key)
        return seconds

    def remaining(self, key: str, now: float) -> float:
        """Seconds left of the shared penalty of ``key`` (0.0 when none is active)."""
        if key.startswith(_LOCAL_PREFIX):
            return self._local.remaining(key, now)
        at = self._local_now(now)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and 0 <= at - hit[0] < self._max_age:
            return max(0.0, hit[1] - at)
        left_us, _ = self._call(self._remaining, key, (self._t_arg(now),))
        left = left_us / _US
        with self._lock:
            if len(self._cache) > 1024:
                self._cache = {k: v for k, v in self._cache.items() if v[1] > at}
            self._cache[key] = (at, at + left)
            if left > 0:
                self._seen.add(key)
        return left

    def ended(self, key: str, now: float) -> bool:
        """True once per process, on the first call after a penalty seen here has ended."""
        if key.startswith(_LOCAL_PREFIX):
            return self._local.ended(key, now)
        if key not in self._seen or self.remaining(key, now) > 0:
            return False
        with self._lock:
            if key not in self._seen:
                return False
            self._seen.discard(key)
        return True


class RedisLedger:
    """One Redis client, key prefix and clock, making the shared windows and penalty boxes.

    Pass it to a preset as ``shared=`` or build rules with :meth:`sliding_window` and
    :meth:`penalty_box`. Every process using the same Redis database and ``prefix`` shares the
    budgets and penalties of the same names.

    Args:
        client: a synchronous redis-py ``Redis`` client.
        prefix: the first part of every key (default ``"rxws"``).
        clock: ``"server"`` (Redis ``TIME``; default) or ``"caller"`` (wall-clock ``now``).
        max_age: how long penalty reads may be reused (see :class:`RedisPenaltyBox`).
    """

    def __init__(
        self, client: RedisClient, *, prefix: str = "rxws", clock: Clock = "server", max_age: float = 0.1
    ) -> None:
        _import_redis()
        self.client = client
        self.prefix = prefix
        self.clock = _check_clock(clock)
        self.max_age = max_age

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "rxws", clock: Clock = "server", max_age: float = 0.1
    ) -> RedisLedger:
        """A ledger on a new client for ``url`` (e.g. ``"redis://127.0.0.1:6379/0"``)."""
        client = _import_redis().Redis.from_url(url)
        return cls(client, prefix=prefix, clock=clock, max_age=max_age)

    def __repr__(self) -> str:
        return f"RedisLedger(prefix={self.prefix!r}, clock={self.clock!r})"

    def sliding_window(self, name: str, limit: float, per: float) -> RedisSlidingWindow:
        """A shared exact sliding window under ``<prefix>:<name>``."""
        return RedisSlidingWindow(self.client, f"{self.prefix}:{name}", limit, per, clock=self.clock)

    def penalty_box(self, name: str, policy: PenaltyPolicy | None = None) -> RedisPenaltyBox:
        """A shared penalty box under ``<prefix>:<name>``."""
        return RedisPenaltyBox(
            self.client, f"{self.prefix}:{name}", policy, clock=self.clock, max_age=self.max_age
        )
