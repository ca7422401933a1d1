"""A loop-confined subject for the hot path.

reactivex's stock ``Subject`` takes a lock twice and copies its observer list on every item.
:class:`FastSubject` is used only from the client's own thread: it copies its observer tuple on
(un)subscribe, never per item, and isolates observers from each other — an observer that raises
is reported through ``on_observer_error`` and the others still get the item. The observable
contract (``on_next``* then at most one ``on_error``/``on_completed``) is kept.

:class:`FastBehaviorSubject` adds the current value, replayed to each new subscriber (the
``state`` stream): subscribing is thread-safe, and a new subscriber sees the current value and
then every later one, none twice and none out of order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.observer.autodetachobserver import AutoDetachObserver

__all__ = ["FastBehaviorSubject", "FastSubject"]

T = TypeVar("T")


class FastSubject(Observable[T], Generic[T]):
    """A hot, multicast, loop-confined subject with isolated observers."""

    def __init__(self, on_observer_error: Callable[[BaseException], None] | None = None) -> None:
        super().__init__()
        self._observers: tuple[abc.ObserverBase[T], ...] = ()
        self._stopped = False
        self._error: BaseException | None = None
        self._on_observer_error = on_observer_error
        self._lock: threading.Lock | threading.RLock = threading.Lock()

    @property
    def has_observers(self) -> bool:
        return bool(self._observers)

    @property
    def is_stopped(self) -> bool:
        return self._stopped

    def subscribe(
        self,
        on_next: abc.ObserverBase[T] | Callable[[T], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """Subscribe an observer, or ``on_next``/``on_error``/``on_completed`` functions.

        An observer that is already reactivex's ``AutoDetachObserver`` (what every
        ``Observable.subscribe`` hands its source, e.g. ``watch()``'s host observer) is added as it
        is, not wrapped in a second one: that wrapper would only repeat the stop-after-the-end
        check this subject already keeps (``on_error``/``on_completed`` remove every observer),
        and would cost each message one more call. Anything else is subscribed the usual way.
        """
        if type(on_next) is AutoDetachObserver:
            return self._subscribe_core(on_next, scheduler)
        return super().subscribe(on_next, on_error, on_completed, scheduler=scheduler)

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        if self._stopped:
            if self._error is not None:
                observer.on_error(self._error)  # type: ignore[arg-type]
            else:
                observer.on_completed()
            return Disposable()
        with self._lock:
            self._observers = (*self._observers, observer)
        return Disposable(lambda: self._remove(observer))

    def _remove(self, observer: abc.ObserverBase[T]) -> None:
        with self._lock:
            obs = self._observers
            if observer in obs:
                lst = list(obs)
                lst.remove(observer)
                self._observers = tuple(lst)

    def on_next(self, value: T) -> None:
        """Deliver ``value`` to every observer; an observer that raises does not stop the others.

        Failures are reported once every observer has had ``value``, so a report (an event on
        another stream, or on this one) never overtakes the value it is about.
        """
        failed: list[Exception] | None = None
        for observer in self._observers:
            try:
                observer.on_next(value)
            except Exception as exc:  # isolate observers from each other
                if failed is None:
                    failed = [exc]
                else:
                    failed.append(exc)
        if failed is not None:
            for error in failed:
                self._report(error)

    def on_error(self, error: BaseException) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._error = error
        observers, self._observers = self._observers, ()
        for observer in observers:
            try:
                observer.on_error(error)  # type: ignore[arg-type]
            except Exception as exc:
                self._report(exc)

    def on_completed(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        observers, self._observers = self._observers, ()
        for observer in observers:
            try:
                observer.on_completed()
            except Exception as exc:
                self._report(exc)

    def _report(self, exc: BaseException) -> None:
        if self._on_observer_error is not None:
            self._on_observer_error(exc)


class FastBehaviorSubject(FastSubject[T]):
    """A :class:`FastSubject` that holds a current value and replays it to each new subscriber.

    Subscribing is safe from any thread: the observer is added and given the current value under
    the lock that also guards each new value, so it sees the value current when it joined and
    every later one. An observer that raises (on the replay too) is reported, not propagated.
    """

    def __init__(self, value: T, on_observer_error: Callable[[BaseException], None] | None = None) -> None:
        super().__init__(on_observer_error)
        self._lock = threading.RLock()  # reentrant: an observer may subscribe from its replay
        self.value = value

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        with self._lock:
            if not self._stopped:
                self._observers = (*self._observers, observer)
                try:
                    observer.on_next(self.value)
                except Exception as exc:
                    self._report(exc)
                return Disposable(lambda: self._remove(observer))
        return super()._subscribe_core(observer, scheduler)

    def on_next(self, value: T) -> None:
        """Make ``value`` current and deliver it to every observer (isolated from each other)."""
        with self._lock:
            if self._stopped:
                return
            self.value = value
            observers = self._observers
        failed: list[Exception] = []
        for observer in observers:
            try:
                observer.on_next(value)
            except Exception as exc:
                failed.append(exc)
        for error in failed:
            self._report(error)

    def on_completed(self) -> None:
        with self._lock:  # not between a concurrent subscriber's add and its replay
            super().on_completed()

    def on_error(self, error: BaseException) -> None:
        with self._lock:
            super().on_error(error)
