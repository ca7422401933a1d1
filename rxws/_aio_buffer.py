"""The bounded buffer between a pushing observable and a pulling consumer (see :mod:`rxws.aio`).

:class:`BufferedAsyncIterator` holds at most ``maxsize`` items under a stated overflow policy and
reports what it dropped; :func:`to_async_iterable` builds one. Re-exported by :mod:`rxws.aio`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, NoReturn, TypeVar

from reactivex import Observable, abc

from rxws.events import MessageDropped
from rxws.exceptions import RxwsError, UsageError

if TYPE_CHECKING:
    pass

__all__ = ["BufferOverflow", "BufferedAsyncIterator", "OverflowPolicy", "to_async_iterable"]

log = logging.getLogger("rxws.aio")

T = TypeVar("T")

OverflowPolicy = Literal["drop_oldest", "drop_newest", "error"]
"""What a full buffer does with the next item."""

_POLICIES: frozenset[str] = frozenset(("drop_oldest", "drop_newest", "error"))


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
