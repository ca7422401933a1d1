"""What a client asks a venue's limiter, and the rule-built limiter that answers.

:class:`WebSocketRateLimiter` is the protocol the client calls: one decision per connection
attempt, per outbound frame and per subscription, plus the release of what a connection held and
the venue's "too many" complaints. :class:`VenueRateLimiter` implements it from rules, and the
presets (:mod:`rxws.ratelimit.presets`) are ``VenueRateLimiter`` instances filled in per venue.

A limiter is meant to be shared: every client behind the same IP (or account) should use the same
instance, so their connections and messages count against one budget. Public methods are
thread-safe; events are delivered to listeners after the internal lock is released.

Several processes (or hosts) behind one budget share it through a
:class:`~rxws.ratelimit.fleet.FleetLedger` (``ledger=``): every rule whose scope is in
``shared_scopes`` and every concurrent-connection cap of those scopes is then decided in Redis
(:mod:`rxws.ratelimit._shared` says how, without ever waiting for Redis on the caller's thread),
and :meth:`VenueRateLimiter.acquire_connect_async` awaits the ledger's answer for a connection.
Connection ids must be unique: take them from :meth:`VenueRateLimiter.connection_id`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from rxws.ratelimit._interface import Listener, PenaltyStore, WebSocketRateLimiter
from rxws.ratelimit._penalties import Penalties
from rxws.ratelimit._shared import PENDING, SharedPart, charge, decide, shareable
from rxws.ratelimit.base import ALLOWED, Action, Algorithm, Decision, Scope
from rxws.ratelimit.events import (
    ConnectionReleased,
    RateLimitEvent,
    Rejected,
    ViolationReported,
)
from rxws.ratelimit.fleet import FleetLedger
from rxws.ratelimit.headroom import Headroom
from rxws.ratelimit.identity import connection_id as _new_id
from rxws.ratelimit.limiter import RateLimiter, Rule
from rxws.ratelimit.penalty import PenaltyBox, PenaltyPolicy

__all__ = ["Listener", "PenaltyStore", "VenueRateLimiter", "WebSocketRateLimiter"]

_INF = math.inf


@dataclass(slots=True)
class _Conn:
    keys: dict[Scope, Hashable]
    open: bool = False
    topics: int = 0
    slots: list[tuple[Scope, Hashable]] = field(default_factory=list)


def _rules(items: Iterable[Rule | Algorithm], scope: Scope, headroom: Headroom | None) -> tuple[Rule, ...]:
    rules = (r if isinstance(r, Rule) else Rule(r, scope) for r in items)
    return tuple(rules if headroom is None else map(headroom.rule, rules))


class VenueRateLimiter:
    """A :class:`WebSocketRateLimiter` built from rules.

    Each connection id belongs to an identity: the ``ip``, ``uid`` and ``product`` given here
    (or overridden per connection in :meth:`acquire_connect`). Rules of a scope whose key is None
    (e.g. ``Scope.UID`` without a ``uid``) do not apply.

    Args:
        ip: the source IP these connections share (any label; one limiter per IP).
        uid: the account / sub-account, when authenticated.
        product: the product or market (e.g. ``"spot"``), for per-product limits.
        connect: rules for connection attempts; a bare algorithm counts per IP.
        max_connections: the most connections open at once, per scope (e.g. ``{Scope.IP: 32}``).
        message: rules for outbound frames; a bare algorithm counts per connection.
        subscribe: rules for subscribe requests (cost 1 each); a bare algorithm counts per
            connection.
        max_topics_per_connection: the most topics one connection may hold.
        unsubscribe_counts: also count each :meth:`release_subscriptions` against the subscribe
            rules (OKX counts subscribe, unsubscribe and login together).
        penalty: how long penalties last.
        penalty_store: where penalties are kept, e.g. a shared
            :class:`~rxws.ratelimit.redis_store.RedisPenaltyBox` (its policy then applies; do not
            also pass ``penalty``). Default: a local :class:`~rxws.ratelimit.PenaltyBox`.
        penalty_scope: whose budget a violation penalises (default the IP: venues ban IPs).
        venue: the dialect these limits belong to, as a protocol's ``name`` (``"binance"``,
            ``"okx"``, ...): a client pairing this limiter with another dialect refuses at
            construction (:func:`rxws.ratelimit.pairing.check_pairing`). None (the default for a
            hand-built limiter) fits any dialect; presets set it, and take ``venue=None`` to
            lend their limits to a custom or mock dialect on purpose.
        headroom: a :class:`~rxws.ratelimit.headroom.Headroom` taken from every rule (windows
            lengthened, counts lowered); None or ``Headroom()`` keeps the rules as given.
        name: a label for ``repr`` (the venue's name for presets).
        sweep_every: seconds between sweeps that forget idle keys.

    Raises:
        ValueError: on an invalid rule or cap.
    """

    def __init__(
        self,
        *,
        # Identity
        ip: str = "local",
        uid: str | None = None,
        product: str | None = None,
        # Connections
        connect: Iterable[Rule | Algorithm] = (),
        max_connections: Mapping[Scope, int] | None = None,
        # Messages
        message: Iterable[Rule | Algorithm] = (),
        # Subscriptions
        subscribe: Iterable[Rule | Algorithm] = (),
        max_topics_per_connection: int | None = None,
        unsubscribe_counts: bool = False,
        # Penalties
        penalty: PenaltyPolicy | None = None,
        penalty_store: PenaltyStore | None = None,
        penalty_scope: Scope = Scope.IP,
        # Sharing
        ledger: FleetLedger | None = None,
        shared_scopes: Iterable[Scope] = (Scope.GLOBAL, Scope.IP, Scope.UID, Scope.PRODUCT),
        # Safety
        venue: str | None = None,
        headroom: Headroom | None = None,
        # Housekeeping
        name: str = "custom",
        sweep_every: float = 60.0,
    ) -> None:
        self.name = name
        self.venue = venue
        self.headroom = headroom or Headroom()
        self._identity: dict[Scope, Hashable] = {
            Scope.IP: ip,
            Scope.UID: uid,
            Scope.PRODUCT: product,
        }
        rules = {
            Action.CONNECT: _rules(connect, Scope.IP, headroom),
            Action.MESSAGE: _rules(message, Scope.CONNECTION, headroom),
            Action.SUBSCRIBE: _rules(subscribe, Scope.CONNECTION, headroom),
        }
        self._all_rules = rules
        scopes = frozenset(Scope(s) for s in shared_scopes) if ledger is not None else frozenset()
        self.shared_scopes = scopes
        local = {a: tuple(r for r in rs if not shareable(r, scopes)) for a, rs in rules.items()}
        self._connect = RateLimiter(*local[Action.CONNECT], sweep_every=sweep_every)
        self._message = RateLimiter(*local[Action.MESSAGE], sweep_every=sweep_every)
        self._subscribe = RateLimiter(*local[Action.SUBSCRIBE], sweep_every=sweep_every)
        self._max_connections: dict[Scope, int] = {}
        for scope, cap in (max_connections or {}).items():
            if not isinstance(cap, int) or cap < 1:
                raise ValueError(f"max_connections[{scope}] must be an int >= 1, got {cap!r}")
            self._max_connections[Scope(scope)] = cap
        if max_topics_per_connection is not None and (
            not isinstance(max_topics_per_connection, int) or max_topics_per_connection < 1
        ):
            raise ValueError(
                f"max_topics_per_connection must be an int >= 1, got {max_topics_per_connection!r}"
            )
        self.max_topics_per_connection = max_topics_per_connection
        self._unsubscribe_counts = unsubscribe_counts
        if penalty_store is not None and penalty is not None:
            raise ValueError("pass the PenaltyPolicy to the penalty_store, not also as penalty=")
        self._penalties: PenaltyStore = penalty_store if penalty_store is not None else PenaltyBox(penalty)
        self._pen = Penalties(self._penalties, penalty_scope)
        self._conns: dict[str, _Conn] = {}
        self._open: dict[tuple[Scope, Hashable], int] = {}
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.RLock()
        self.ledger = ledger
        self._shared: SharedPart | None = None
        self._local_caps = dict(self._max_connections)
        if ledger is not None:
            shared_rules = {a: tuple(r for r in rs if shareable(r, scopes)) for a, rs in rules.items()}
            caps = {s: c for s, c in self._max_connections.items() if s in scopes}
            self._local_caps = {s: c for s, c in self._max_connections.items() if s not in scopes}
            self._shared = SharedPart(ledger, name, shared_rules, caps, self._lock)
            ledger.add_listener(lambda event: self._emit([event]))

    def connection_id(self, label: str) -> str:
        """A new id for a connection, unique in the process and, with a ledger, in the fleet.

        ``"<label>#<random 64-bit process token>-<n>"``: two clients of one URL (whose names, the
        default label, are equal) get different ids, so per-connection budgets, caps and releases
        follow each connection (:mod:`rxws.ratelimit.identity`).
        """
        return _new_id(label)

    def __repr__(self) -> str:
        return f"VenueRateLimiter(name={self.name!r}, venue={self.venue!r}, ip={self._identity[Scope.IP]!r})"

    # Introspection ---------------------------------------------------------------------------
    @property
    def penalty_policy(self) -> PenaltyPolicy:
        """How long penalties last."""
        return self._penalties.policy

    @property
    def connect_rules(self) -> tuple[Rule, ...]:
        """Rules for connection attempts (shared ones included)."""
        return self._all_rules[Action.CONNECT]

    @property
    def message_rules(self) -> tuple[Rule, ...]:
        """Rules for outbound frames (shared ones included)."""
        return self._all_rules[Action.MESSAGE]

    @property
    def subscribe_rules(self) -> tuple[Rule, ...]:
        """Rules for subscribe requests (shared ones included)."""
        return self._all_rules[Action.SUBSCRIBE]

    def shared_rules(self, action: Action) -> tuple[Rule, ...]:
        """The rules of ``action`` decided by the ledger (empty without one)."""
        return self._shared.rules(Action(action)) if self._shared is not None else ()

    @property
    def max_connections(self) -> Mapping[Scope, int]:
        """Concurrent-connection caps per scope."""
        return dict(self._max_connections)

    def open_connections(self, scope: Scope = Scope.IP, key: Hashable = None) -> int:
        """Connections open for ``key`` of ``scope`` (default: this limiter's own key)."""
        with self._lock:
            if key is None:
                key = self._identity.get(scope)
            return self._open.get((scope, key), 0)

    def topics(self, conn_id: str) -> int:
        """Topics ``conn_id`` currently holds."""
        with self._lock:
            conn = self._conns.get(conn_id)
            return conn.topics if conn else 0

    def penalty_remaining(self, conn_id: str, now: float) -> float:
        """Seconds left of any penalty ``conn_id`` is under (0.0 when none)."""
        with self._lock:
            return self._pen.remaining(self._keys(conn_id), now)

    # Listeners --------------------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn`` with every event; returns a function that removes it (idempotent)."""
        with self._lock:
            self._listeners = (*self._listeners, fn)

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(f for f in self._listeners if f is not fn)

        return remove

    def _emit(self, events: list[RateLimitEvent]) -> None:
        if not events:
            return
        error: BaseException | None = None
        for event in events:
            for fn in self._listeners:
                try:
                    fn(event)
                except Exception as exc:  # every listener still hears every event
                    error = error or exc
        if error is not None:
            raise error

    # Keys -----------------------------------------------------------------------
    def _keys(self, conn_id: str) -> dict[Scope, Hashable]:
        conn = self._conns.get(conn_id)
        if conn is not None:
            return conn.keys
        return {**self._identity, Scope.CONNECTION: conn_id}

    # Connections ------------------------------------------------------------------------------
    def acquire_connect(
        self,
        conn_id: str,
        now: float,
        *,
        ip: str | None = None,
        uid: str | None = None,
        product: str | None = None,
    ) -> Decision:
        """Decide a connection attempt; when allowed, ``conn_id`` is open until released.

        ``ip``, ``uid`` and ``product`` override this limiter's identity for this connection.
        The concurrent-connection cap answers ``retry_after=inf`` (only a release frees a slot).
        """
        events: list[RateLimitEvent] = []
        try:
            with self._lock:
                return self._acquire_connect(conn_id, now, ip, uid, product, events)
        finally:
            self._emit(events)

    async def acquire_connect_async(
        self,
        conn_id: str,
        now: float,
        *,
        ip: str | None = None,
        uid: str | None = None,
        product: str | None = None,
    ) -> Decision:
        """:meth:`acquire_connect`, awaiting the shared ledger's answer instead of asking to retry.

        Without a ledger it answers at once. With one, the wait is bounded by the ledger's
        ``timeout`` (past it the outage policy answers); the event loop is never blocked.
        """
        shared = self._shared
        started = time.monotonic()
        for _ in range(10_000):
            d = self.acquire_connect(
                conn_id, now + (time.monotonic() - started), ip=ip, uid=uid, product=product
            )
            if d is not PENDING or shared is None:
                return d
            await shared.wait(conn_id)
        return d  # pragma: no cover - the ledger answers or times out long before

    def _acquire_connect(
        self,
        conn_id: str,
        now: float,
        ip: str | None,
        uid: str | None,
        product: str | None,
        events: list[RateLimitEvent],
    ) -> Decision:
        conn = self._conns.get(conn_id)
        keys = dict(conn.keys) if conn else {**self._identity, Scope.CONNECTION: conn_id}
        for scope, override in ((Scope.IP, ip), (Scope.UID, uid), (Scope.PRODUCT, product)):
            if override is not None:
                keys[scope] = override
        denied = self._pen.check(Action.CONNECT, conn_id, keys, now, events)
        if denied is not None:
            return denied
        slots: list[tuple[Scope, Hashable]] = []
        if conn is None or not conn.open:
            for scope, cap in self._local_caps.items():
                key = keys.get(scope)
                if key is None and scope is not Scope.GLOBAL:
                    continue
                if self._open.get((scope, key), 0) >= cap:
                    why = "connections"  # only a release frees a slot
                    events.append(
                        Rejected(at=now, action=Action.CONNECT, conn_id=conn_id, why=why, retry_after=_INF)
                    )
                    return Decision(False, _INF)
                slots.append((scope, key))
        if self._shared is not None:
            d = self._connect.check(now, keys=keys)
            if d.allowed:
                d = self._shared.connect(conn_id, keys, now, events)
                if not d.allowed:
                    return d
                self._connect.commit(now, keys=keys)
                if conn is None or not conn.open:
                    slots.extend((s, keys.get(s)) for s in self._max_connections if s not in self._local_caps)
        else:
            d = self._connect.try_acquire(now, keys=keys)
        if not d.allowed:
            events.append(
                Rejected(
                    at=now, action=Action.CONNECT, conn_id=conn_id, why="rate", retry_after=d.retry_after
                )
            )
            return d
        if conn is None:
            conn = self._conns[conn_id] = _Conn(keys)
        if not conn.open:
            conn.keys = keys
            conn.open = True
            conn.slots = slots
            for slot in slots:
                self._open[slot] = self._open.get(slot, 0) + 1
        return ALLOWED

    def release_connection(self, conn_id: str, now: float) -> None:
        """Free ``conn_id``'s concurrent slot, topics and per-connection budgets (idempotent)."""
        events: list[RateLimitEvent] = []
        try:
            with self._lock:
                conn = self._conns.pop(conn_id, None)
                if conn is None:
                    return
                for slot in conn.slots:
                    left = self._open.get(slot, 0) - 1
                    if left > 0:
                        self._open[slot] = left
                    else:
                        self._open.pop(slot, None)
                for limiter in (self._message, self._subscribe, self._connect):
                    limiter.forget(Scope.CONNECTION, conn_id)
                if self._shared is not None:
                    self._shared.release(conn_id)
                events.append(ConnectionReleased(at=now, conn_id=conn_id))
        finally:
            self._emit(events)

    # Messages ---------------------------------------------------------------------------------
    def acquire_message(self, conn_id: str, now: float, cost: float = 1.0) -> Decision:
        """Decide one outbound frame of ``cost`` on ``conn_id``.

        A plain rate refusal emits no event: the queue in front (the ``rate_limit`` operator)
        waits and reports ``Throttled``. Penalty refusals emit ``Rejected``.
        """
        events: list[RateLimitEvent] = []
        try:
            with self._lock:
                keys = self._keys(conn_id)
                denied = self._pen.check(Action.MESSAGE, conn_id, keys, now, events)
                if denied is not None:
                    return denied
                return decide(self._message, self._shared, Action.MESSAGE, conn_id, keys, now, cost, events)
        finally:
            if events:
                self._emit(events)

    def charge_message(self, conn_id: str, now: float, cost: float = 1.0) -> None:
        """Count a frame that already went out (e.g. a pong the transport sent by itself).

        Unlike :meth:`acquire_message` it never refuses: the frame is on the wire, so the budget
        must know — the next frames then wait for it.
        """
        with self._lock:
            charge(self._message, self._shared, Action.MESSAGE, conn_id, self._keys(conn_id), now, cost)

    # Subscriptions ----------------------------------------------------------------------------
    def acquire_subscribe(self, conn_id: str, now: float, topics: int) -> Decision:
        """Decide adding ``topics`` topics to ``conn_id`` (one subscribe request).

        Raises:
            ValueError: ``topics`` is negative.
        """
        if topics < 0:
            raise ValueError(f"topics must be >= 0, got {topics!r}")
        events: list[RateLimitEvent] = []
        try:
            with self._lock:
                keys = self._keys(conn_id)
                denied = self._pen.check(Action.SUBSCRIBE, conn_id, keys, now, events)
                if denied is not None:
                    return denied
                conn = self._conns.get(conn_id)
                held = conn.topics if conn else 0
                cap = self.max_topics_per_connection
                if cap is not None and held + topics > cap:
                    events.append(
                        Rejected(
                            at=now, action=Action.SUBSCRIBE, conn_id=conn_id, why="topics", retry_after=_INF
                        )
                    )
                    return Decision(False, _INF)
                d = decide(self._subscribe, self._shared, Action.SUBSCRIBE, conn_id, keys, now, 1.0, events)
                if not d.allowed:
                    if d is not PENDING and not (events and isinstance(events[-1], Rejected)):
                        why, wait = "rate", d.retry_after  # (the ledger says why itself)
                        events.append(
                            Rejected(
                                at=now, action=Action.SUBSCRIBE, conn_id=conn_id, why=why, retry_after=wait
                            )
                        )
                    return d
                if conn is None:
                    conn = self._conns[conn_id] = _Conn(keys)
                conn.topics = held + topics
                return ALLOWED
        finally:
            self._emit(events)

    def release_subscriptions(self, conn_id: str, now: float, topics: int) -> None:
        """``topics`` topics left ``conn_id`` (with ``unsubscribe_counts``, the request counts)."""
        with self._lock:
            conn = self._conns.get(conn_id)
            if conn is not None:
                conn.topics = max(0, conn.topics - topics)
            if self._unsubscribe_counts:
                charge(
                    self._subscribe, self._shared, Action.SUBSCRIBE, conn_id, self._keys(conn_id), now, 1.0
                )

    # Violations -------------------------------------------------------------------------------
    def report_violation(
        self,
        conn_id: str,
        signal: str,
        now: float,
        retry_after: float | None = None,
        *,
        scope: Scope | None = None,
    ) -> float:
        """Start or extend the penalty for ``conn_id``'s key of ``scope`` (default ``penalty_scope``).

        The penalty grows exponentially with repeated violations and is at least ``retry_after``
        when the venue gave one. Returns the seconds from ``now`` until it ends.
        """
        events: list[RateLimitEvent] = [ViolationReported(at=now, conn_id=conn_id, signal=signal)]
        try:
            with self._lock:
                return self._pen.report(self._keys(conn_id), now, retry_after, scope, events)
        finally:
            self._emit(events)
