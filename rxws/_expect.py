"""``expect``: the next inbound messages that match, time-bounded, subscribed before the trigger.

The function behind ``client.expect(match, *, timeout, count=1)``. It subscribes to the message
stream when called (not when awaited), so it can be created before sending whatever provokes the
messages: a reply that arrives during the send itself is caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Hashable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxws._command import CommandResult
from rxws.exceptions import ConnectionLost, RequestTimeout, UsageError
from rxws.protocols.base import VenueProtocol

__all__ = ["expect"]

Match = Callable[[Any], bool] | Hashable
"""A predicate on a message, or a key compared with each message's key."""


def expect(
    messages: Observable[Any],
    match: Match,
    *,
    timeout: float,
    count: int = 1,
    key_of: Callable[[Any], Hashable] | None = None,
    protocol: VenueProtocol | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> CommandResult[Any]:
    """Wait for the next ``count`` messages of ``messages`` that match; subscribed at once.

    ``match`` is a predicate, or a key: a message matches when its key equals it, read with
    ``key_of`` or else with the dialect's routing key (``protocol.classify(message)[1]``: the
    request id of a reply, the topic of a data message, the label of a control message).

    The result is eager and awaitable like a client command: it holds the message when
    ``count == 1``, else the list of ``count`` messages in arrival order. It fails with
    :class:`~rxws.exceptions.RequestTimeout` when ``timeout`` seconds pass first, with the
    stream's error if it fails, and with :class:`~rxws.exceptions.ConnectionLost` when it
    completes first (the client closed: nothing more can come). A predicate that raises fails
    it with that exception. When every awaiting task is cancelled, the subscription and the
    timer are released.

    Args:
        messages: the stream to watch (``client.messages``).
        match: a predicate, or a key.
        timeout: seconds to wait for all ``count`` messages.
        count: how many matching messages to collect (>= 1).
        key_of: how to read a message's key when ``match`` is a key.
        protocol: the dialect whose routing key ``match`` is compared with (when no ``key_of``).
        scheduler: for the timer; default an asyncio scheduler on the running loop, else
            ``TimeoutScheduler``.

    Raises:
        UsageError: ``timeout`` or ``count`` out of range, or a key without ``key_of``/``protocol``.
    """
    if not timeout > 0:
        raise UsageError(f"timeout must be > 0, got {timeout!r}")
    if not isinstance(count, int) or count < 1:
        raise UsageError(f"count must be an int >= 1, got {count!r}")
    predicate = _predicate(match, key_of, protocol)
    sched = scheduler or _default_scheduler()
    label = (
        f"expect {match!r}" if not callable(match) else f"expect {getattr(match, '__name__', 'predicate')}"
    )
    result: CommandResult[Any] = CommandResult("expect", label)
    found: list[Any] = []
    lock = threading.RLock()
    subscription = SerialDisposable()
    timer = SerialDisposable()
    everything = CompositeDisposable(subscription, timer)

    def finish(error: BaseException | None) -> None:
        everything.dispose()
        if error is not None:
            result.set_error(error)
        else:
            result.set_result(found[0] if count == 1 else list(found))

    def on_next(message: Any) -> None:
        with lock:
            if result.done:
                return
            try:
                if not predicate(message):
                    return
            except Exception as exc:
                finish(exc)
                return
            found.append(message)
            if len(found) >= count:
                finish(None)

    def on_error(error: Exception) -> None:
        with lock:
            if not result.done:
                finish(error)

    def on_completed() -> None:
        with lock:
            if not result.done:
                finish(ConnectionLost(f"{label}: the message stream ended with {len(found)} of {count}"))

    def on_deadline(_s: abc.SchedulerBase, _st: Any = None) -> None:
        with lock:
            if not result.done:
                finish(RequestTimeout(label, timeout))

    timer.disposable = sched.schedule_relative(timeout, on_deadline)
    subscription.disposable = messages.subscribe(on_next, on_error, on_completed)
    if result.done:  # settled during the subscription (a replaying stream): release it now
        everything.dispose()
    result.on_abandon(lambda: _release(everything))
    return result


def _release(disposable: abc.DisposableBase) -> None:
    with contextlib.suppress(Exception):
        disposable.dispose()


def _predicate(
    match: Match, key_of: Callable[[Any], Hashable] | None, protocol: VenueProtocol | None
) -> Callable[[Any], bool]:
    if callable(match):
        return match
    if key_of is None and protocol is None:
        raise UsageError("expect: a key to match needs key_of= or protocol= to read each message's key")
    read: Callable[[Any], Hashable] = key_of if key_of is not None else _routing_key(protocol)

    def by_key(message: Any) -> bool:
        try:
            return bool(read(message) == match)
        except TypeError:
            return False

    return by_key


def _routing_key(protocol: VenueProtocol | None) -> Callable[[Any], Hashable]:
    assert protocol is not None
    classify = protocol.classify

    def read(message: Any) -> Hashable:
        return classify(message)[1]  # type: ignore[no-any-return]

    return read


def _default_scheduler() -> abc.SchedulerBase:
    try:
        return AsyncIOScheduler(asyncio.get_running_loop())
    except RuntimeError:
        return TimeoutScheduler.singleton()
