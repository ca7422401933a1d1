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
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxws.events import MessageDropped
from rxws.exceptions import UsageError

if TYPE_CHECKING:
    from aioreactive import AsyncDisposable, AsyncObservable, AsyncObserver
from rxws._aio_buffer import (
    BufferedAsyncIterator,
    BufferOverflow,
    OverflowPolicy,
    _check_limits,
    to_async_iterable,
)

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

# Tasks this module started and not yet finished; asyncio keeps only weak references to tasks.
_TASKS: set[Any] = set()


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
