"""Asyncio and aioreactive adapters (extra ``aio``).

A reactivex observable pushes; an ``async for`` loop or an aioreactive observer pulls at its own
pace. In between sits a bounded buffer with a stated overflow policy, so a slow consumer costs at
most ``maxsize`` items of memory and every item it did not get is counted:

================ ===============================================================================
``drop_oldest``  the oldest buffered item makes room for the new one (default: fresh data wins)
``drop_newest``  the arriving item is discarded
``error``        the source is disposed; :class:`BufferOverflow` is raised once the buffered
                 items have been consumed
================ ===============================================================================

Dropped items are reported **per burst**: ``on_drop`` receives one
:class:`~rxws.events.MessageDropped` whose ``count`` is the number of items dropped since the
previous report. It is called in the consuming task, just before the consumer receives its next
item (or the end of the stream), and on ``aclose()``. ``BufferedAsyncIterator.dropped`` keeps the
running total.

:func:`to_async_iterable` needs only asyncio. :func:`to_async_observable` and
:func:`from_async_observable` import aioreactive when called (``pip install 'rxws[aio]'``).

Threading: items are expected on the event loop's thread (the client calls its observers there);
an item, error or completion arriving from another thread is marshalled onto the loop with
``call_soon_threadsafe``, in order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxws.events import MessageDropped
from rxws.exceptions import RxwsError, UsageError

if TYPE_CHECKING:
    from aioreactive import AsyncDisposable, AsyncObservable, AsyncObserver

__all__ = [
    "BufferOverflow",
    "BufferedAsyncIterator",
    "OverflowPolicy",
    "from_async_observable",
    "to_async_iterable",
    "to_async_observable",
]

log = logging.getLogger("rxws.aio")

T = TypeVar("T")

OverflowPolicy = Literal["drop_oldest", "drop_newest", "error"]
"""What a full buffer does with the next item."""

_POLICIES: frozenset[str] = frozenset(("drop_oldest", "drop_newest", "error"))

# Tasks this module started and not yet finished; asyncio keeps only weak references to tasks.
_TASKS: set[Any] = set()


def _check_limits(maxsize: int, overflow: str) -> None:
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
        raise UsageError(f"maxsize must be an int >= 1, got {maxsize!r}")
    if overflow not in _POLICIES:
        raise UsageError(f"overflow must be one of {sorted(_POLICIES)}, got {overflow!r}")


class BufferOverflow(RxwsError):
    """An async consumer fell ``maxsize`` items behind under the ``"error"`` overflow policy.

    Attributes:
        maxsize: the buffer's capacity.
        topic: the label given to the adapter, if any.
    """

    def __init__(self, maxsize: int, topic: str | None = None) -> None:
        where = f" on {topic!r}" if topic else ""
        super().__init__(f"async consumer fell behind{where}: buffer of {maxsize} items is full")
        self.maxsize = maxsize
        self.topic = topic


class _Buffer(Generic[T]):
    """The state behind one :class:`BufferedAsyncIterator`: what the source's observer holds.

    Kept apart from the iterator so the source never references the iterator itself: dropping
    the iterator (a plain ``break``) can then finalize it and dispose the subscription.
    """

    __slots__ = (
        "buffer",
        "closed",
        "dropped",
        "error",
        "loop",
        "maxsize",
        "on_drop",
        "overflow",
        "stopped",
        "subscription",
        "thread",
        "topic",
        "unreported",
        "waiter",
    )

    def __init__(
        self,
        maxsize: int,
        overflow: OverflowPolicy,
        on_drop: Callable[[MessageDropped], None] | None,
        topic: str | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.loop = loop
        self.thread = threading.get_ident()
        self.maxsize = maxsize
        self.overflow = overflow
        self.on_drop = on_drop
        self.topic = topic
        self.buffer: deque[T] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.stopped = False  # the source ended (completed, failed, overflowed) or we closed
        self.closed = False  # the consumer is done: nothing more is returned
        self.error: BaseException | None = None
        self.unreported = 0
        self.dropped = 0
        self.subscription: abc.DisposableBase | None = None

    # Producer side: runs on the loop's thread ------------------------------------------------------
    def on_next(self, value: T) -> None:
        if threading.get_ident() != self.thread:
            self._marshal(self.push, value)
        else:
            self.push(value)

    def on_error(self, error: Exception) -> None:
        if threading.get_ident() != self.thread:
            self._marshal(self.terminate, error)
        else:
            self.terminate(error)

    def on_completed(self) -> None:
        if threading.get_ident() != self.thread:
            self._marshal(self.terminate, None)
        else:
            self.terminate(None)

    def _marshal(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, arg)
        except RuntimeError:  # the loop is closed: nobody can consume any more
            log.debug("item for a closed event loop discarded")

    def push(self, value: T) -> None:
        if self.stopped:
            return
        buffer = self.buffer
        if len(buffer) >= self.maxsize:
            if self.overflow == "drop_oldest":
                buffer.popleft()
                self.dropped += 1
                self.unreported += 1
            elif self.overflow == "drop_newest":
                self.dropped += 1
                self.unreported += 1
                return
            else:
                self.terminate(BufferOverflow(self.maxsize, self.topic))
                return
        buffer.append(value)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def terminate(self, error: BaseException | None) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.error = error
        self.dispose_subscription()
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def dispose_subscription(self) -> None:
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            subscription.dispose()

    # Consumer side ---------------------------------------------------------------------------------
    async def next(self) -> T:
        buffer = self.buffer
        while not buffer:
            if self.stopped:
                self._finish()
            if asyncio.get_running_loop() is not self.loop:
                raise UsageError("iterate on the event loop that created the iterator")
            waiter: asyncio.Future[None] = self.loop.create_future()
            self.waiter = waiter
            try:
                await waiter
            except asyncio.CancelledError:
                self.close()
                raise
        if self.unreported:
            self.report()
        return buffer.popleft()

    def _finish(self) -> NoReturn:
        self.closed = True
        if self.unreported:
            self.report()
        error, self.error = self.error, None
        if error is not None:
            raise error
        raise StopAsyncIteration

    def report(self) -> None:
        count, self.unreported = self.unreported, 0
        reason = f"slow async consumer: buffer of {self.maxsize} full ({self.overflow})"
        if self.on_drop is None:
            log.warning("%s; dropped %d item(s)", reason, count)
            return
        self.on_drop(MessageDropped(at=self.loop.time(), reason=reason, count=count, topic=self.topic))

    def close(self) -> None:
        """Dispose the subscription and release the buffer; idempotent, calls nothing of the host's."""
        self.closed = True
        self.stopped = True
        self.error = None
        self.buffer.clear()
        self.dispose_subscription()
        self._wake()


