"""``detect_gaps``: pass items through and report the gaps their sequence numbers reveal."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc
from reactivex.scheduler import TimeoutScheduler

from rxws._time import clock_of
from rxws.core.sequence import SequenceTracker
from rxws.events import GapDetected
from rxws.protocols.base import Seq

__all__ = ["detect_gaps"]

_T = TypeVar("_T")


def detect_gaps(
    seq_of: Callable[[_T], Seq | None],
    topic_of: Callable[[_T], str] | None = None,
    *,
    on_gap: Callable[[GapDetected], None] | None = None,
    tracker: SequenceTracker | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Pass every item through unchanged; report sequence gaps and disconnect windows.

    Each item is read with ``topic_of`` (default: one topic, ``""``) and ``seq_of`` (None for
    an item without numbers, which only moves the topic's clock) and fed to a
    :class:`~rxws.core.sequence.SequenceTracker` at scheduler time. A gap goes to ``on_gap``
    *before* the item that revealed it is passed on. When the source errors, the tracker is
    told the connection dropped (``tracker.disconnected(now)``) before the error passes on.

    Without ``tracker`` each subscription has its own. Pass a shared ``tracker`` to keep the
    state across re-subscriptions, so that with ``retry_with_backoff`` after this operator
    the first item of each topic after a reconnect reports a ``"disconnect"`` gap; the owner
    may also call ``tracker.disconnected(now)`` itself.

    Marble (``on_gap`` calls below the line; items carry their sequence number)::

        source   -1--2--5--5--#      (then re-subscribed by retry_with_backoff)  --6--7-|
        result   -1--2--5--5--#                                                  --6--7-|
        on_gap          S  D                                                       X
                 S = sequence(last 2, next 5), D = duplicate(5), X = disconnect(last 5, next 6)

    Args:
        seq_of: reads an item's sequence numbers, or None.
        topic_of: reads an item's topic; default: every item is on topic ``""``.
        on_gap: told every gap found.
        tracker: a shared tracker (see above).
        scheduler: where time is read; default the subscribe-time scheduler, else
            ``TimeoutScheduler``.

    Returns:
        An operator for ``Observable.pipe``.
    """

    def _detect_gaps(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched: abc.SchedulerBase = scheduler or scheduler_ or TimeoutScheduler.singleton()
            now = clock_of(sched)
            track = tracker if tracker is not None else SequenceTracker()

            def on_next(item: _T) -> None:
                try:
                    topic = "" if topic_of is None else topic_of(item)
                    gap = track.observe(topic, seq_of(item), now())
                    if gap is not None and on_gap is not None:
                        on_gap(gap)
                except Exception as err:  # a reader or on_gap raised
                    observer.on_error(err)
                    return
                observer.on_next(item)

            def on_error(exc: Exception) -> None:
                track.disconnected(now())
                observer.on_error(exc)

            return source.subscribe(on_next, on_error, observer.on_completed, scheduler=scheduler_)

        return Observable(subscribe)

    return _detect_gaps
