"""The keepalive runner behind ``client.every(period, action)``.

A :class:`KeepaliveTask` runs ``action`` every ``period`` seconds on a scheduler while a
connected-state observable says ``True`` (Binance listenKey extension every 30 minutes, a Deribit
token refresh). ``action`` may be:

* a plain callable (its return value is ignored unless it is one of the two below);
* an observable factory: a callable returning an ``Observable``, subscribed, and done when it
  completes;
* a coroutine function (or any callable returning an awaitable), run as a task on the event loop
  (the ``loop`` given, else the running one).

Rules: the first run comes one ``period`` after the connection opens (``immediately=True``: at
once); a disconnect stops the timer and cancels a run in flight, a reconnect starts it again; a
tick that finds the previous run still going is skipped (counted in ``skipped``), so runs never
overlap; a run that raises or errors becomes a ``KeepaliveFailed(name, error)`` event and the timer
goes on; disposing the task, or the connected-state observable completing (the client closed),
leaves no timer, subscription or task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from rxws._redact import redact
from rxws._time import clock_of
from rxws.events import Event, KeepaliveFailed

__all__ = ["KeepaliveTask", "every"]


class KeepaliveTask(abc.DisposableBase):
    """A repeating action bound to a connection's lifetime (module docstring); dispose to stop.

    Args:
        period: seconds between runs (> 0).
        action: what to run (module docstring).
        scheduler: the scheduler that times the runs.
        connected: emits whether the connection is usable; runs happen only while ``True``.
        emit: where ``KeepaliveFailed`` events go.
        name: the task's name in events (default: the action's ``__name__``).
        loop: the event loop for coroutine actions (default: the running loop at each run).
        immediately: run once as soon as the connection opens, then every ``period``.
    """

    def __init__(
        self,
        period: float,
        action: Callable[[], Any],
        *,
        scheduler: abc.SchedulerBase,
        connected: Observable[bool],
        emit: Callable[[Event], None],
        name: str | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        immediately: bool = False,
    ) -> None:
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period!r}")
        self.period = period
        self.name = name or getattr(action, "__name__", None) or type(action).__name__
        self.runs = 0
        self.failures = 0
        self.skipped = 0
        self._action = action
        self._scheduler = scheduler
        self._now = clock_of(scheduler)
        self._emit = emit
        self._loop = loop
        self._immediately = immediately
        self._timer: SerialDisposable | None = None
        self._flight: abc.DisposableBase | asyncio.Future[Any] | None = None
        self._disposed = False
        self._watch: abc.DisposableBase | None = None
        watch = connected.pipe(ops.distinct_until_changed()).subscribe(
            on_next=self._on_connected,
            on_error=lambda _exc: self.dispose(),
            on_completed=self.dispose,
            scheduler=scheduler,
        )
        if self._disposed:  # the observable ended while subscribing
            watch.dispose()
        else:
            self._watch = watch

    def __repr__(self) -> str:
        state = "disposed" if self._disposed else "running" if self.active else "paused"
        return f"KeepaliveTask({self.name!r}, every {self.period:g}s, {state}, runs={self.runs})"

    @property
    def active(self) -> bool:
        """Whether the timer runs (connected and not disposed)."""
        return self._timer is not None

    @property
    def in_flight(self) -> bool:
        """Whether a run has started and not yet finished."""
        return self._flight is not None

    @property
    def disposed(self) -> bool:
        """Whether the task was disposed (or its connection observable ended)."""
        return self._disposed

    def dispose(self) -> None:
        """Stop for good: no timer, no subscription and no task is left."""
        if self._disposed:
            return
        self._disposed = True
        self._stop()
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.dispose()

    # Internals --------------------------------------------------------------------------------------
    def _on_connected(self, connected: bool) -> None:
        if self._disposed:
            return
        if not connected:
            self._stop()
            return
        if self._timer is None:
            self._timer = SerialDisposable()
            self._arm()
            if self._immediately:
                self._tick()

    def _arm(self) -> None:
        timer = self._timer
        if timer is not None:
            timer.disposable = self._scheduler.schedule_relative(self.period, self._fire)

    def _fire(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        if self._timer is None or self._disposed:
            return
        self._arm()
        self._tick()

    def _stop(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.dispose()
        flight, self._flight = self._flight, None
        if isinstance(flight, asyncio.Future):
            flight.cancel()
        elif flight is not None:
            flight.dispose()

    def _tick(self) -> None:
        if self._flight is not None:
            self.skipped += 1
            return
        self.runs += 1
        try:
            result = self._action()
        except Exception as exc:
            self._fail(exc)
            return
        if isinstance(result, Observable):
            self._run_observable(result)
        elif inspect.isawaitable(result):
            self._run_awaitable(result)

    def _run_observable(self, source: Observable[Any]) -> None:
        holder = SingleAssignmentDisposable()
        self._flight = holder

        def finish(exc: Exception | None) -> None:
            if self._flight is holder:
                self._flight = None
            if exc is not None:
                self._fail(exc)

        holder.disposable = source.subscribe(
            on_error=finish, on_completed=lambda: finish(None), scheduler=self._scheduler
        )

    def _run_awaitable(self, awaitable: Awaitable[Any]) -> None:
        loop = self._loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
                self._fail(RuntimeError("a coroutine action needs a running event loop (or loop=...)"))
                return
        future = asyncio.ensure_future(awaitable, loop=loop)
        self._flight = future

        def finished(done: asyncio.Future[Any]) -> None:
            if self._flight is done:
                self._flight = None
            if done.cancelled():
                return
            exc = done.exception()
            if exc is not None and isinstance(exc, Exception):
                self._fail(exc)

        future.add_done_callback(finished)

    def _fail(self, exc: Exception) -> None:
        self.failures += 1
        text = f"{type(exc).__name__}: {redact(str(exc))}"[:300]
        with contextlib.suppress(Exception):  # an event sink that fails must not stop the timer
            self._emit(KeepaliveFailed(at=self._now(), name=self.name, error=text))


def every(
    period: float,
    action: Callable[[], Any],
    *,
    scheduler: abc.SchedulerBase,
    connected: Observable[bool],
    emit: Callable[[Event], None],
    name: str | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    immediately: bool = False,
) -> KeepaliveTask:
    """Run ``action`` every ``period`` seconds while ``connected`` says ``True``; see
    :class:`KeepaliveTask`. Returns the task (a disposable)."""
    return KeepaliveTask(
        period,
        action,
        scheduler=scheduler,
        connected=connected,
        emit=emit,
        name=name,
        loop=loop,
        immediately=immediately,
    )
