"""The shared half of a :class:`~rxws.ratelimit.VenueRateLimiter`: its rules decided by a fleet ledger.

Private. The limiter hands over the rules whose scope is shared and calls in under its own lock;
nothing here ever waits for Redis:

- **Connection attempts** ask the ledger for every shared CONNECT rule and every shared cap (as
  leases) in one script, in the background: a *ticket* per connection id. Until the answer is in,
  the synchronous decision is :data:`PENDING` (retry in 2 ms); :meth:`SharedPart.wait` lets an
  async caller await it instead.
- **Messages and subscriptions** spend a *block* of units granted in advance by one script for
  all the shared rules of the action (all or nothing); a block is asked for when the last one runs
  out, grows (doubling, up to ``max_block``) when spent before its ``hold`` ends and shrinks when
  not, and what is left at the end of its ``hold`` is discarded (counted, never reused).
- **Outage**: ``fail_closed`` refuses (``Rejected(why="ledger")``, retry after ``probe_every``);
  ``local_share`` decides from in-memory copies of the shared rules holding ``local_share`` of each
  count (caps: ``floor(cap * local_share)`` connections of this process, those opened before the
  outage included).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from rxws.ratelimit.base import ALLOWED, Action, Algorithm, Decision, Scope
from rxws.ratelimit.buckets import LeakyBucket, TokenBucket
from rxws.ratelimit.events import RateLimitEvent, Rejected
from rxws.ratelimit.fleet import FleetLedger, SharedRule
from rxws.ratelimit.limiter import RateLimiter, Rule
from rxws.ratelimit.windows import FixedWindow, SlidingWindow, SlidingWindowCounter

__all__ = ["PENDING", "SharedPart", "charge", "decide", "shareable"]

PENDING = Decision(False, 0.002)
"""The ledger is being asked: retry in 2 ms (compared by identity)."""

_INF = math.inf
_MAX_CACHE = 4096


def _algorithm(rule: Rule) -> Algorithm:
    return rule.limit if isinstance(rule.limit, Algorithm) else rule.limit()


def _is_window(alg: Algorithm) -> bool:
    """A window the ledger can count (``RedisSlidingWindow`` by name: the redis extra may be absent)."""
    windows = (SlidingWindow, SlidingWindowCounter, FixedWindow)
    return isinstance(alg, windows) or type(alg).__name__ == "RedisSlidingWindow"


def _template(rule: Rule, ledger: FleetLedger) -> SharedRule | None:
    alg = _algorithm(rule)
    if _is_window(alg):
        limit, per = getattr(alg, "limit"), getattr(alg, "per")  # noqa: B009 - duck-typed windows
        return SharedRule("window", "", limit, per, hold=ledger.hold)
    if isinstance(alg, TokenBucket | LeakyBucket):
        return SharedRule.bucket("", alg.rate, alg.per, alg.burst, ledger.hold)
    return None


def shareable(rule: Rule, scopes: Iterable[Scope]) -> bool:
    """Whether ``rule`` goes to the ledger: its scope is shared and its algorithm is known."""
    if rule.scope not in set(scopes):
        return False
    alg = _algorithm(rule)
    return _is_window(alg) or isinstance(alg, TokenBucket | LeakyBucket)


def _label(scope: Scope, key: Hashable) -> str | None:
    if scope is Scope.GLOBAL:
        return "global"
    return None if key is None else f"{scope.value}:{key}"


def _fallback(rule: SharedRule, share: float) -> Algorithm:
    def part(x: float) -> float:
        kept = x * share
        return max(math.floor(kept + 1e-9), 1) if float(x).is_integer() else kept

    if rule.kind == "window":
        return SlidingWindow(part(rule.limit), rule.per)
    return TokenBucket(part(rule.rate), rule.per, part(rule.limit))


@dataclass(slots=True)
class _Ticket:
    sent: float
    leases: tuple[str, ...]
    done: bool = False
    result: Decision | None = None
    future: asyncio.Future[None] | None = None


@dataclass(slots=True)
class _Block:
    size: int = 1
    units: float = 0.0
    deadline: float = 0.0
    fetching: bool = False
    wait_until: float = 0.0
    granted: float = 0.0
    wasted: float = 0.0


@dataclass(slots=True)
class _Action:
    rules: list[tuple[Rule, SharedRule, int]] = field(default_factory=list)
    fallback: RateLimiter | None = None


class SharedPart:
    """The shared rules and caps of one limiter, and what this process holds of them."""

    def __init__(
        self,
        ledger: FleetLedger,
        name: str,
        rules: Mapping[Action, Iterable[Rule]],
        caps: Mapping[Scope, int],
        lock: threading.RLock,
    ) -> None:
        self.ledger = ledger
        self.name = name
        self._lock = lock
        self._actions: dict[Action, _Action] = {}
        for action, items in rules.items():
            part = _Action()
            for index, rule in enumerate(items):
                made = _template(rule, ledger)
                if made is None:
                    raise ValueError(f"{rule.label}: this algorithm cannot be shared; keep it local")
                part.rules.append((rule, made, index))
            if part.rules:
                part.fallback = RateLimiter(
                    *(
                        Rule(_fallback(t, ledger.local_share), r.scope, weight=r.weight)
                        for r, t, _ in part.rules
                    )
                )
            self._actions[action] = part
        self.caps = dict(caps)
        self._tickets: dict[str, _Ticket] = {}
        self._held: dict[str, tuple[str, ...]] = {}
        self._blocks: dict[tuple[object, ...], _Block] = {}
        self._specs: dict[tuple[object, ...], list[tuple[SharedRule, float]]] = {}

    def rules(self, action: Action) -> tuple[Rule, ...]:
        """The shared rules of ``action``."""
        part = self._actions.get(action)
        return tuple(r for r, _, _ in part.rules) if part else ()

    # Keys -------------------------------------------------------------------------------------
    def _resolve(self, action: Action, keys: Mapping[Scope, Hashable]) -> list[tuple[SharedRule, float]]:
        part = self._actions.get(action)
        if part is None or not part.rules:
            return []
        cache = (action, *sorted((s.value, str(k)) for s, k in keys.items()))
        hit = self._specs.get(cache)
        if hit is not None:
            return hit
        out: list[tuple[SharedRule, float]] = []
        for rule, template, index in part.rules:
            label = _label(rule.scope, keys.get(rule.scope))
            if label is not None:
                out.append(
                    (
                        replace(template, key=self.ledger.key(self.name, action.value, index, label)),
                        rule.weight,
                    )
                )
        if len(self._specs) >= _MAX_CACHE:
            self._specs.clear()
        self._specs[cache] = out
        return out

    def _leases(self, keys: Mapping[Scope, Hashable]) -> list[SharedRule]:
        out = []
        for scope, cap in self.caps.items():
            label = _label(scope, keys.get(scope))
            if label is not None:
                key = self.ledger.key(self.name, "conns", label)
                out.append(SharedRule("lease", key, cap, self.ledger.lease_ttl))
        return out

    # Connections ------------------------------------------------------------------------------
    def connect(
        self, conn_id: str, keys: Mapping[Scope, Hashable], now: float, events: list[RateLimitEvent]
    ) -> Decision:
        """The shared part of a connection attempt (the caller holds the limiter's lock)."""
        if not self.ledger.available:
            self._drop_ticket(conn_id)
            return self._outage(Action.CONNECT, conn_id, keys, now, 1.0, events)
        ticket = self._tickets.get(conn_id)
        if ticket is None:
            self._ask(conn_id, keys)
            return PENDING
        if not ticket.done:
            return PENDING
        del self._tickets[conn_id]
        result = ticket.result
        if result is None:  # the call failed: the ledger is now unavailable
            return self._outage(Action.CONNECT, conn_id, keys, now, 1.0, events)
        if result.allowed:
            if time.monotonic() > ticket.sent + self.ledger.hold:  # too late to use: ask again
                self._free(conn_id, ticket.leases)
                self._ask(conn_id, keys)
                return PENDING
            self._held[conn_id] = ticket.leases
            self.ledger.hold_leases(conn_id, ticket.leases)
            return ALLOWED
        why = "connections" if result.retry_after == _INF else "rate"
        events.append(
            Rejected(at=now, action=Action.CONNECT, conn_id=conn_id, why=why, retry_after=result.retry_after)
        )
        return result

    def _ask(self, conn_id: str, keys: Mapping[Scope, Hashable]) -> None:
        specs = self._resolve(Action.CONNECT, keys)
        leases = self._leases(keys)
        rules = [s for s, _ in specs] + leases
        costs = [w for _, w in specs] + [1.0] * len(leases)
        ticket = _Ticket(time.monotonic(), tuple(lease.key for lease in leases))
        loop = self.ledger._bind()
        if _running() is loop:
            ticket.future = loop.create_future()
        self._tickets[conn_id] = ticket

        def done(result: Decision | None) -> None:
            with self._lock:
                ticket.done, ticket.result = True, result
                current = self._tickets.get(conn_id) is ticket
            if ticket.future is not None and not ticket.future.done():
                ticket.future.set_result(None)
            if not current and result is not None and result.allowed:
                self._free(conn_id, ticket.leases)  # released or retried meanwhile
            elif current and result is not None and result.allowed and ticket.leases:
                loop.call_later(self.ledger.hold + 1.0, self._expire, conn_id, ticket)

        if not self.ledger.submit(lambda: self.ledger.decide(rules, costs, conn_id), done):
            ticket.done = True  # too many calls in flight: refuse briefly
            ticket.result = Decision(False, self.ledger.probe_every)

    def _expire(self, conn_id: str, ticket: _Ticket) -> None:
        with self._lock:
            if self._tickets.get(conn_id) is not ticket:
                return
            del self._tickets[conn_id]
        self._free(conn_id, ticket.leases)

    def _drop_ticket(self, conn_id: str) -> None:
        ticket = self._tickets.pop(conn_id, None)
        if ticket is not None and ticket.done and ticket.result is not None and ticket.result.allowed:
            self._free(conn_id, ticket.leases)

    def _free(self, conn_id: str, leases: tuple[str, ...]) -> None:
        if leases:
            self.ledger.submit(lambda: self.ledger.release(conn_id, leases), lambda _: None)

    async def wait(self, conn_id: str) -> None:
        """Until ``conn_id``'s pending answer is in (at most the ledger's timeout and a bit)."""
        with self._lock:
            ticket = self._tickets.get(conn_id)
        future = ticket.future if ticket is not None else None
        if future is None or _running() is not self.ledger._loop:
            await asyncio.sleep(PENDING.retry_after)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), self.ledger.timeout + 1.0)

    def release(self, conn_id: str) -> None:
        """``conn_id`` closed: its leases go at once, its local fallback slots too."""
        self._drop_ticket(conn_id)
        leases = self._held.pop(conn_id, ())
        self.ledger.drop_leases(conn_id)
        self._free(conn_id, leases)

    # Messages and subscriptions ---------------------------------------------------------------
    def spend(
        self,
        action: Action,
        conn_id: str,
        keys: Mapping[Scope, Hashable],
        now: float,
        cost: float,
        events: list[RateLimitEvent],
        *,
        force: bool = False,
    ) -> Decision:
        """Spend ``cost`` of the shared rules of ``action`` from this process's block."""
        specs = self._resolve(action, keys)
        if not specs:
            return ALLOWED
        ident = (action, *(s.key for s, _ in specs))
        block = self._blocks.get(ident)
        if block is None:
            if len(self._blocks) >= _MAX_CACHE:
                self._blocks = {k: b for k, b in self._blocks.items() if b.fetching or b.units}
            block = self._blocks[ident] = _Block()
        mono = time.monotonic()
        if block.units > 0 and mono > block.deadline:
            block.wasted += block.units
            block.units = 0.0
            block.size = max(1, block.size // 2)
        if block.units >= cost or force:
            block.units -= cost
            return ALLOWED
        if not self.ledger.available:
            return self._outage(action, conn_id, keys, now, cost, events)
        if block.fetching:
            return PENDING
        if mono < block.wait_until:
            return Decision(False, block.wait_until - mono)
        self._fetch(block, specs, cost)
        return (
            PENDING if block.fetching else Decision(False, max(block.wait_until - mono, PENDING.retry_after))
        )

    def _fetch(self, block: _Block, specs: list[tuple[SharedRule, float]], cost: float) -> None:
        room = min(math.floor(s.capacity / w + 1e-9) for s, w in specs)
        size = max(1, min(block.size, room, self.ledger.max_block))
        size = max(size, math.ceil(cost - block.units))
        rules = [s for s, _ in specs]
        costs = [size * w for _, w in specs]
        sent = time.monotonic()
        block.fetching = True

        def done(result: Decision | None) -> None:
            with self._lock:
                block.fetching = False
                if result is None:
                    return
                if result.allowed:
                    if block.units <= 0 and block.granted and block.size < self.ledger.max_block:
                        block.size *= 2  # the last block was spent in time: ask for more
                    block.units += size
                    block.granted += size
                    block.deadline = sent + self.ledger.hold
                    block.wait_until = 0.0
                elif size > 1:
                    block.size = 1  # a smaller block may fit now
                else:
                    block.wait_until = time.monotonic() + min(result.retry_after, 60.0)

        if not self.ledger.submit(lambda: self.ledger.decide(rules, costs), done):
            block.fetching = False
            block.wait_until = sent + self.ledger.probe_every

    # Outage -----------------------------------------------------------------------------------
    def _outage(
        self,
        action: Action,
        conn_id: str,
        keys: Mapping[Scope, Hashable],
        now: float,
        cost: float,
        events: list[RateLimitEvent],
    ) -> Decision:
        wait = self.ledger.probe_every
        if self.ledger.outage == "fail_closed":
            events.append(Rejected(at=now, action=action, conn_id=conn_id, why="ledger", retry_after=wait))
            return Decision(False, wait)
        part = self._actions.get(action)
        slots: list[str] = []
        if action is Action.CONNECT:
            for lease in self._leases(keys):
                mine = sum(lease.key in held for held in self._held.values())  # before the outage too
                if mine + 1 > math.floor(lease.limit * self.ledger.local_share + 1e-9):
                    events.append(
                        Rejected(at=now, action=action, conn_id=conn_id, why="connections", retry_after=wait)
                    )
                    return Decision(False, wait)
                slots.append(lease.key)
        if part is not None and part.fallback is not None:
            d = part.fallback.try_acquire(now, cost, keys=keys)
            if not d.allowed:
                return d
        if action is Action.CONNECT:
            self._held[conn_id] = tuple(slots)
            self.ledger.hold_leases(conn_id, slots)  # re-asserted in the ledger once it answers again
        return ALLOWED

    # Introspection ----------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        """Units granted and discarded unspent across blocks, tickets pending, leases held."""
        return {
            "granted": sum(b.granted for b in self._blocks.values()),
            "wasted": sum(b.wasted for b in self._blocks.values()),
            "pending": sum(not t.done for t in self._tickets.values()),
            "leases": len(self._held),
        }


def decide(
    local: RateLimiter,
    shared: SharedPart | None,
    action: Action,
    conn_id: str,
    keys: Mapping[Scope, Hashable],
    now: float,
    cost: float,
    events: list[RateLimitEvent],
) -> Decision:
    """All or nothing: the local rules checked, the shared ones spent, then the local ones counted."""
    if shared is None:
        return local.try_acquire(now, cost, keys=keys)
    d = local.check(now, cost, keys=keys)
    if d.allowed:
        d = shared.spend(action, conn_id, keys, now, cost, events)
        if d.allowed:
            local.commit(now, cost, keys=keys)
    return d


def charge(
    local: RateLimiter,
    shared: SharedPart | None,
    action: Action,
    conn_id: str,
    keys: Mapping[Scope, Hashable],
    now: float,
    cost: float,
) -> None:
    """Count ``cost`` already spent (a frame on the wire) against local and shared rules alike."""
    local.commit(now, cost, keys=keys)
    if shared is not None:
        shared.spend(action, conn_id, keys, now, cost, [], force=True)


def _running() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
