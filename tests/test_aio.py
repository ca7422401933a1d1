"""Tests for rxws.aio: ``async for`` and aioreactive adapters over reactivex streams.

Tests that need aioreactive ask for the ``aio`` fixture, which skips them where aioreactive is
missing. ``make test`` runs this file in both environments (.venv with reactivex 6 and no
aioreactive, .venv-aio with aioreactive 0.20 and reactivex 4.1), so nothing is skipped overall.
No test sleeps on a guess: they await events, futures or venue conditions, and at most yield
with ``asyncio.sleep(0)`` while waiting for a condition.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject

from rxws import WebSocketClient
from rxws.aio import (
    BufferedAsyncIterator,
    BufferOverflow,
    from_async_observable,
    to_async_iterable,
    to_async_observable,
)
from rxws.events import MessageDropped
from rxws.exceptions import RxwsError, UsageError
from rxws.protocols import GenericJson
from rxws.testing import MockVenue


@pytest.fixture
def aio() -> ModuleType:
    return pytest.importorskip("aioreactive")


async def no_task_left() -> None:
    """Wait (yielding only) until the current task is the only one left, then assert it."""
    current = asyncio.current_task()
    for _ in range(200):
        if asyncio.all_tasks() == {current}:
            return
        await asyncio.sleep(0)
    assert asyncio.all_tasks() == {current}


async def until(condition: Callable[[], object]) -> None:
    """Yield to the loop until ``condition()`` holds (a bounded number of times), then assert it."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition()


async def collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


# ------------------------------------------------------------------------------------------------
# to_async_iterable over a reactivex Subject


async def test_items_arrive_in_order_and_completion_ends_the_iteration() -> None:
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject)
    for n in range(5):
        subject.on_next(n)
    subject.on_completed()
    assert await collect(iterator) == [0, 1, 2, 3, 4]
    assert iterator.closed
    assert not subject.observers
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


async def test_consumer_waiting_is_woken_by_each_item() -> None:
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject)
    pending = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    assert not pending.done()
    subject.on_next(7)
    assert await pending == 7
    await iterator.aclose()


async def test_source_error_is_raised_after_the_buffered_items() -> None:
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject)
    subject.on_next(1)
    subject.on_next(2)
    subject.on_error(ValueError("boom"))
    received = []
    with pytest.raises(ValueError, match="boom"):
        async for item in iterator:
            received.append(item)
    assert received == [1, 2]
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


async def test_cold_observable_emitting_while_subscribing() -> None:
    assert await collect(to_async_iterable(reactivex.of(1, 2, 3))) == [1, 2, 3]


async def test_drop_oldest_keeps_the_newest_items_and_reports_one_burst() -> None:
    drops: list[MessageDropped] = []
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject, maxsize=3, overflow="drop_oldest", on_drop=drops.append, topic="t")
    for n in range(1, 6):
        subject.on_next(n)
    subject.on_completed()
    assert drops == []  # reported in the consumer, not in the producer's call
    assert await collect(iterator) == [3, 4, 5]
    assert len(drops) == 1
    event = drops[0]
    assert (event.kind, event.count, event.topic) == ("message_dropped", 2, "t")
    assert "drop_oldest" in event.reason
    assert iterator.dropped == 2


async def test_drop_newest_keeps_the_oldest_items() -> None:
    drops: list[MessageDropped] = []
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject, maxsize=3, overflow="drop_newest", on_drop=drops.append)
    for n in range(1, 6):
        subject.on_next(n)
    subject.on_completed()
    assert await collect(iterator) == [1, 2, 3]
    assert [d.count for d in drops] == [2]


async def test_drops_are_counted_per_burst() -> None:
    drops: list[MessageDropped] = []
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject, maxsize=2, on_drop=drops.append)
    for n in range(4):  # 0 and 1 make room for 2 and 3
        subject.on_next(n)
    assert await iterator.__anext__() == 2
    assert [d.count for d in drops] == [2]
    subject.on_next(4)  # fits
    subject.on_next(5)  # drops 3
    assert await iterator.__anext__() == 4
    assert await iterator.__anext__() == 5
    assert [d.count for d in drops] == [2, 1]
    assert iterator.dropped == 3
    await iterator.aclose()