class BufferedAsyncIterator(Generic[T]):
    """An ``async for`` view of a reactivex observable, through a bounded buffer.

    Built by :func:`to_async_iterable`; see there for the policy. Usable once: it is its own
    iterator, and after the end of the stream (or ``aclose()``) it stays exhausted.
    """

    __slots__ = ("__weakref__", "_state")

    def __init__(
        self,
        observable: Observable[T],
        *,
        maxsize: int,
        overflow: OverflowPolicy,
        on_drop: Callable[[MessageDropped], None] | None,
        topic: str | None,
    ) -> None:
        _check_limits(maxsize, overflow)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError("to_async_iterable() must be called on a running event loop") from None
        state: _Buffer[T] = _Buffer(maxsize, overflow, on_drop, topic, loop)
        self._state = state
        subscription = observable.subscribe(state.on_next, state.on_error, state.on_completed)
        if state.stopped:  # the source ended while subscribing (a cold observable)
            subscription.dispose()
        else:
            state.subscription = subscription

    @property
    def maxsize(self) -> int:
        """The buffer's capacity in items."""
        return self._state.maxsize

    @property
    def overflow(self) -> OverflowPolicy:
        """The overflow policy."""
        return self._state.overflow

    @property
    def buffered(self) -> int:
        """Items received and not yet consumed."""
        return len(self._state.buffer)

    @property
    def dropped(self) -> int:
        """Items dropped by the overflow policy since the start, reported or not."""
        return self._state.dropped

    @property
    def closed(self) -> bool:
        """Whether the iteration is over (end of stream consumed, ``aclose()`` or cancellation)."""
        return self._state.closed

    def __aiter__(self) -> BufferedAsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        """The next item; waits for one when the buffer is empty.

        Raises:
            StopAsyncIteration: the source completed (after its items) or the iterator is closed.
            BufferOverflow: under the ``"error"`` policy, after the items before the overflow.
            Exception: the source's error, after the items before it.
            asyncio.CancelledError: like an async generator, a cancelled wait closes the iterator.
        """
        state = self._state
        if state.buffer and not state.unreported:  # the fast path: no wait, nothing to report
            return state.buffer.popleft()
        return await state.next()

    async def aclose(self) -> None:
        """Stop: dispose the subscription, discard buffered items and report pending drops."""
        state = self._state
        state.close()
        if state.unreported:
            state.report()

    async def __aenter__(self) -> BufferedAsyncIterator[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # A plain ``break`` drops the iterator: dispose the source then (at once in CPython).
        state = getattr(self, "_state", None)
        if state is None or state.subscription is None:
            return
        state.stopped = state.closed = True  # nobody can be waiting: a wait holds the iterator
        state.buffer.clear()
        try:
            state.dispose_subscription()
        except Exception as exc:  # never raise from a finalizer
            log.debug("disposing a dropped async iterator failed: %r", exc)

    def __repr__(self) -> str:
        state = self._state
        status = "closed" if state.closed else "ended" if state.stopped else "open"
        return (
            f"<BufferedAsyncIterator {status} buffered={len(state.buffer)}/{state.maxsize} "
            f"overflow={state.overflow} dropped={state.dropped}>"
        )


def to_async_iterable(
    observable: Observable[T],
    *,
    # Limits
    maxsize: int = 1000,
    overflow: OverflowPolicy = "drop_oldest",
    # Reporting
    on_drop: Callable[[MessageDropped], None] | None = None,
    topic: str | None = None,
) -> BufferedAsyncIterator[T]:
    """Iterate over ``observable`` with ``async for``, through a bounded buffer.

    Subscribes **at once** (so nothing emitted after this call is missed; for ``client.watch``
    the subscribe goes out now) and must therefore be called on a running event loop. Items are
    buffered until consumed, up to ``maxsize``; beyond that ``overflow`` decides (see the module
    docstring). The source's completion ends the iteration and its error is raised, each after
    the items received before it. No task is created.

    The subscription is disposed when the stream ends, on ``aclose()`` / ``async with`` exit,
    when a waiting ``__anext__`` is cancelled, and when the iterator is dropped — which, for
    ``async for x in to_async_iterable(...): break``, is right after the loop in CPython. Hold a
    reference only inside ``async with`` (or ``contextlib.aclosing``) to keep disposal prompt.

    Args:
        observable: any reactivex observable, e.g. ``client.watch("trades.BTC")``.
        maxsize: the most items held for a slow consumer.
        overflow: ``"drop_oldest"``, ``"drop_newest"`` or ``"error"`` (:class:`BufferOverflow`).
        on_drop: called with one :class:`~rxws.events.MessageDropped` per burst of drops, in the
            consuming task; without it, each burst is logged as a warning on ``rxws.aio``.
        topic: a label for ``MessageDropped.topic`` and :class:`BufferOverflow`.

    Returns:
        The async iterator; also an async context manager.

    Raises:
        UsageError: a bad ``maxsize`` or ``overflow``, or no running event loop.

    Example::

        async with to_async_iterable(client.watch("trades.BTC"), maxsize=100) as ticks:
            async for tick in ticks:
                handle(tick)
    """
    return BufferedAsyncIterator(observable, maxsize=maxsize, overflow=overflow, on_drop=on_drop, topic=topic)


def _aioreactive() -> Any:
    """The aioreactive module, or a clear error naming the extra to install."""
    try:
        import aioreactive
    except ImportError as exc:
        raise ImportError("this adapter needs aioreactive: pip install 'rxws[aio]'") from exc
    return aioreactive


def _spawn(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], name: str) -> None:
    """Run ``coro`` on ``loop`` from any thread, keeping a strong reference until it ends."""
    try:
        on_loop = asyncio.get_running_loop() is loop
    except RuntimeError:
        on_loop = False
    # Off the loop, the returned concurrent future holds the task until it ends.
    task: asyncio.Task[None] | concurrent.futures.Future[None] = (
        loop.create_task(coro, name=name) if on_loop else asyncio.run_coroutine_threadsafe(coro, loop)
    )
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


