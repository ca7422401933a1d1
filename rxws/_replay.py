"""ReplayStream: a hot stream of a few values that replays them to late subscribers, then ends.

One per correlated item (:func:`rxws.operators.correlate`) and one per streaming request (a
multi-frame reply, ``request(..., stream=True)``): values come from the owner's ``next``, the end
from ``end(None)`` (completed) or ``end(error)``; a subscriber that comes late (``merge`` with a
concurrency limit, an ``await`` after the fact) still sees every value and the end. It holds the
values it was given, so it is meant for short streams that end (a bounded number of parts).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

__all__ = ["ReplayStream"]

_R = TypeVar("_R")


class ReplayStream(Observable[_R], Generic[_R]):
    """A hot, replaying stream its owner feeds with :meth:`next` and ends with :meth:`end`."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: list[_R] = []
        self._open = True
        self._error: Exception | None = None  # None once closed: completed
        self._observers: list[abc.ObserverBase[_R]] = []

    def _subscribe_core(
        self, observer: abc.ObserverBase[_R], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        for value in self._seen:
            observer.on_next(value)
        if not self._open:
            error = self._error
            observer.on_completed() if error is None else observer.on_error(error)
            return Disposable()
        self._observers.append(observer)
        return Disposable(lambda: self._observers.remove(observer) if observer in self._observers else None)

    @property
    def done(self) -> bool:
        """True once :meth:`end` was called."""
        return not self._open

    def next(self, value: _R) -> None:
        """Give ``value`` to every observer (and keep it for later ones); ignored once ended."""
        if not self._open:
            return
        self._seen.append(value)
        for observer in list(self._observers):
            observer.on_next(value)

    def end(self, error: Exception | None) -> None:
        """Complete (``None``) or fail with ``error``; only the first call counts."""
        if not self._open:
            return
        self._open, self._error = False, error
        observers, self._observers = self._observers, []
        for observer in observers:
            observer.on_completed() if error is None else observer.on_error(error)