async def test_pending_drops_are_reported_on_aclose() -> None:
    drops: list[MessageDropped] = []
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject, maxsize=1, on_drop=drops.append)
    subject.on_next(1)
    subject.on_next(2)
    await iterator.aclose()
    assert [d.count for d in drops] == [1]
    assert iterator.buffered == 0


async def test_drops_without_on_drop_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject, maxsize=1)
    subject.on_next(1)
    subject.on_next(2)
    with caplog.at_level(logging.WARNING, logger="rxws.aio"):
        assert await iterator.__anext__() == 2
    assert "dropped 1 item" in caplog.text
    await iterator.aclose()


async def test_error_policy_disposes_the_source_and_raises_after_the_buffer() -> None:
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject, maxsize=2, overflow="error", topic="t")
    for n in range(1, 4):
        subject.on_next(n)
    assert not subject.observers  # no more memory spent on a consumer that fell behind
    received = []
    with pytest.raises(BufferOverflow) as caught:
        async for item in iterator:
            received.append(item)
    assert received == [1, 2]
    assert caught.value.maxsize == 2
    assert caught.value.topic == "t"
    assert isinstance(caught.value, RxwsError)


async def test_break_disposes_the_subscription_and_leaves_no_task() -> None:
    subject: Subject[int] = Subject()
    asyncio.get_running_loop().call_soon(subject.on_next, 1)  # once the loop below waits
    async for item in to_async_iterable(subject):
        assert item == 1
        break
    assert not subject.observers
    await no_task_left()


async def test_async_with_disposes_on_exit() -> None:
    subject: Subject[int] = Subject()
    async with to_async_iterable(subject) as iterator:
        subject.on_next(1)
        assert await iterator.__anext__() == 1
    assert not subject.observers
    assert iterator.closed
    await iterator.aclose()  # idempotent


async def test_cancelling_the_consumer_disposes_the_subscription() -> None:
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject)
    started = asyncio.Event()

    async def consume() -> None:
        started.set()
        async for _ in iterator:
            pass

    task = asyncio.create_task(consume())
    await started.wait()
    await asyncio.sleep(0)  # let it block in __anext__
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not subject.observers
    assert iterator.closed
    await no_task_left()


async def test_aclose_wakes_a_waiting_consumer() -> None:
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject)
    waiting = asyncio.ensure_future(collect(iterator))
    await asyncio.sleep(0)
    await iterator.aclose()
    assert await waiting == []
    assert not subject.observers


async def test_items_from_another_thread_are_marshalled_in_order() -> None:
    subject: Subject[int] = Subject()
    iterator = to_async_iterable(subject, maxsize=10_000)

    def produce() -> None:
        for n in range(500):
            subject.on_next(n)
        subject.on_completed()

    thread = threading.Thread(target=produce)
    thread.start()
    assert await collect(iterator) == list(range(500))
    thread.join()


def test_needs_a_running_loop() -> None:
    with pytest.raises(UsageError, match="running event loop"):
        to_async_iterable(Subject())


@pytest.mark.parametrize(("maxsize", "overflow"), [(0, "drop_oldest"), (True, "error"), (10, "block")])
async def test_bad_limits_are_refused(maxsize: Any, overflow: Any) -> None:
    with pytest.raises(UsageError):
        to_async_iterable(Subject(), maxsize=maxsize, overflow=overflow)


# ------------------------------------------------------------------------------------------------
# to_async_iterable over a real client and MockVenue


@pytest.mark.integration
async def test_async_for_over_a_watch_then_break_unsubscribes() -> None:
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson())
        await client.connect()
        ticks = to_async_iterable(client.watch("t"), maxsize=100, topic="t")
        assert isinstance(ticks, BufferedAsyncIterator)
        await venue.wait_subscribed("t")
        for n in range(5):
            await venue.publish("t", {"n": n})
        received = []
        async for message in ticks:
            received.append(message["data"]["n"])
            if len(received) == 5:
                break
        assert received == [0, 1, 2, 3, 4]
        del ticks  # a plain break: the dropped iterator disposes its subscription
        await venue.wait_for(lambda: all("t" not in c.topics for c in venue.connections))
        await client.close()
    await no_task_left()


