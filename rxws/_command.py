"""The result of an eager command: a single-value, replaying, awaitable observable.

``connect()``, ``send()``, ``request()`` and ``close()`` act when called and return a
:class:`CommandResult`. It replays its one value (or error) to every subscriber, late ones too,
and ``await`` on it resolves on the running loop without a round trip through the scheduler.

Host code cannot break the command: an observer that raises while being given the value (or
error) is logged at WARNING with its traceback, and the other observers and awaiters still get
it. A command whose every waiter gave up — the awaiting task was cancelled (``task.cancel()``,
``asyncio.wait_for`` timing out) and nobody else observes it — calls its ``on_abandon`` hook
(a request uses it to withdraw itself: see ``WebSocketClient.request``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

__all__ = ["CommandResult"]

T = TypeVar("T")
log = logging.getLogger("rxws.client")

_PENDING, _DONE, _FAILED = 0, 1, 2
_LOCK = threading.RLock()


class CommandResult(Observable[T], Generic[T]):
    """A single-value result that replays to late subscribers and can be awaited."""

    def __init__(self, name: str = "command", detail: str = "") -> None:
        # Not Observable.__init__: it makes an RLock per instance, and commands are hot. One
        # module lock guards every result; holders never call out while holding it.
        self.lock = _LOCK
        self._subscribe = None
        self._name = name
        self._detail = detail
        self._status = _PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._observers: list[abc.ObserverBase[T]] = []
        self._futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[T]]] = []
        self._lock = _LOCK
        self._observed = False
        self._on_abandon: Callable[[], None] | None = None

    @property
    def name(self) -> str:
        """The command's name (``"connect"``, ``"request"``, ...)."""
        return self._name

    @property
    def done(self) -> bool:
        return self._status != _PENDING

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        with self._lock:
            self._observed = True
            if self._status == _PENDING:
                self._observers.append(observer)

                def dispose() -> None:
                    with self._lock:
                        if observer in self._observers:
                            self._observers.remove(observer)

                return Disposable(dispose)
        self._deliver(observer)  # the subscriber's own call: its exception is its own
        return Disposable()

    def on_abandon(self, hook: Callable[[], None] | None) -> None:
        """Call ``hook`` (once, on the awaiting loop) if every waiter gives up before the result.

        A waiter gives up when its awaiting task is cancelled; Rx subscribers count as waiting
        until they dispose. Not called once the result is set.
        """
        self._on_abandon = hook

    def _replay(self, observer: abc.ObserverBase[T]) -> None:
        try:
            self._deliver(observer)
        except Exception:  # a host observer raised: isolated, the others still get the result
            log.warning("an observer of %s %s raised; isolated", self._name, self._detail, exc_info=True)

    def _deliver(self, observer: abc.ObserverBase[T]) -> None:
        if self._status == _DONE:
            observer.on_next(self._value)
            observer.on_completed()
        else:
            assert self._error is not None
            observer.on_error(self._error)  # type: ignore[arg-type]

    def set_result(self, value: T) -> None:
        """Complete with ``value`` (ignored if already done)."""
        with self._lock:
            if self._status != _PENDING:
                return
            self._status, self._value = _DONE, value
            observers, self._observers = self._observers, []
            futures, self._futures = self._futures, []
            self._on_abandon = None
        for observer in observers:
            self._replay(observer)
        if futures:  # what _settle does for each, inline: two calls less on every reply
            running = asyncio._get_running_loop()
            for loop, future in futures:
                if loop is not running:
                    loop.call_soon_threadsafe(_apply, future, value, None)
                elif not future.done():  # the usual case: the awaiting task wakes at the next tick
                    future.set_result(value)

    def set_error(self, error: BaseException) -> None:
        """Fail with ``error`` (ignored if already done)."""
        with self._lock:
            if self._status != _PENDING:
                return
            self._status, self._error = _FAILED, error
            observers, self._observers = self._observers, []
            futures, self._futures = self._futures, []
            observed = self._observed or bool(futures)
            self._on_abandon = None
        for observer in observers:
            self._replay(observer)
        for loop, future in futures:
            _settle(loop, future, None, error)
        if not observed:
            log.debug("%s %s failed before anyone awaited it: %s", self._name, self._detail, error)

    def __await__(self) -> Generator[Any, None, T]:
        with self._lock:
            self._observed = True
            if self._status == _PENDING:
                loop = asyncio.get_running_loop()
                future: asyncio.Future[T] = loop.create_future()
                self._futures.append((loop, future))
                pending = True
            else:
                pending = False
        if pending:
            # Cancellation is seen here, where the awaiting task's CancelledError arrives, not by a
            # done-callback on the future: a callback would cost every request one more handle
            # through the loop (about 2 us of its round trip), cancelled or not.
            try:
                return (yield from future.__await__())
            except asyncio.CancelledError:
                future.cancel()
                self._future_done(future)
                raise
        if self._status == _FAILED:
            assert self._error is not None
            raise self._error
        return self._value  # type: ignore[no-any-return]

    def _future_done(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled():
            return
        with self._lock:
            self._futures = [(lp, f) for lp, f in self._futures if f is not future]
            hook = self._on_abandon
            if self._status != _PENDING or hook is None or self._futures or self._observers:
                return
            self._on_abandon = None
        hook()

    def __repr__(self) -> str:
        status = {_PENDING: "pending", _DONE: "done", _FAILED: "failed"}[self._status]
        return f"<CommandResult {self._name} {self._detail} {status}>".replace("  ", " ")


def _settle(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any, error: BaseException | None
) -> None:
    if asyncio._get_running_loop() is loop:  # the usual case: settle at once
        _apply(future, value, error)
    else:
        loop.call_soon_threadsafe(_apply, future, value, error)


def _apply(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
