"""Shared state and plumbing of :class:`rxws.WebSocketClient`, split by concern.

The client is one object assembled from mixins that share the attributes declared here:
:mod:`rxws._lifecycle` (connect, the retried session, drops, close), :mod:`rxws._outbound`
(sending, requests, deadlines, the rate limiter on the way out), :mod:`rxws._watching` (topics,
subscriptions, restore after reconnect, gaps) and :mod:`rxws._heartbeat` (pings and deadlines),
with the public API and the inbound dispatch in :mod:`rxws.client`. This module holds the marshalling
helpers they all use: run on the client's loop, schedule, emit an event, change state.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from reactivex import abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import BehaviorSubject, Subject

from rxws._command import CommandResult
from rxws._subject import FastSubject
from rxws._time import clock_of
from rxws.core.correlation import IdGenerator, PendingTable
from rxws.core.routing import Router
from rxws.core.sequence import SequenceTracker
from rxws.core.state import ConnectionState, StateMachine
from rxws.core.subscriptions import SubscriptionRegistry
from rxws.events import DecodeFailed, Event, ObserverFailed, UnroutedMessage
from rxws.exceptions import NotConnected, UsageError, VenueError
from rxws.protocols.base import VenueProtocol
from rxws.ratelimit.events import RateLimitEvent, ViolationReported
from rxws.ratelimit.venue import WebSocketRateLimiter
from rxws.reconnect import ReconnectPolicy
from rxws.transport.base import Frame, Link, LinkOptions, Transport

__all__ = ["ClientStats"]

log = logging.getLogger("rxws.client")


class ClientStats:
    """Counters of everything the client did not deliver the ordinary way — nothing lost uncounted."""

    __slots__ = (
        "decode_failures",
        "frames_in",
        "frames_out",
        "late_replies",
        "observer_failures",
        "outbound_dropped",
        "unknown_replies",
        "unrouted",
    )

    def __init__(self) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.decode_failures = 0
        self.unrouted = 0
        self.late_replies = 0
        self.unknown_replies = 0
        self.observer_failures = 0
        self.outbound_dropped = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"ClientStats({self.as_dict()})"


class _Cancel(abc.DisposableBase):
    """A loop timer handle seen as a disposable."""

    __slots__ = ("_handle",)

    def __init__(self, handle: asyncio.Handle) -> None:
        self._handle = handle

    def dispose(self) -> None:
        self._handle.cancel()


class _Pending:
    """One request waiting for its reply."""

    __slots__ = ("kind", "result", "timeout", "topics")

    def __init__(
        self,
        kind: str,
        result: CommandResult[Any] | None,
        timeout: float,
        topics: Sequence[str] = (),
    ) -> None:
        self.kind = kind
        self.result = result
        self.timeout = timeout
        self.topics = topics


class _ClientBase:
    """Attributes every part of the client shares, and the helpers that move work onto its loop."""

    # Configuration
    url: str
    protocol: VenueProtocol
    name: str
    stats: ClientStats
    _transport: Transport
    _options: LinkOptions
    _policy: ReconnectPolicy | None
    _limiter: WebSocketRateLimiter | None
    _rate_events: Subject[RateLimitEvent]
    _limiter_unlisten: Callable[[], None] | None
    _conn_held: bool
    _max_connect_wait: float
    _request_timeout: float
    _subscribe_timeout: float
    _close_timeout: float
    _max_in_flight: int
    _max_outbound_queue: int
    _keep_outbound: bool
    _next_id: IdGenerator
    # Loop and scheduler binding
    _scheduler: abc.SchedulerBase | None
    _loop: asyncio.AbstractEventLoop | None
    _owner: int | None
    _now: Callable[[], float]
    # Core state
    _sm: StateMachine
    _pending: PendingTable[_Pending]
    _router: Router
    _route: Callable[[Hashable], Callable[[Any], None] | None]
    _registry: SubscriptionRegistry
    _tracker: SequenceTracker | None
    _topics: dict[str, FastSubject[Any]]
    # Streams
    _state_subject: BehaviorSubject[ConnectionState]
    _events_subject: Subject[Event]
    _messages: FastSubject[Any]
    # Connection
    _link: Link | None
    _conn_id: str
    _closed: bool
    _timers: CompositeDisposable
    _lifecycle: SerialDisposable
    _lifecycle_live: bool
    # Outbound
    _outq: deque[tuple[Frame, CommandResult[None] | None, Hashable]]
    _flush_timer: SerialDisposable
    _deadline_timer: SerialDisposable
    _armed_at: float | None
    # Subscriptions
    _sub_request: dict[str, Hashable]
    _unsub_request: dict[str, Hashable]
    _sub_flush_scheduled: bool
    _restoring: set[str] | None
    _restored: tuple[list[str], list[str]]

    if TYPE_CHECKING:  # defined by the mixins and the client; declared for each other

        def _reconnect_pending_possible(self) -> bool: ...
        def _write(
            self, frame: Frame, done: CommandResult[None] | None, request_id: Hashable = None
        ) -> None: ...
        def _expect(self, request_id: Hashable, entry: _Pending) -> None: ...
        def _subscribed(self, topics: Sequence[str], error: Exception | None) -> None: ...
        def _unsubscribed(self, topics: Sequence[str], error: VenueError | None) -> None: ...

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._owner = threading.get_ident()
        if self._scheduler is None:
            self._scheduler = AsyncIOScheduler(loop=loop)
            self._now = clock_of(self._scheduler)

    def _run(self, fn: Callable[[], None], result: CommandResult[Any] | None) -> None:
        """Run ``fn`` on the client's loop: inline when already there, else marshalled."""
        if self._owner == threading.get_ident():  # the usual case: called on the client's loop
            try:
                fn()
            except Exception as exc:
                if result is None:
                    raise
                result.set_error(exc)
            return
        if self._scheduler is None:
            try:
                self._bind(asyncio.get_running_loop())
            except RuntimeError:
                error = UsageError("no event loop: call this from a running loop, or pass scheduler=")
                if result is None:
                    raise error from None
                result.set_error(error)
                return
        loop = self._loop
        if loop is None or self._owner is None or self._owner == threading.get_ident():
            if self._owner is None and loop is not None:
                self._owner = threading.get_ident()
            self._guard(fn, result)
        elif loop.is_closed():
            error = NotConnected("the client's event loop is closed")
            if result is not None:
                result.set_error(error)
            # a disposal after the loop is gone has nothing left to undo
        else:
            loop.call_soon_threadsafe(self._guard, fn, result)

    def _guard(self, fn: Callable[[], None], result: CommandResult[Any] | None) -> None:
        try:
            fn()
        except Exception as exc:
            if result is None:
                raise
            result.set_error(exc)

    @property
    def _sched(self) -> abc.SchedulerBase:
        assert self._scheduler is not None
        return self._scheduler

    def _after(self, seconds: float, fn: Callable[[], None]) -> abc.DisposableBase:
        """Run ``fn`` on the scheduler after ``seconds`` (0: on the next tick)."""
        loop = self._loop
        if loop is not None and isinstance(self._scheduler, AsyncIOScheduler):
            # The hot path (a timer per request): the loop's own timer, without Rx wrappers.
            handle = loop.call_later(seconds, fn) if seconds > 0 else loop.call_soon(fn)
            return _Cancel(handle)

        def action(_s: abc.SchedulerBase, _st: Any = None) -> None:
            fn()

        if seconds <= 0:
            return self._sched.schedule(action)
        return self._sched.schedule_relative(seconds, action)

    # Rate limiting glue -------------------------------------------------------------------------
    def _emit_rate(self, event: RateLimitEvent) -> None:
        self._rate_events.on_next(event)

    def _violation(self, signal: str, retry_after: float | None = None) -> None:
        """The venue said "too many": the limiter starts its penalty (or, without one, an event)."""
        limiter = self._limiter
        if limiter is None:
            self._emit_rate(ViolationReported(at=self._now(), conn_id=self._conn_id, signal=signal))
            return
        limiter.report_violation(self._conn_id, signal, self._now(), retry_after)

    def _check_rate_signal(self, message: Any) -> None:
        signal = self.protocol.rate_limit_signal(message)
        if signal is not None:
            self._violation(signal)

    def _penalty_remaining(self) -> float:
        remaining = getattr(self._limiter, "penalty_remaining", None)
        return float(remaining(self._conn_id, self._now())) if remaining is not None else 0.0

    def _release_connection(self) -> None:
        if self._conn_held and self._limiter is not None:
            self._conn_held = False
            self._limiter.release_connection(self._conn_id, self._now())

    def _emit(self, event: Event) -> None:
        self._events_subject.on_next(event)

    def _set_state(self, target: ConnectionState) -> None:
        if self._sm.state is target:
            return
        self._sm.to(target)
        self._state_subject.on_next(target)

    def _observer_failed(self, topic: str | None) -> Callable[[BaseException], None]:
        def report(exc: BaseException) -> None:
            self.stats.observer_failures += 1
            log.warning("observer of %s raised %r; isolated", topic or "messages", exc)
            self._emit(ObserverFailed(at=self._now(), topic=topic, error=f"{type(exc).__name__}: {exc}"))

        return report

    def _decode_failed(self, detail: str, frame: Frame, topic: str | None = None) -> None:
        self.stats.decode_failures += 1
        sample = frame[:80] if isinstance(frame, str) else repr(frame[:80])
        self._emit(DecodeFailed(at=self._now(), detail=detail, topic=topic, sample=sample))

    def _unrouted(self, topic: Any, message: Any) -> None:
        self.stats.unrouted += 1
        why = "no topic" if topic is None else "nobody watches this topic"
        self._emit(UnroutedMessage(at=self._now(), topic=None if topic is None else str(topic), why=why))


def _zero() -> float:
    return 0.0


def _plain(value: Hashable) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)