class _Forwarder(Generic[T]):
    """One subscription of :func:`to_async_observable`: a pump awaiting each ``asend`` in turn."""

    def __init__(self, iterator: BufferedAsyncIterator[T], observer: AsyncObserver[T]) -> None:
        self._iterator = iterator
        self._observer = observer
        self._disposed = False
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._pump(), name="rxws.aio.forward"
        )
        _TASKS.add(self.task)
        self.task.add_done_callback(_TASKS.discard)

    async def _pump(self) -> None:
        observer = self._observer
        try:
            async for value in self._iterator:
                await observer.asend(value)
        except asyncio.CancelledError:
            self._iterator._state.close()
            raise
        except Exception as exc:
            self._iterator._state.close()
            if not self._disposed:
                await self._settle(observer.athrow(exc))
            return
        if not self._disposed:
            await self._settle(observer.aclose())

    @staticmethod
    async def _settle(ending: Coroutine[Any, Any, None]) -> None:
        try:
            await ending
        except Exception as exc:  # the observer's own failure: nothing downstream to tell
            log.warning("async observer raised while ending: %r", exc)

    async def dispose(self) -> None:
        """Stop forwarding: dispose the source, cancel the pump and wait until it is gone."""
        self._disposed = True
        self._iterator._state.close()
        task = self.task
        if task is asyncio.current_task() or task.done():
            return
        task.cancel()
        await asyncio.wait((task,))


