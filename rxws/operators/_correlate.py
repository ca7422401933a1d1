"""``correlate``: one time-bounded response stream per source item, matched by key in O(1)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

from rxws._replay import ReplayStream
from rxws._time import clock_of
from rxws.core.correlation import PendingTable, ReplyOutcome
from rxws.exceptions import RequestTimeout, UsageError

__all__ = ["CorrelationStats", "correlate"]

_T = TypeVar("_T")
_R = TypeVar("_R")


class CorrelationStats:
    """What one or more ``correlate`` subscriptions did; pass one in as ``stats=`` and read it.

    Attributes:
        items: source items seen (each got a response stream).
        matched: responses delivered to a waiting item (held ones included).
        held: responses that came before their item and were delivered when it came.
        completed: response streams that ended on a match for which ``until`` held.
        timeouts: response streams that failed with ``RequestTimeout``.
        late: strays whose key had timed out or completed (a late or extra copy).
        unmatched: strays whose key no item was waiting for, even after the hold.
        overflow: strays counted at once because the hold buffer was full.
        ignored: responses whose key was None (not a response at all).
        duplicates: items whose key was already waiting (their stream failed with ``UsageError``).
        pending: items waiting for a response right now.
    """

    __slots__ = (
        "completed",
        "duplicates",
        "held",
        "ignored",
        "items",
        "late",
        "matched",
        "overflow",
        "pending",
        "timeouts",
        "unmatched",
    )

    def __init__(self) -> None:
        self.items = self.matched = self.held = self.completed = self.timeouts = 0
        self.late = self.unmatched = self.overflow = self.ignored = self.duplicates = self.pending = 0

    @property
    def strays(self) -> int:
        """Responses nobody was waiting for: ``late + unmatched + overflow``."""
        return self.late + self.unmatched + self.overflow

    def as_dict(self) -> dict[str, int]:
        """Every counter by name (``strays`` included)."""
        return {**{name: getattr(self, name) for name in self.__slots__}, "strays": self.strays}

    def __repr__(self) -> str:
        return f"CorrelationStats({self.as_dict()})"


def correlate(
    responses: Observable[_R],
    key_of: Callable[[Any], Hashable],
    *,
    timeout: float,
    until: Callable[[_R], bool] | None = None,
    response_key: Callable[[_R], Hashable] | None = None,
    hold: float = 0.0,
    max_held: int = 1024,
    stats: CorrelationStats | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[Observable[_R]]]:
    """For each source item, emit the stream of ``responses`` that carry the same key.

    ``key_of`` reads the key of an item and of a response (or pass ``response_key`` for the
    responses). An item's stream emits every response with its key and completes at the first
    for which ``until`` holds (default: the first response), or fails with
    :class:`~rxws.exceptions.RequestTimeout` when ``timeout`` seconds pass first. Matching is a
    dict lookup, whatever the number waiting. Flatten with ``ops.merge_all()``.

    A response that comes before its item is held ``hold`` seconds (default 0: until the end of
    the current tick; at most ``max_held`` of them) and delivered when the item comes; strays
    are counted in ``stats``: ``late`` (the key timed out or completed), ``unmatched`` (nobody
    waited), ``overflow`` (the hold was full). A response whose key is None is ``ignored``
    (return None for messages that are not responses); ``key_of``, ``response_key`` or
    ``until`` raising fails the outer stream, as ``ops.map`` does. An item whose key is
    already waiting (or unhashable) gets a stream that fails with ``UsageError``.
    The outer stream completes when the source has and every response stream has ended;
    an error of either input fails the outer stream and every waiting response stream.
    Both inputs must be delivered on one thread at a time (a lock serialises them).

    Marble (``timeout`` = 4 ticks; items and responses keyed by their letter)::

        source     -a---b-----c------|
        responses  --A-------B--C-----
        result     -x---y-----z------|     (ends when the source has and every stream has)
        x           -(A|)
        y               ----#              (RequestTimeout at 9; B at 10 is counted as late)
        z                     --(C|)

    Args:
        responses: the stream answers come on (e.g. ``client.messages`` or a private topic).
        key_of: the correlation key of an item (and of a response, unless ``response_key``).
        timeout: seconds an item waits for its final response.
        until: the response that ends an item's stream (default: any, so the first).
        response_key: the key of a response, when it is read differently from an item's.
        hold: seconds a response may wait for its item (0: the same tick only).
        max_held: the most responses held at once; more are counted as ``overflow``.
        stats: counters to add to (see :class:`CorrelationStats`).
        scheduler: for the timers; default the subscribe-time scheduler, else ``TimeoutScheduler``.

    Raises:
        ValueError: ``timeout`` is not positive, ``hold`` is negative or ``max_held`` < 0.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0, got {timeout!r}")
    if not hold >= 0:
        raise ValueError(f"hold must be >= 0, got {hold!r}")
    if max_held < 0:
        raise ValueError(f"max_held must be >= 0, got {max_held!r}")
    rkey = response_key or key_of
    final = until or _always
    counts = stats if stats is not None else CorrelationStats()

    def _correlate(source: Observable[_T]) -> Observable[Observable[_R]]:
        def subscribe(
            observer: abc.ObserverBase[Observable[_R]], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = scheduler or scheduler_ or TimeoutScheduler.singleton()
            now = clock_of(sched)
            table: PendingTable[ReplayStream[_R]] = PendingTable()
            held: dict[Hashable, list[tuple[float, _R]]] = {}
            held_count = [0]
            lock = threading.RLock()
            deadline_timer, hold_timer = SerialDisposable(), SerialDisposable()
            armed: list[float | None] = [None]
            source_done = [False]
            finished = [False]

            def remove(key: Hashable, how: Callable[[Hashable], ReplayStream[_R] | None]) -> None:
                if how(key) is not None:
                    counts.pending -= 1

            def maybe_complete() -> None:
                if source_done[0] and not len(table) and not finished[0]:
                    finished[0] = True
                    observer.on_completed()

            def arm(deadline: float) -> None:
                armed[0] = deadline
                deadline_timer.disposable = sched.schedule_relative(max(0.0, deadline - now()), on_deadline)

            def on_deadline(_s: abc.SchedulerBase, _st: Any = None) -> None:
                with lock:
                    armed[0] = None
                    for key, stream in table.due(now()):
                        counts.pending -= 1
                        counts.timeouts += 1
                        stream.end(RequestTimeout(key, timeout))
                    upcoming = table.next_deadline()
                    if upcoming is not None and armed[0] is None:
                        arm(upcoming)
                    maybe_complete()

            def deliver(key: Hashable, stream: ReplayStream[_R], response: _R) -> None:
                counts.matched += 1
                stream.next(response)
                try:
                    last = final(response)
                except Exception as exc:  # as ops.map does: a selector that raises fails the stream
                    fail(exc)
                    return
                if last:
                    remove(key, table.complete)
                    counts.completed += 1
                    stream.end(None)
                    maybe_complete()

            def on_item(item: _T) -> None:
                with lock:
                    if finished[0]:
                        return
                    try:
                        key = key_of(item)
                    except Exception as exc:
                        fail(exc)
                        return
                    counts.items += 1
                    stream: ReplayStream[_R] = ReplayStream()
                    deadline = now() + timeout
                    try:
                        table.add(key, stream, deadline)
                    except (KeyError, TypeError) as exc:
                        counts.duplicates += isinstance(exc, KeyError)
                        why = (
                            "is already waiting for a response"
                            if isinstance(exc, KeyError)
                            else "is unhashable"
                        )
                        stream.end(UsageError(f"correlate: key {key!r} {why}"))
                        observer.on_next(stream)
                        return
                    counts.pending += 1
                    if armed[0] is None or deadline < armed[0]:
                        arm(deadline)
                    observer.on_next(stream)
                    early = held.pop(key, None) if held else None
                    if early:
                        held_count[0] -= len(early)
                        for _at, response in early:
                            if table.get(key) is not stream:
                                counts.late += 1  # an earlier held copy already completed it
                                continue
                            counts.held += 1
                            deliver(key, stream, response)

            def on_response(response: _R) -> None:
                with lock:
                    if finished[0]:
                        return
                    try:
                        key = rkey(response)
                    except Exception as exc:
                        fail(exc)
                        return
                    if key is None:
                        counts.ignored += 1
                        return
                    outcome, stream = table.resolve(key, final=False)
                    if stream is not None:
                        deliver(key, stream, response)
                    elif outcome == ReplyOutcome.LATE:
                        counts.late += 1
                    elif held_count[0] >= max_held:
                        counts.overflow += 1
                    else:
                        try:
                            held.setdefault(key, []).append((now(), response))
                        except TypeError:  # an unhashable key: nobody can wait for it
                            counts.unmatched += 1
                            return
                        held_count[0] += 1
                        if held_count[0] == 1:
                            hold_timer.disposable = sched.schedule_relative(hold, release_held)

            def release_held(_s: abc.SchedulerBase, _st: Any = None) -> None:
                with lock:
                    cutoff = now() - hold
                    for key in list(held):
                        kept = [(at, r) for at, r in held[key] if at > cutoff]
                        counts.unmatched += len(held[key]) - len(kept)
                        held_count[0] -= len(held[key]) - len(kept)
                        if kept:
                            held[key] = kept
                        else:
                            del held[key]
                    if held_count[0]:
                        oldest = min(at for items in held.values() for at, _r in items)
                        hold_timer.disposable = sched.schedule_relative(
                            max(0.0, oldest + hold - now()), release_held
                        )

            def fail(error: Exception) -> None:
                with lock:
                    if finished[0]:
                        return
                    finished[0] = True
                    for _key, stream in table.drain():
                        counts.pending -= 1
                        stream.end(error)
                observer.on_error(error)

            def on_source_completed() -> None:
                with lock:
                    source_done[0] = True
                    maybe_complete()

            def cleanup() -> None:
                with lock:
                    counts.pending -= len(table.drain())
                    counts.unmatched += held_count[0]
                    held.clear()
                    held_count[0] = 0

            response_sub = responses.subscribe(on_response, fail, None, scheduler=scheduler_)
            source_sub = source.subscribe(on_item, fail, on_source_completed, scheduler=scheduler_)
            return CompositeDisposable(
                source_sub, response_sub, deadline_timer, hold_timer, Disposable(cleanup)
            )

        return Observable(subscribe)

    return _correlate


def _always(_response: Any) -> bool:
    return True
