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
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from reactivex import abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxws._command import CommandResult
from rxws._subject import FastBehaviorSubject, FastSubject
from rxws._time import clock_of
from rxws.core.correlation import IdGenerator, PendingTable
from rxws.core.routing import Router
from rxws.core.sequence import SequenceTracker
from rxws.core.state import ConnectionState, StateMachine
from rxws.core.subscriptions import SubscriptionRegistry
from rxws.events import DecodeFailed, Event, InternalError, ObserverFailed, UnroutedMessage
from rxws.exceptions import NotConnected, UsageError, VenueError
from rxws.protocols.base import VenueProtocol
from rxws.ratelimit.events import RateLimitEvent, ViolationReported
from rxws.ratelimit.venue import WebSocketRateLimiter
from rxws.reconnect import ReconnectPolicy
from rxws.transport.base import Frame, Link, LinkOptions, Transport

__all__ = ["ClientStats"]

log = logging.getLogger("rxws.client")


class ClientStats:
    """Counters of everything the client did not deliver the ordinary way — nothing lost uncounted.

    ``internal_errors`` counts inbound frames whose handling raised (see
    :class:`~rxws.events.InternalError`); ``requests_cancelled`` counts requests withdrawn because
    every waiter gave up (the awaiting task was cancelled).
    """

    __slots__ = (
        "decode_failures",
        "frames_in",
        "frames_out",
        "internal_errors",
        "late_replies",
        "observer_failures",
        "outbound_dropped",
        "requests_cancelled",
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
        self.internal_errors = 0
        self.requests_cancelled = 0

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
    _rate_events: FastSubject[RateLimitEvent]
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
    _state_subject: FastBehaviorSubject[ConnectionState]
    _events_subject: FastSubject[Event]
    _messages: FastSubject[Any]
    _reporting_events_failure: bool
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
        def _untrusted(self, detail: str) -> None: ...
        def _request_abandoned(self, request_id: Hashable, result: CommandResult[Any]) -> None: ...

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
                what = f"{result.name}()" if result is not None else "this call"
                error = UsageError(
                    f"{what}: no running asyncio loop and no scheduler: call it from a running loop "
                    "(inside async code), or pass scheduler= to the client"
                )
                if result is None:
                    raise error from None
                log.warning("%s: %s", self.name, error)  # visible even if nobody looks at the result
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
        self._publish_state()  # a state moved to but not told yet (a drop's bookkeeping) goes first
        self._sm.to(target)
        self._state_subject.on_next(target)

    def _publish_state(self) -> None:
        """Tell ``state`` observers the current state, unless they already saw it.

        Used after a drop's bookkeeping, which moves the state machine first and notifies later.
        """
        state = self._sm.state
        if self._state_subject.value is not state:
            self._state_subject.on_next(state)

    def _observer_failed(self, topic: str | None, stream: str = "topic") -> Callable[[BaseException], None]:
        """The isolation report for one stream's observers: count, WARNING log, ObserverFailed.

        The event goes out on the client's loop (a report from another thread, e.g. a rate
        limiter shared with a client on another loop, is marshalled there). An observer of
        ``events`` that raises while ``ObserverFailed`` itself is being delivered is logged and
        counted only: the report cannot recurse.
        """
        label = f"topic {topic!r}" if stream == "topic" else stream

        def report(exc: BaseException) -> None:
            self.stats.observer_failures += 1
            log.warning("%s: an observer of %s raised %r; isolated", self.name, label, exc, exc_info=exc)
            if self._reporting_events_failure and stream == "events":
                return  # raised while ObserverFailed itself was delivered: logged, counted, done
            event = ObserverFailed(
                at=self._now(), topic=topic, error=f"{type(exc).__name__}: {exc}", stream=stream
            )
            loop, owner = self._loop, self._owner
            if loop is not None and owner is not None and owner != threading.get_ident():
                with contextlib.suppress(RuntimeError):  # a closed loop: the log above is all there is
                    loop.call_soon_threadsafe(self._emit_observer_failed, event)
                return
            self._emit_observer_failed(event)

        return report

    def _emit_observer_failed(self, event: Event) -> None:
        if self._reporting_events_failure:
            self._emit(event)
            return
        self._reporting_events_failure = True
        try:
            self._emit(event)
        finally:
            self._reporting_events_failure = False

    def _internal_error(self, error: Exception, frame: Frame) -> None:
        """An exception escaped the handling of one inbound frame: make it visible, then decide.

        Every such exception is counted (``stats.internal_errors``), logged at WARNING with its
        traceback and reported as :class:`~rxws.events.InternalError`. What follows depends on
        what raised:

        * the venue dialect (a method of ``self.protocol`` is on the traceback): the frame is
          bad for this dialect, the client's own state was not touched. The frame is skipped
          and the connection goes on with the next one. (A reply whose request had already
          been taken from the pending table has that request failed first: see ``_on_reply``.)
        * rxws's own bookkeeping: its state (pending table, registry, sequence records) may be
          half-updated and can no longer be trusted. The connection is closed with 1011 and
          handled as a drop: ``Disconnected(reason=INTERNAL_ERROR, code=1011)``, pending work
          failed, and a reconnection proposed if the policy allows (a fresh connection starts
          from a clean state).
        """
        self.stats.internal_errors += 1
        where, by_protocol = _where(error, self.protocol)
        sample = frame[:80] if isinstance(frame, str) else repr(frame[:80])
        text = f"{type(error).__name__}: {error}"
        log.warning(
            "%s: %s raised on an inbound frame (%s)",
            self.name,
            where,
            "frame skipped" if by_protocol else "closing with 1011",
            exc_info=error,
        )
        self._emit(InternalError(at=self._now(), where=where, error=text[:200], sample=sample))
        if not by_protocol:
            self._untrusted(f"internal error in {where}: {text}"[:200])

    def _decode_failed(self, detail: str, frame: Frame, topic: str | None = None) -> None:
        self.stats.decode_failures += 1
        sample = frame[:80] if isinstance(frame, str) else repr(frame[:80])
        self._emit(DecodeFailed(at=self._now(), detail=detail, topic=topic, sample=sample))

    def _unrouted(self, topic: Any, message: Any) -> None:
        self.stats.unrouted += 1
        why = "no topic" if topic is None else "nobody watches this topic"
        self._emit(UnroutedMessage(at=self._now(), topic=None if topic is None else str(topic), why=why))


def _where(error: BaseException, protocol: object) -> tuple[str, bool]:
    """Which code raised ``error``: the outermost method of ``protocol`` on its traceback, else
    the innermost rxws function. Only called on the error path."""
    tb = error.__traceback__
    innermost = "unknown"
    while tb is not None:
        code = tb.tb_frame.f_code
        if tb.tb_frame.f_locals.get("self") is protocol:
            return f"protocol.{code.co_name}", True
        innermost = code.co_name
        tb = tb.tb_next
    return f"client.{innermost}", False


def _zero() -> float:
    return 0.0


def _plain(value: Hashable) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)