def to_async_observable(
    observable: Observable[T],
    *,
    # Limits
    maxsize: int = 1000,
    overflow: OverflowPolicy = "drop_oldest",
    # Reporting
    on_drop: Callable[[MessageDropped], None] | None = None,
    topic: str | None = None,
) -> AsyncObservable[T]:
    """An aioreactive ``AsyncObservable`` of ``observable``'s items, honouring ``asend`` back-pressure.

    Each ``subscribe_async`` subscribes to ``observable`` at once and starts one forwarding task
    that sends items in order, awaiting each ``asend`` before sending the next; items arriving
    meanwhile wait in a bounded buffer with the same ``maxsize`` / ``overflow`` / ``on_drop``
    policy as :func:`to_async_iterable`. Completion becomes ``aclose()``, an error (or
    :class:`BufferOverflow`, or an exception raised by ``asend``) becomes ``athrow()``, after the
    items before it. ``dispose_async()`` disposes the source, cancels the forwarding task and
    returns once it is gone; the task also ends by itself after the stream ends.

    Args:
        observable: any reactivex observable, e.g. ``client.watch("trades.BTC")``.
        maxsize: the most items held while ``asend`` is busy.
        overflow: ``"drop_oldest"``, ``"drop_newest"`` or ``"error"``.
        on_drop: called with one :class:`~rxws.events.MessageDropped` per burst of drops.
        topic: a label for ``MessageDropped.topic`` and :class:`BufferOverflow`.

    Returns:
        An ``aioreactive.AsyncObservable``; compose it with ``aioreactive.pipe`` and its operators.

    Raises:
        ImportError: aioreactive is not installed.
        UsageError: a bad ``maxsize`` or ``overflow``.
    """
    aio = _aioreactive()
    _check_limits(maxsize, overflow)

    async def subscribe_async(observer: AsyncObserver[T]) -> AsyncDisposable:
        iterator = BufferedAsyncIterator(
            observable, maxsize=maxsize, overflow=overflow, on_drop=on_drop, topic=topic
        )
        forwarder = _Forwarder(iterator, observer)
        disposable: AsyncDisposable = aio.AsyncDisposable.create(forwarder.dispose)
        return disposable

    result: AsyncObservable[T] = aio.AsyncAnonymousObservable(subscribe_async)
    return result


class _Backward(Generic[T]):
    """One subscription of :func:`from_async_observable`."""

    def __init__(self, observer: abc.ObserverBase[T], loop: asyncio.AbstractEventLoop) -> None:
        self._observer = observer
        self._loop = loop
        self._disposed = False
        self._subscription: AsyncDisposable | None = None

    async def asend(self, value: T) -> None:
        if not self._disposed:
            self._observer.on_next(value)

    async def athrow(self, error: Exception) -> None:
        if not self._disposed:
            self._disposed = True
            self._observer.on_error(error)

    async def aclose(self) -> None:
        if not self._disposed:
            self._disposed = True
            self._observer.on_completed()

    async def run(self, source: AsyncObservable[T], aio: Any) -> None:
        try:
            subscription = await source.subscribe_async(
                aio.AsyncAnonymousObserver(self.asend, self.athrow, self.aclose)
            )
        except Exception as exc:
            await self.athrow(exc)
            return
        if self._disposed:
            await subscription.dispose_async()
        else:
            self._subscription = subscription

    def dispose(self) -> None:
        self._disposed = True
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            _spawn(self._loop, subscription.dispose_async(), "rxws.aio.dispose")


def from_async_observable(
    async_observable: AsyncObservable[T], *, loop: asyncio.AbstractEventLoop | None = None
) -> Observable[T]:
    """A reactivex ``Observable`` of an aioreactive ``AsyncObservable``'s items.

    Subscribing starts a short task on ``loop`` that awaits ``subscribe_async``; items,
    ``athrow`` and ``aclose`` reach the reactivex observer on that loop as ``on_next``,
    ``on_error`` and ``on_completed``. The observer is not told anything after disposal; the
    source's ``dispose_async`` runs in a task that ends as soon as it returns. The reactivex side
    cannot push back, so ``asend`` returns as soon as the observer has handled the item.

    Args:
        async_observable: the aioreactive source.
        loop: the event loop the source lives on; by default the loop running at subscribe
            time. Subscribing from another thread needs it.

    Returns:
        A cold reactivex observable: each subscription subscribes to the source anew.

    Raises:
        ImportError: aioreactive is not installed.
        UsageError: subscribed with no ``loop`` and no running event loop (delivered to ``on_error``).
    """
    aio = _aioreactive()

    def subscribe(
        observer: abc.ObserverBase[T], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        target = loop
        if target is None:
            try:
                target = asyncio.get_running_loop()
            except RuntimeError:
                raise UsageError(
                    "from_async_observable(): subscribe on a running loop or pass loop="
                ) from None
        link: _Backward[T] = _Backward(observer, target)
        _spawn(target, link.run(async_observable, aio), "rxws.aio.subscribe")
        return Disposable(link.dispose)

    return Observable(subscribe)
