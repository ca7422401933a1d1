"""``rate_limit``: hold items back until a rate limit allows them, in strict FIFO order."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

from rxws._time import clock_of
from rxws.exceptions import RateLimitExceeded
from rxws.ratelimit.base import Action, Algorithm, Decision
from rxws.ratelimit.events import Dropped, Queued, RateLimitEvent, Throttled

__all__ = ["Overflow", "rate_limit"]

_T = TypeVar("_T")

Overflow = Literal["error", "drop_newest", "drop_oldest"]

_DropReason = Literal["drop_newest", "drop_oldest", "error", "disposed"]

_MIN_DELAY = 1e-6
"""The shortest wait scheduled, so a limiter answering ``retry_after=0`` cannot spin."""


def rate_limit(
    acquire: Callable[[_T, float], Decision] | Algorithm,
    *,
    cost: Callable[[_T], float] | None = None,
    # Limits
    max_queue: int = 1000,
    overflow: Overflow = "error",
    # Notifications
    on_event: Callable[[RateLimitEvent], None] | None = None,
    on_drop: Callable[[_T], None] | None = None,
    action: Action = Action.MESSAGE,
    conn_id: str = "",
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Delay items until ``acquire`` allows them; queue FIFO, bounded, never drop silently.

    Each item is decided by ``acquire(item, now)`` (or, given an algorithm,
    ``algorithm.try_acquire(now, cost(item))``) with ``now`` read from the scheduler. An allowed
    item with nothing queued ahead passes straight through, with no scheduling. Otherwise it
    waits in a FIFO queue: only the head is retried, after the ``retry_after`` it was given, so a
    heavy item is never starved by light ones behind it. With ``LeakyBucket(1, 4)`` (one item
    every 4 s) and one character per second::

        source:  -a-b-c-|
        result:  -a---b---(c,|)   b and c wait their turn; completion waits for the queue

    When the queue holds ``max_queue`` items, ``overflow`` decides: ``"error"`` ends the stream
    with :class:`~rxws.exceptions.RateLimitExceeded`; ``"drop_newest"`` discards the arriving
    item, ``"drop_oldest"`` the head. Every discarded item goes to ``on_drop`` and is reported by a
    :class:`~rxws.ratelimit.Dropped` event, also when an error or disposal leaves items queued.
    An item that can never be allowed (``retry_after`` is ``inf``, e.g. a topic cap) ends the
    stream with ``RateLimitExceeded``; an exception from ``acquire`` ends it with that exception.
    Source errors pass through at once.

    Events (to ``on_event``): ``Throttled(delay)`` each time the head has to wait, ``Queued(depth)``
    each time an item joins the queue, ``Dropped``. Nothing for items that pass straight through.

    Args:
        acquire: ``(item, now) -> Decision``, or a rate-limit algorithm.
        cost: with an algorithm, each item's cost (default 1).
        max_queue: the most items waiting (0: nothing may wait).
        overflow: what a full queue does: ``"error"``, ``"drop_newest"`` or ``"drop_oldest"``.
        on_event: receives rate-limit events.
        on_drop: receives each discarded item.
        action: labels the events (default ``Action.MESSAGE``).
        conn_id: labels the events.
        scheduler: where waits are scheduled and time is read; defaults to the scheduler given at
            subscribe time, else the ``TimeoutScheduler``.

    Raises:
        ValueError: ``max_queue`` is negative or ``overflow`` is unknown.
    """
    if not isinstance(max_queue, int) or max_queue < 0:
        raise ValueError(f"max_queue must be an int >= 0, got {max_queue!r}")
    if overflow not in ("error", "drop_newest", "drop_oldest"):
        raise ValueError(f"overflow must be 'error', 'drop_newest' or 'drop_oldest', got {overflow!r}")
    decide = _decider(acquire, cost)

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = scheduler or scheduler_ or TimeoutScheduler.singleton()
            gate = _Gate(observer, sched, decide, max_queue, overflow, on_event, on_drop, action, conn_id)
            upstream = source.subscribe(gate.on_next, gate.on_error, gate.on_completed, scheduler=scheduler_)
            return CompositeDisposable(upstream, gate.timer, Disposable(gate.dispose))

        return Observable(subscribe)

    return operator


def _decider(
    acquire: Callable[[_T, float], Decision] | Algorithm, cost: Callable[[_T], float] | None
) -> Callable[[_T, float], Decision]:
    if isinstance(acquire, Algorithm):
        alg = acquire
        if cost is None:
            return lambda _item, now: alg.try_acquire(now)
        weigh = cost
        return lambda item, now: alg.try_acquire(now, weigh(item))
    if cost is not None:
        raise ValueError("cost= only applies when acquire is an algorithm")
    return acquire