@pytest.mark.integration
async def test_client_close_completes_the_iteration() -> None:
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson())
        await client.connect()
        async with to_async_iterable(client.watch("t")) as ticks:
            await venue.wait_subscribed("t")
            await venue.publish("t", {"n": 1})
            first = await ticks.__anext__()
            assert first["data"] == {"n": 1}
            await client.close()
            assert await collect(ticks) == []
    await no_task_left()


# ------------------------------------------------------------------------------------------------
# to_async_observable and from_async_observable (aioreactive)


async def test_aioreactive_operators_compose_on_an_rxws_watch(aio: ModuleType) -> None:
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson())
        await client.connect()
        doubled_evens = aio.pipe(
            to_async_observable(client.watch("t")),
            aio.map(lambda m: m["data"]["n"]),
            aio.filter(lambda n: n % 2 == 0),
            aio.map(lambda n: n * 2),
        )
        received: list[int] = []
        done = asyncio.Event()

        async def asend(value: int) -> None:
            received.append(value)
            if len(received) == 3:
                done.set()

        subscription = await doubled_evens.subscribe_async(aio.AsyncAnonymousObserver(asend))
        await venue.wait_subscribed("t")
        for n in range(6):
            await venue.publish("t", {"n": n})
        await done.wait()
        assert received == [0, 4, 8]
        await subscription.dispose_async()
        await venue.wait_for(lambda: all("t" not in c.topics for c in venue.connections))
        await client.close()
    await no_task_left()


async def test_asend_back_pressure_keeps_order_one_at_a_time(aio: ModuleType) -> None:
    subject: Subject[int] = Subject()
    gates: list[asyncio.Future[None]] = []
    received: list[int] = []
    in_flight = 0
    most_in_flight = 0
    arrived = asyncio.Event()
    closed = asyncio.Event()

    async def asend(value: int) -> None:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        received.append(value)
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gates.append(gate)
        arrived.set()
        await gate
        in_flight -= 1

    async def aclose() -> None:
        closed.set()

    subscription = await to_async_observable(subject).subscribe_async(
        aio.AsyncAnonymousObserver(asend, None, aclose)
    )
    for n in range(5):
        subject.on_next(n)
    subject.on_completed()
    for expected in range(5):
        await arrived.wait()
        arrived.clear()
        assert received == list(range(expected + 1))  # the next item waits for this asend
        gates[-1].set_result(None)
    await closed.wait()
    assert most_in_flight == 1
    await subscription.dispose_async()
    await no_task_left()


async def test_overflow_while_asend_is_busy_drops_and_reports(aio: ModuleType) -> None:
    subject: Subject[int] = Subject()
    drops: list[MessageDropped] = []
    received: list[int] = []
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    first = asyncio.Event()
    closed = asyncio.Event()

    async def asend(value: int) -> None:
        received.append(value)
        first.set()
        await gate

    async def aclose() -> None:
        closed.set()

    xs = to_async_observable(subject, maxsize=2, on_drop=drops.append)
    subscription = await xs.subscribe_async(aio.AsyncAnonymousObserver(asend, None, aclose))
    subject.on_next(1)
    await first.wait()  # 1 is inside asend; the buffer is empty
    for n in range(2, 6):
        subject.on_next(n)
    subject.on_completed()
    gate.set_result(None)
    await closed.wait()
    assert received == [1, 4, 5]
    assert [d.count for d in drops] == [2]
    await subscription.dispose_async()
    await no_task_left()


async def test_source_error_becomes_athrow_after_the_items(aio: ModuleType) -> None:
    subject: Subject[int] = Subject()
    received: list[int] = []
    failed: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

    async def asend(value: int) -> None:
        received.append(value)

    async def athrow(error: Exception) -> None:
        failed.set_result(error)

    await to_async_observable(subject).subscribe_async(aio.AsyncAnonymousObserver(asend, athrow))
    subject.on_next(1)
    subject.on_error(ValueError("boom"))
    error = await failed
    assert isinstance(error, ValueError)
    assert received == [1]
    await no_task_left()


