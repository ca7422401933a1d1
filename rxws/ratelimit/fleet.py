"""The fleet ledger: every shared budget decided in Redis, asynchronously, with leases and an outage policy.

A venue counts per IP and per account, not per process. :class:`FleetLedger` is what every process
behind one budget shares (pass it to a preset as ``shared=``, or to
``VenueRateLimiter(ledger=...)``):

- **Any rule, atomically.** A rule of any scope (IP, account, product, even connection) becomes a
  :class:`SharedRule`: an exact sliding window, a token bucket, or a lease cap. All the shared
  rules of one action are decided by **one** Lua script, all or nothing, on the Redis server's
  clock (``TIME``), so hosts need no synchronised clocks.
- **Never on the loop's critical path.** Calls are ``redis.asyncio`` coroutines bounded by
  ``timeout``; the limiter's synchronous decisions never wait for Redis: a connection attempt asks
  the ledger in the background (``acquire_connect_async`` awaits it; the synchronous
  ``acquire_connect`` answers "retry in a few ms" until the answer is in), and per-message budgets
  are spent locally from *blocks* of units granted in advance (one round trip per block).
- **Leases.** Concurrent-connection caps are leases: a member of a Redis sorted set whose score is
  its expiry (``lease_ttl``). The ledger's own timer renews every lease held in this process every
  ``lease_ttl / 3`` seconds (one script for all of them); a clean close removes the lease at once; a
  process killed with SIGKILL stops renewing, and its slots return within ``lease_ttl``.
- **Outage policy.** When Redis does not answer within ``timeout``, the ledger emits
  :class:`~rxws.ratelimit.events.LedgerUnavailable`, probes every ``probe_every`` seconds, and
  :class:`~rxws.ratelimit.events.LedgerRestored` once it answers (leases are re-asserted then).
  Meanwhile ``outage="fail_closed"`` refuses every shared decision (the client waits or fails with
  a clear error), and ``outage="local_share"`` lets each process spend ``local_share`` of every
  shared budget from memory (choose ``local_share <= 1 / processes`` to stay within the venue's
  limit). Nothing waits on Redis in a queue: each connection has at most one request in flight and
  each block key one refill, and at most ``max_pending`` calls run at once (more are refused).

Over-admission. While the ledger answers, none: a grant is made *before* its units are spent. A
grant may be spent up to ``hold`` seconds after it was asked for, so a window logs it at
``t + hold`` (an admission spent anywhere in ``[t, t + hold]`` is then counted by every later
decision that could share a venue window with it), and a bucket's burst is reduced by what refills
in ``hold`` (:meth:`SharedRule.bucket`). Units of a block not spent within ``hold`` are discarded
(counted as spent: never over, sometimes under). During an outage with ``local_share``, the fleet
admits at most ``processes x local_share`` of each budget; with ``fail_closed``, nothing new.

A call that timed out may still reach Redis later (a frozen server thaws): what it granted is
then counted and unused (never over-admitted), and a lease it took, renewed by nobody, expires
within ``lease_ttl``.

Keys: ``{<prefix>}:<name>...``; the braces put every key of a ledger in one Redis Cluster slot, so
one script may touch several.

Needs redis-py >= 5 (the ``redis`` extra), imported when a ledger is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from rxws.exceptions import UsageError
from rxws.ratelimit._lua import DECIDE_LUA, RELEASE_LUA, RENEW_LUA
from rxws.ratelimit.base import ALLOWED, Decision
from rxws.ratelimit.events import LedgerRestored, LedgerUnavailable, RateLimitEvent
from rxws.ratelimit.penalty import PenaltyPolicy

if TYPE_CHECKING:
    from rxws.ratelimit.fleet_penalty import FleetPenaltyBox

__all__ = ["FleetLedger", "Outage", "SharedRule"]

log = logging.getLogger(__name__)

Outage = Literal["fail_closed", "local_share"]
"""What shared decisions do while Redis is unreachable (see :class:`FleetLedger`)."""

T = TypeVar("T")
_US = 1_000_000
_INF = math.inf


@dataclass(frozen=True, slots=True)
class SharedRule:
    """One rule as the ledger decides it, bound to its Redis key.

    Attributes:
        kind: ``"window"`` (at most ``limit`` in any ``per`` seconds, exact), ``"bucket"``
            (``rate`` per ``per`` seconds refilling a bucket of ``limit``) or ``"lease"`` (at most
            ``limit`` holders at once, each for ``per`` seconds unless renewed).
        key: the full Redis key (a window also uses ``key + ":meta"``).
        limit: the window's limit, the bucket's size, or the lease cap.
        per: the window length, the bucket's refill period, or the lease TTL, in seconds.
        rate: a bucket's refill per ``per`` (unused otherwise).
        hold: seconds a grant may be spent after it was asked for (windows log it that late).
    """

    kind: Literal["window", "bucket", "lease"]
    key: str
    limit: float
    per: float
    rate: float = 0.0
    hold: float = 0.0

    @classmethod
    def bucket(cls, key: str, rate: float, per: float, burst: float, hold: float) -> SharedRule:
        """A shared token bucket whose burst gives up what refills in ``hold`` seconds.

        Raises:
            ValueError: ``hold`` would leave no room in the bucket.
        """
        size = burst - rate * hold / per
        if float(burst).is_integer():
            size = math.floor(size + 1e-9)
        if not size > 0:
            raise ValueError(
                f"hold={hold:g}s leaves no room in a bucket of {burst:g} at {rate:g} per {per:g}s"
            )
        return cls("bucket", key, size, per, rate=rate, hold=hold)

    @property
    def capacity(self) -> float:
        """The largest single cost this rule can ever grant."""
        return self.limit

    def keys(self) -> tuple[str, str]:
        """The two KEYS the script receives for this rule."""
        return (self.key, f"{self.key}:meta")

    def args(self, cost: float) -> tuple[str, str, str, str, str]:
        """The five ARGV entries of this rule for a request of ``cost``."""
        if self.kind == "window":
            per_us, hold_us = math.ceil(self.per * _US), math.ceil(self.hold * _US)
            return ("w", repr(float(self.limit)), str(per_us), str(hold_us), repr(float(cost)))
        if self.kind == "bucket":
            per_us_rate = self.rate / (self.per * _US)
            return ("b", repr(per_us_rate), repr(float(self.limit)), "0", repr(float(cost)))
        return ("l", repr(float(self.limit)), str(math.ceil(self.per * _US)), "0", "1")


def _import_redis_asyncio() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - exercised where redis-py is absent
        raise ImportError("rxws.ratelimit.fleet needs redis-py: pip install 'rxws[redis]'") from exc
    return aioredis


class FleetLedger:
    """Shared budgets, leases and penalties for every process behind one venue budget.

    A ledger binds to the asyncio loop it is first used on (its ``redis.asyncio`` client does too);
    calls from other threads are handed to that loop. Use one ledger per loop.

    Args:
        client: a ``redis.asyncio.Redis`` client (give it socket timeouts near ``timeout``).
        prefix: the first part of every key (default ``"rxws"``); processes sharing a prefix and a
            Redis database share every budget of the same name.
        timeout: the longest a ledger call may take (seconds); past it Redis counts as unavailable.
        lease_ttl: seconds a lease outlives its last renewal (the SIGKILL recovery bound).
        hold: seconds a grant stays spendable (see the module docstring).
        outage: ``"fail_closed"`` or ``"local_share"``.
        local_share: the fraction of each shared budget a process spends alone during an outage.
        probe_every: seconds between probes while Redis is unavailable.
        max_block: the most units one message/subscription block grants.
        max_pending: the most ledger calls in flight at once (keep it below the client's pool
            size; :meth:`from_url` sizes the pool to fit).

    Raises:
        ValueError: on an out-of-range argument.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "rxws",
        # Timeouts
        timeout: float = 0.25,
        lease_ttl: float = 5.0,
        hold: float = 0.1,
        # Outage
        outage: Outage = "fail_closed",
        local_share: float = 0.25,
        probe_every: float = 0.25,
        # Limits
        max_block: int = 16,
        max_pending: int = 64,
    ) -> None:
        _import_redis_asyncio()
        for name, value in (("timeout", timeout), ("lease_ttl", lease_ttl), ("probe_every", probe_every)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        if not (math.isfinite(hold) and hold >= 0):
            raise ValueError(f"hold must be finite and >= 0, got {hold!r}")
        if lease_ttl <= 2 * timeout:
            raise ValueError(f"lease_ttl ({lease_ttl}) must exceed twice the timeout ({timeout})")
        if outage not in ("fail_closed", "local_share"):
            raise ValueError(f"outage must be 'fail_closed' or 'local_share', got {outage!r}")
        if not 0 < local_share <= 1:
            raise ValueError(f"local_share must be in (0, 1], got {local_share!r}")
        if (
            not isinstance(max_block, int)
            or max_block < 1
            or not isinstance(max_pending, int)
            or max_pending < 1
        ):
            raise ValueError("max_block and max_pending must be ints >= 1")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty str, got {prefix!r}")
        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self.lease_ttl = lease_ttl
        self.hold = hold
        self.outage: Outage = outage
        self.local_share = local_share
        self.probe_every = probe_every
        self.max_block = max_block
        self.max_pending = max_pending
        self.available = True
        self.calls = 0
        self.failures = 0
        self._decide = client.register_script(DECIDE_LUA)
        self._renew = client.register_script(RENEW_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._leases: dict[str, tuple[str, ...]] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._down_since = 0.0
        self._listeners: tuple[Callable[[RateLimitEvent], None], ...] = ()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FleetLedger:
        """A ledger on a new ``redis.asyncio`` client for ``url``: socket timeouts = ``timeout``, no
        retries (the outage policy decides instead), a pool of ``max_pending + 8`` connections."""
        aioredis = _import_redis_asyncio()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        timeout = float(options.get("timeout", 0.25))
        pool = int(options.get("max_pending", 64)) + 8  # + the renewal timer and the probe
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            max_connections=pool,
        )
        return cls(client, **options)

    def __repr__(self) -> str:
        return f"FleetLedger(prefix={self.prefix!r}, outage={self.outage!r}, available={self.available})"

    def key(self, *parts: object) -> str:
        """The Redis key for ``parts`` under this ledger's prefix (one cluster slot per prefix)."""
        return ":".join((f"{{{self.prefix}}}", *(str(p) for p in parts)))

    def penalty_box(self, name: str, policy: PenaltyPolicy | None = None) -> FleetPenaltyBox:
        """A shared penalty store under ``name`` (see :mod:`rxws.ratelimit.fleet_penalty`)."""
        from rxws.ratelimit.fleet_penalty import FleetPenaltyBox

        return FleetPenaltyBox(self, name, policy)

    # Listeners ----------------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[RateLimitEvent], None]) -> Callable[[], None]:
        """Call ``fn`` with ``LedgerUnavailable`` / ``LedgerRestored``; returns its remover."""
        self._listeners = (*self._listeners, fn)

        def remove() -> None:
            self._listeners = tuple(f for f in self._listeners if f is not fn)

        return remove

    def _emit(self, event: RateLimitEvent) -> None:
        for fn in self._listeners:
            try:
                fn(event)
            except Exception:  # a listener's failure never stops the ledger
                log.exception("a FleetLedger listener raised")

    # Running coroutines ---------------------------------------------------------------------------
    def submit(self, make: Callable[[], Awaitable[T]], done: Callable[[T | None], None]) -> bool:
        """Run ``make()`` on the ledger's loop and pass its result (None on failure) to ``done``.

        Callable from any thread. Returns False, without calling ``done``, when ``max_pending``
        calls are already in flight.

        Raises:
            UsageError: no asyncio loop is running here and none was bound yet.
        """
        loop = self._bind()
        if self._pending >= self.max_pending:
            return False
        self._pending += 1

        async def run() -> None:
            result: T | None = None
            try:
                result = await make()
            finally:
                self._pending -= 1
                done(result)

        if _running_loop() is loop:
            self._track(loop.create_task(run()))
        else:
            fut: ThreadFuture[None] = asyncio.run_coroutine_threadsafe(run(), loop)
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        return True

    def _bind(self) -> asyncio.AbstractEventLoop:
        running = _running_loop()
        if self._loop is None or self._loop.is_closed():
            if running is None:
                raise UsageError("a FleetLedger needs a running asyncio loop (use it from the client's loop)")
            self._loop = running
        return self._loop

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T | None:
        """One Redis call bounded by ``timeout``; None (and an outage) when it fails."""
        if not self.available:
            return None
        self.calls += 1
        aioredis = _import_redis_asyncio()
        try:
            async with asyncio.timeout(self.timeout):
                return await make()
        except (TimeoutError, OSError, aioredis.RedisError) as exc:
            self.failures += 1
            self._went_down(exc)
            return None

    # Decisions ------------------------------------------------------------------------------------
    async def decide(
        self, rules: Sequence[SharedRule], costs: Sequence[float], holder: str = ""
    ) -> Decision | None:
        """Grant ``costs[i]`` of every rule ``rules[i]`` at once, or none of them.

        Leases make ``holder`` a holder of their key. Returns the decision (``retry_after=inf`` when
        a lease cap is full or a cost exceeds a rule's capacity), or None when the ledger is
        unavailable (the caller applies the outage policy).
        """
        if not rules:
            return ALLOWED
        keys: list[str] = []
        args: list[str] = [holder, str(len(rules))]
        for rule, cost in zip(rules, costs, strict=True):
            keys.extend(rule.keys())
            args.extend(rule.args(cost))
        reply = await self._call(lambda: self._decide(keys=keys, args=args))
        if reply is None:
            return None
        allowed, wait_us = int(reply[0]), int(reply[1])
        if allowed:
            return ALLOWED
        return Decision(False, _INF if wait_us < 0 else wait_us / _US)

    # Leases ---------------------------------------------------------------------------------------
    def hold_leases(self, holder: str, keys: Sequence[str]) -> None:
        """Renew ``holder``'s leases on ``keys`` from now on (the ledger's own timer)."""
        if not keys:
            return
        self._leases[holder] = tuple(keys)
        loop = self._bind()
        if self._renewer is None or self._renewer.done():
            if _running_loop() is loop:
                self._renewer = loop.create_task(self._renew_loop())
            else:
                loop.call_soon_threadsafe(self._start_renewer)

    def _start_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())

    def drop_leases(self, holder: str) -> tuple[str, ...]:
        """Stop renewing ``holder``'s leases; returns their keys (for :meth:`release`)."""
        return self._leases.pop(holder, ())

    @property
    def leases(self) -> dict[str, tuple[str, ...]]:
        """The leases this process renews: holder -> keys (a copy)."""
        return dict(self._leases)

    async def release(self, holder: str, keys: Sequence[str]) -> bool:
        """Free ``holder``'s leases on ``keys`` at once; False when Redis did not answer (the TTL
        then frees them)."""
        if not keys:
            return True
        reply = await self._call(lambda: self._release(keys=list(keys), args=[holder] * len(keys)))
        return reply is not None

    async def renew(self) -> bool:
        """Renew (or re-assert) every lease held here in one script; False when Redis failed."""
        held = list(self._leases.items())
        if not held:
            return True
        keys = [k for _, ks in held for k in ks]
        holders = [h for h, ks in held for _ in ks]
        ttl_us = str(math.ceil(self.lease_ttl * _US))
        reply = await self._call(lambda: self._renew(keys=keys, args=[ttl_us, *holders]))
        return reply is not None

    async def _renew_loop(self) -> None:
        period = self.lease_ttl / 3
        while self._leases:
            await asyncio.sleep(period)
            if self.available:
                await self.renew()

    # Outage ---------------------------------------------------------------------------------------
    def _went_down(self, exc: BaseException) -> None:
        if not self.available:
            return
        self.available = False
        self._down_since = time.monotonic()
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("%r: Redis unavailable (%s); policy %s", self, detail, self.outage)
        self._emit(LedgerUnavailable(at=self._down_since, policy=self.outage, detail=detail))
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(self._probe_loop())

    async def _probe_loop(self) -> None:
        aioredis = _import_redis_asyncio()
        while not self.available:
            await asyncio.sleep(self.probe_every)
            try:
                await asyncio.wait_for(self.client.ping(), self.timeout)
            except (TimeoutError, OSError, aioredis.RedisError):
                continue
            self.available = True
            now = time.monotonic()
            log.warning("%r: Redis answers again after %.3fs", self, now - self._down_since)
            await self.renew()
            self._emit(LedgerRestored(at=now, downtime=now - self._down_since))

    async def aclose(self) -> None:
        """Stop the timers and close the Redis client (leases left are freed by their TTL)."""
        for task in (self._renewer, self._prober, *self._tasks):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._renewer, self._prober, *self._tasks):
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task
        self._leases.clear()
        with contextlib.suppress(Exception):
            await self.client.aclose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