class _Gate:
    """The per-subscription queue and timer of ``rate_limit``."""

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        scheduler: abc.SchedulerBase,
        decide: Callable[[Any, float], Decision],
        max_queue: int,
        overflow: Overflow,
        on_event: Callable[[RateLimitEvent], None] | None,
        on_drop: Callable[[Any], None] | None,
        action: Action,
        conn_id: str,
    ) -> None:
        self.observer = observer
        self.scheduler = scheduler
        self.now = clock_of(scheduler)
        self.decide = decide
        self.max_queue = max_queue
        self.overflow = overflow
        self.on_event = on_event
        self.on_drop = on_drop
        self.action = action
        self.conn_id = conn_id
        self.queue: deque[Any] = deque()
        self.timer = SerialDisposable()
        self.lock = threading.RLock()
        self.waiting = False  # a timer is pending for the head
        self.draining = False
        self.completed = False  # the source completed; complete once the queue drains
        self.done = False  # a terminal notification was sent (or disposed)

    # Source notifications ----------------------------------------------------------------------
    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.done:
                return
            if self.queue or self.waiting or self.draining:
                self._enqueue(item)
                return
            t = self.now()
            d = self._decide(item, t)
            if d is None:
                return
            if d.allowed:
                self.observer.on_next(item)
                return
            if self._enqueue(item, kick=False):
                self._wait(d, t)

    def on_error(self, error: Exception) -> None:
        with self.lock:
            if not self.done:
                self._fail(error)

    def on_completed(self) -> None:
        with self.lock:
            if self.done:
                return
            self.completed = True
            if not self.queue and not self.waiting:
                self.done = True
                self.observer.on_completed()

    def dispose(self) -> None:
        with self.lock:
            self.done = True
            self._discard("disposed")

    # Queue ------------------------------------------------------------------------------------
    def _enqueue(self, item: Any, *, kick: bool = True) -> bool:
        """Put ``item`` at the tail, applying the overflow policy; True when it was queued.

        ``kick``: decide the head now if nothing waits (False when the caller schedules the wait).
        """
        if len(self.queue) < self.max_queue:
            self.queue.append(item)
            self._event(
                Queued(at=self.now(), action=self.action, conn_id=self.conn_id, depth=len(self.queue))
            )
            if kick and not self.waiting and not self.draining:
                self._drain()
            return True
        if self.overflow == "error":
            self._fail(
                RateLimitExceeded(f"rate-limit queue overflow: {self.max_queue} items already waiting")
            )
            return False
        if self.overflow == "drop_oldest" and self.queue:
            dropped = self.queue.popleft()
            self.queue.append(item)
            self._dropped("drop_oldest", [dropped])
            if not self.draining:  # the head changed: decide the new head now
                self.timer.disposable = Disposable()
                self.waiting = False
                self._drain()
            return True
        self._dropped("drop_oldest" if self.overflow == "drop_oldest" else "drop_newest", [item])
        return False

    def _drain(self) -> None:
        self.draining = True
        try:
            while self.queue and not self.done:
                t = self.now()
                d = self._decide(self.queue[0], t)
                if d is None:
                    return
                if not d.allowed:
                    self._wait(d, t)
                    return
                self.observer.on_next(self.queue.popleft())
            if self.completed and not self.done:
                self.done = True
                self.observer.on_completed()
        finally:
            self.draining = False

    def _wait(self, d: Decision, t: float) -> None:
        if math.isinf(d.retry_after) or math.isnan(d.retry_after):
            self._fail(
                RateLimitExceeded("the rate limit can never allow the next item", retry_after=d.retry_after)
            )
            return
        delay = max(d.retry_after, _MIN_DELAY)
        self.waiting = True
        self._event(Throttled(at=t, action=self.action, conn_id=self.conn_id, delay=delay))
        self.timer.disposable = self.scheduler.schedule_relative(delay, self._wake)

    def _wake(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        with self.lock:
            self.waiting = False
            if not self.done:
                self._drain()

    def _decide(self, item: Any, t: float) -> Decision | None:
        try:
            return self.decide(item, t)
        except Exception as exc:
            self._fail(exc)
            return None

    # Endings ----------------------------------------------------------------------------------
    def _fail(self, error: Exception) -> None:
        self.done = True
        self.timer.dispose()
        self._discard("error")
        self.observer.on_error(error)

    def _discard(self, reason: Literal["error", "disposed"]) -> None:
        if self.queue:
            items = list(self.queue)
            self.queue.clear()
            self._dropped(reason, items)

    def _dropped(
        self, reason: Literal["drop_newest", "drop_oldest", "error", "disposed"], items: list[Any]
    ) -> None:
        self._event(
            Dropped(
                at=self.now(),
                action=self.action,
                conn_id=self.conn_id,
                reason=reason,
                count=len(items),
                depth=len(self.queue),
            )
        )
        if self.on_drop is not None:
            for item in items:
                self.on_drop(item)

    def _event(self, event: RateLimitEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)
