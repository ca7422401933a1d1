"""``idle_watchdog``: pass items through; say so when a stream has been silent too long."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

__all__ = ["idle_watchdog"]

_T = TypeVar("_T")


def idle_watchdog(
    seconds: float,
    on_idle: Callable[[float], None],
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Pass every item through unchanged; call ``on_idle(seconds)`` when none came for ``seconds``.

    The watch starts at subscription and restarts at every item. A silence is reported once:
    the next report needs an item first, then another silence. Nothing is dropped or delayed;
    the host decides what a silent topic means (resync, alert, reconnect).

    Marble (``seconds`` = 3 ticks; ``!`` marks the ``on_idle`` call)::

        source   -a-b---------c--|
        result   -a-b---------c--|
        on_idle          !
                         (3 ticks after b; nothing more until c)

    Args:
        seconds: how long a silence may last before it is reported.
        on_idle: told the length of the silence (``seconds``) when one is found.
        scheduler: for the timer; default the subscribe-time scheduler, else ``TimeoutScheduler``.

    Raises:
        ValueError: ``seconds`` is not positive.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds!r}")

    def _idle_watchdog(source: Observable[_T]) -> Observable[_T]:
        def subscribe(observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None) -> Any:
            sched = scheduler or scheduler_ or TimeoutScheduler.singleton()
            timer = SerialDisposable()

            def fire(_s: abc.SchedulerBase, _st: Any = None) -> None:
                on_idle(seconds)

            def arm() -> None:
                timer.disposable = sched.schedule_relative(seconds, fire)

            def on_next(value: _T) -> None:
                arm()
                observer.on_next(value)

            def on_error(error: Exception) -> None:
                timer.dispose()
                observer.on_error(error)

            def on_completed() -> None:
                timer.dispose()
                observer.on_completed()

            arm()
            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler_)
            return CompositeDisposable(subscription, timer)

        return Observable(subscribe)

    return _idle_watchdog
