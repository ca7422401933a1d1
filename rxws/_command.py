"""The result of an eager command: a single-value, replaying, awaitable observable.

``connect()``, ``send()``, ``request()`` and ``close()`` act when called and return a
:class:`CommandResult`. It replays its one value (or error) to every subscriber, late ones too,
and ``await`` on it resolves on the running loop without a round trip through the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Generator
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
        self._replay(observer)
        return Disposable()

    def _replay(self, observer: abc.ObserverBase[T]) -> None:
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
        for observer in observers:
            self._replay(observer)
        for loop, future in futures:
            _settle(loop, future, value, None)

    def set_error(self, error: BaseException) -> None:
        """Fail with ``error`` (ignored if already done)."""
        with self._lock:
            if self._status != _PENDING:
                return
            self._status, self._error = _FAILED, error
            observers, self._observers = self._observers, []
            futures, self._futures = self._futures, []
            observed = self._observed or bool(futures)
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
            return (yield from future.__await__())
        if self._status == _FAILED:
            assert self._error is not None
            raise self._error
        return self._value  # type: ignore[no-any-return]

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
