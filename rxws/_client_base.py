"""What every part of one :class:`rxws.WebSocketClient` shares: :class:`ClientContext`.

The client is composed of parts (built and wired in :mod:`rxws._assembly`) that each own their
state — :mod:`rxws._lifecycle` (the state machine, connect, drops, close), :mod:`rxws._requests`
(the pending table and its deadlines), :mod:`rxws._watching` (topics, the registry, the router,
gaps) and one :class:`~rxws._session.Session` per connection (:mod:`rxws._session`, with its
opening, its writer and its heartbeat). They meet only through method calls, and share this context: the client's name, its
dialect, its counters, its clock and loop, and the event streams everything reports on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxws._command import CommandResult
from rxws._replay import ReplayStream
from rxws._subject import FastSubject
from rxws._time import clock_of
from rxws.events import DecodeFailed, Event, InternalError, ObserverFailed
from rxws.exceptions import NotConnected, UsageError
from rxws.protocols.base import VenueProtocol
from rxws.ratelimit.events import RateLimitEvent
from rxws.ratelimit.venue import WebSocketRateLimiter
from rxws.transport.base import Frame

__all__ = ["ClientContext", "ClientStats"]

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

    def _repr_html_(self) -> str:
        from rxws._display import stats_html  # (the display imports what it shows: not at load)

        return stats_html(self)


class _Cancel(abc.DisposableBase):
    """A loop timer handle seen as a disposable."""

    __slots__ = ("_handle",)

    def __init__(self, handle: asyncio.Handle) -> None:
        self._handle = handle

    def dispose(self) -> None:
        self._handle.cancel()


class _Pending:
    """One request waiting for its reply."""

    __slots__ = ("kind", "parts", "result", "timeout", "topics")

    def __init__(
        self,
        kind: str,
        result: CommandResult[Any] | None,
        timeout: float,
        topics: Sequence[str] = (),
        parts: ReplayStream[Any] | None = None,
    ) -> None:
        self.kind = kind
        self.result = result
        self.timeout = timeout
        self.topics = topics
        self.parts = parts  # request(..., stream=True): every part of a multi-frame reply


class ClientContext:
    """The client's name, dialect, counters, clock, loop binding and event streams.

    One per client, shared by its parts (each of which owns the rest of its own state). It
    decides nothing about connections: it runs work on the client's loop, schedules timers on the
    client's scheduler, and delivers events with every observer isolated.
    """

    def __init__(
        self,
        name: str,
        protocol: VenueProtocol,
        scheduler: abc.SchedulerBase | None,
        limiter: WebSocketRateLimiter | None,
    ) -> None:
        self.name = name
        self.protocol = protocol
        self.limiter = limiter
        self.stats = ClientStats()
        self.scheduler: abc.SchedulerBase | None = scheduler
        self.loop: asyncio.AbstractEventLoop | None = None
        self.owner: int | None = None
        if isinstance(scheduler, AsyncIOScheduler):
            self.loop = scheduler._loop
        elif scheduler is None:
            with contextlib.suppress(RuntimeError):
                self.bind(asyncio.get_running_loop())
        self.now: Callable[[], float] = clock_of(self.scheduler) if self.scheduler else _zero
        # Every stream isolates its observers: one that raises is reported (ObserverFailed, a
        # WARNING log, stats.observer_failures) and the client and the other observers go on.
        self._reporting_events_failure = False
        self.events: FastSubject[Event] = FastSubject(self.observer_failed(None, "events"))
        self.rate_events: FastSubject[RateLimitEvent] = FastSubject(
            self.observer_failed(None, "rate_limit_events")
        )
        # Instrumentation sinks (rxws.metrics.ClientInstrumentation): the inbound path checks this
        # tuple's truth once per frame, so with none attached it costs nothing more.
        self.instruments: tuple[Any, ...] = ()
        self._instrument_failed = self.observer_failed(None, "instrumentation")

    # Loop binding and scheduling ----------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to ``loop`` (the first command's), with an asyncio scheduler unless one was given."""
        self.loop = loop
        self.owner = threading.get_ident()
        if self.scheduler is None:
            self.scheduler = AsyncIOScheduler(loop=loop)
            self.now = clock_of(self.scheduler)

    def run(self, fn: Callable[[], None], result: CommandResult[Any] | None) -> None:
        """Run ``fn`` on the client's loop: inline when already there, else marshalled."""
        if self.owner == threading.get_ident():  # the usual case: called on the client's loop
            try:
                fn()
            except Exception as exc:
                if result is None:
                    raise
                result.set_error(exc)
            return
        if self.scheduler is None:
            try:
                self.bind(asyncio.get_running_loop())
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
        loop = self.loop
        if loop is None or self.owner is None or self.owner == threading.get_ident():
            if self.owner is None and loop is not None:
                self.owner = threading.get_ident()
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
    def sched(self) -> abc.SchedulerBase:
        """The scheduler (bound by now)."""
        assert self.scheduler is not None
        return self.scheduler

    def after(self, seconds: float, fn: Callable[[], None]) -> abc.DisposableBase:
        """Run ``fn`` on the scheduler after ``seconds`` (0: on the next tick)."""
        loop = self.loop
        if loop is not None and isinstance(self.scheduler, AsyncIOScheduler):
            # The hot path (a timer per request): the loop's own timer, without Rx wrappers.
            handle = loop.call_later(seconds, fn) if seconds > 0 else loop.call_soon(fn)
            return _Cancel(handle)

        def action(_s: abc.SchedulerBase, _st: Any = None) -> None:
            fn()

        if seconds <= 0:
            return self.sched.schedule(action)
        return self.sched.schedule_relative(seconds, action)

    # Instrumentation -------------------------------------------------------------------------------
    def add_instrument(self, sink: Any) -> abc.DisposableBase:
        """Call ``sink.on_message`` per inbound frame and ``sink.on_request_done`` per request end.

        Raises:
            UsageError: ``sink`` lacks one of the two methods.
        """
        for method in ("on_message", "on_request_done"):
            if not callable(getattr(sink, method, None)):
                raise UsageError(f"an instrumentation sink needs a callable {method}(), got {sink!r}")
        self.instruments = (*self.instruments, sink)

        def remove() -> None:
            self.instruments = tuple(s for s in self.instruments if s is not sink)

        return Disposable(remove)

    def frame_seen(self, frame: Frame, topic: Any, message: Any) -> None:
        """One decoded inbound frame: its topic (data only, else None), size in bytes, message."""
        nbytes = len(frame) if isinstance(frame, bytes) or frame.isascii() else len(frame.encode())
        for sink in self.instruments:
            try:
                sink.on_message(topic, nbytes, message)
            except Exception as exc:  # isolated like an observer: counted, logged, ObserverFailed
                self._instrument_failed(exc)

    def request_done(self, method: str, seconds: float, outcome: str) -> None:
        """A request ended ``seconds`` after ``request()`` was called, with ``outcome``."""
        for sink in self.instruments:
            try:
                sink.on_request_done(method, seconds, outcome)
            except Exception as exc:
                self._instrument_failed(exc)

    # Reporting -----------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Deliver ``event`` on ``client.events``."""
        self.events.on_next(event)

    def emit_rate(self, event: RateLimitEvent) -> None:
        """Deliver ``event`` on ``client.rate_limit_events``."""
        self.rate_events.on_next(event)

    def observer_failed(self, topic: str | None, stream: str = "topic") -> Callable[[BaseException], None]:
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
                at=self.now(), topic=topic, error=f"{type(exc).__name__}: {exc}", stream=stream
            )
            loop, owner = self.loop, self.owner
            if loop is not None and owner is not None and owner != threading.get_ident():
                with contextlib.suppress(RuntimeError):  # a closed loop: the log above is all there is
                    loop.call_soon_threadsafe(self._emit_observer_failed, event)
                return
            self._emit_observer_failed(event)

        return report

    def _emit_observer_failed(self, event: Event) -> None:
        if self._reporting_events_failure:
            self.emit(event)
            return
        self._reporting_events_failure = True
        try:
            self.emit(event)
        finally:
            self._reporting_events_failure = False

    def internal_error(self, error: Exception, frame: Frame) -> str | None:
        """An exception escaped the handling of one inbound frame: make it visible; say what follows.

        Every such exception is counted (``stats.internal_errors``), logged at WARNING with its
        traceback and reported as :class:`~rxws.events.InternalError`. What follows depends on
        what raised, and the return value says it:

        * the venue dialect (a method of ``protocol`` is on the traceback): the frame is bad for
          this dialect, the client's own state was not touched. The frame is skipped and the
          connection goes on with the next one (None is returned). A reply whose request had
          already been taken from the pending table has that request failed first.
        * rxws's own bookkeeping: its state (pending table, registry, sequence records) may be
          half-updated and can no longer be trusted. The detail is returned: the caller closes
          the connection with 1011 and handles it as a drop
          (``Disconnected(reason=INTERNAL_ERROR, code=1011)``, pending work failed, a
          reconnection proposed if the policy allows; a fresh connection starts clean).
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
        self.emit(InternalError(at=self.now(), where=where, error=text[:200], sample=sample))
        return None if by_protocol else f"internal error in {where}: {text}"[:200]

    def decode_failed(self, detail: str, frame: Frame, topic: str | None = None) -> None:
        """Count and report a frame (or a message for ``topic``) that could not be read."""
        self.stats.decode_failures += 1
        sample = frame[:80] if isinstance(frame, str) else repr(frame[:80])
        self.emit(DecodeFailed(at=self.now(), detail=detail, topic=topic, sample=sample))


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