async def test_error_policy_becomes_athrow_buffer_overflow(aio: ModuleType) -> None:
    subject: Subject[int] = Subject()
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
    received: list[int] = []

    async def asend(value: int) -> None:
        received.append(value)
        await gate

    async def athrow(error: Exception) -> None:
        failed.set_result(error)

    xs = to_async_observable(subject, maxsize=1, overflow="error")
    await xs.subscribe_async(aio.AsyncAnonymousObserver(asend, athrow))
    for n in range(3):  # 0 is taken by the pump only once it runs: 0 buffered, 1 overflows
        subject.on_next(n)
    assert not subject.observers
    gate.set_result(None)
    assert isinstance(await failed, BufferOverflow)
    assert received == [0]
    await no_task_left()


async def test_dispose_async_while_asend_is_busy_leaves_no_task(aio: ModuleType) -> None:
    subject: Subject[int] = Subject()
    inside = asyncio.Event()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ended: list[str] = []

    async def asend(value: int) -> None:
        inside.set()
        await never

    async def aclose() -> None:
        ended.append("aclose")

    subscription = await to_async_observable(subject).subscribe_async(
        aio.AsyncAnonymousObserver(asend, None, aclose)
    )
    subject.on_next(1)
    await inside.wait()
    await subscription.dispose_async()
    assert not subject.observers
    assert ended == []  # disposal is not completion
    await no_task_left()


async def test_from_async_observable_forwards_items_errors_and_completion(aio: ModuleType) -> None:
    source = aio.AsyncSubject()
    received: list[int] = []
    completed = asyncio.Event()
    from_async_observable(source).subscribe(received.append, on_completed=completed.set)
    await until(lambda: source._observers)  # the subscribe task has run
    for n in range(3):
        await source.asend(n)
    await source.aclose()
    await completed.wait()
    assert received == [0, 1, 2]

    failing = aio.AsyncSubject()
    error: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
    from_async_observable(failing).subscribe(on_error=error.set_result)
    await until(lambda: failing._observers)
    await failing.athrow(ValueError("boom"))
    assert isinstance(await error, ValueError)


async def test_from_async_observable_dispose_unsubscribes_and_leaves_no_task(aio: ModuleType) -> None:
    source = aio.AsyncSubject()
    received: list[int] = []
    disposable = from_async_observable(source).subscribe(received.append)
    await until(lambda: source._observers)
    await source.asend(1)
    disposable.dispose()
    await source.asend(2)  # not delivered after dispose, even before dispose_async has run
    await no_task_left()
    assert received == [1]
    assert source._observers == []


async def test_from_async_observable_disposed_before_subscribed(aio: ModuleType) -> None:
    source = aio.AsyncSubject()
    from_async_observable(source).subscribe(print).dispose()
    await no_task_left()
    assert source._observers == []


async def test_round_trip_keeps_order_with_reactivex_operators(aio: ModuleType) -> None:
    subject: Subject[int] = Subject()
    received: list[int] = []
    completed = asyncio.Event()
    there = to_async_observable(subject)
    back = from_async_observable(aio.pipe(there, aio.map(lambda n: n + 1)))
    back.pipe(ops.filter(lambda n: n % 2 == 1)).subscribe(received.append, on_completed=completed.set)
    await until(lambda: subject.observers)  # the subscribe task has reached the reactivex source
    for n in range(10):
        subject.on_next(n)
    subject.on_completed()
    await completed.wait()
    assert received == [1, 3, 5, 7, 9]
    await no_task_left()


def test_from_async_observable_needs_a_loop_when_subscribed(aio: ModuleType) -> None:
    errors: list[Exception] = []
    from_async_observable(aio.AsyncSubject()).subscribe(on_error=errors.append)
    assert len(errors) == 1
    assert isinstance(errors[0], UsageError)


async def test_from_async_observable_subscribed_from_another_thread(aio: ModuleType) -> None:
    loop = asyncio.get_running_loop()
    source = aio.AsyncSubject()
    received: list[tuple[int, bool]] = []

    def on_loop() -> bool:
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    def subscribe() -> None:
        from_async_observable(source, loop=loop).subscribe(lambda n: received.append((n, on_loop())))

    thread = threading.Thread(target=subscribe)
    thread.start()
    thread.join()  # subscribe() only schedules work on the loop: it does not wait for it
    await until(lambda: source._observers)
    await source.asend(1)
    assert received == [(1, True)]  # delivered on the source's loop
    await source.aclose()
    await no_task_left()
