"""Marble tests for rxws.operators.retry_with_backoff, in virtual time."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxws.core.backoff import ExponentialBackoff
from rxws.events import ReconnectDenied, ReconnectProposed
from rxws.exceptions import ReconnectDeniedError
from rxws.operators import retry_with_backoff

on_next, on_error, on_completed = ReactiveTest.on_next, ReactiveTest.on_error, ReactiveTest.on_completed

BOOM = ConnectionError("boom")


def live_actions(scheduler: TestScheduler) -> int:
    """Scheduled actions that have not been cancelled."""
    return sum(1 for item, _ in scheduler._queue.items if not item.is_cancelled())


def flaky(scheduler: TestScheduler, up_for: float = 20.0) -> Any:
    """A cold source: 'a' 10 s after each subscription, then an error ``up_for`` s later."""
    return scheduler.create_cold_observable(on_next(10, "a"), on_error(10 + up_for, BOOM))


def test_retries_after_each_delay_until_exhausted_with_the_last_error() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    proposals: list[ReconnectProposed] = []
    denied: list[ReconnectDenied] = []
    policy = ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", max_attempts=2, stable_after=100.0)
    results = scheduler.start(
        lambda: source.pipe(retry_with_backoff(policy, on_proposal=proposals.append, on_denied=denied.append))
    )
    # 200 subscribe, a@210, error@230 -> wait 1 -> 231 subscribe, a@241, error@261 -> wait 2
    # -> 263 subscribe, a@273, error@293 -> exhausted: the last error itself.
    assert results.messages == [on_next(210, "a"), on_next(241, "a"), on_next(273, "a"), on_error(293, BOOM)]
    assert results.messages[-1].value.exception is BOOM
    assert source.subscriptions == [Subscription(200, 230), Subscription(231, 261), Subscription(263, 293)]
    assert [(p.attempt, p.delay, p.at, p.cause) for p in proposals] == [
        (1, 1.0, 230.0, "ConnectionError: boom"),
        (2, 2.0, 261.0, "ConnectionError: boom"),
    ]
    assert [(d.attempt, d.why, d.at) for d in denied] == [(2, "backoff exhausted", 293.0)]
    assert live_actions(scheduler) == 0


@pytest.mark.parametrize(
    ("jitter", "seed"),
    [("none", None), ("full", 1), ("equal", 2), ("decorrelated", 3)],
)
def test_each_jitter_mode_with_a_fixed_seed(jitter: Any, seed: int | None) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(5, BOOM))
    policy = ExponentialBackoff(1.0, 2.0, 8.0, jitter=jitter, max_attempts=5, stable_after=0.0, seed=seed)
    expected = policy.start()
    want = [expected.next_delay() for _ in range(5)]
    proposals: list[ReconnectProposed] = []
    scheduler.start(lambda: source.pipe(retry_with_backoff(policy, on_proposal=proposals.append)))
    assert [p.delay for p in proposals] == want
    # Each re-subscription starts `delay` after the error (the proposal's time).
    starts = [s.subscribe for s in source.subscriptions]
    assert len(starts) == 6
    for p, start in zip(proposals, starts[1:], strict=True):
        assert start == pytest.approx(p.at + p.delay, abs=1e-5)


def test_attempts_reset_only_after_stable_after() -> None:
    def delays(stable_after: float, up_for: float) -> list[float]:
        scheduler = TestScheduler()
        source = flaky(scheduler, up_for=up_for)
        policy = ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", stable_after=stable_after)
        proposals: list[ReconnectProposed] = []
        scheduler.start(
            lambda: source.pipe(retry_with_backoff(policy, on_proposal=proposals.append)),
            disposed=400,
        )
        return [p.delay for p in proposals][:4]

    # Up 20 s between the first item and the error: stable when stable_after <= 20.
    assert delays(stable_after=20.0, up_for=20.0) == [1.0, 1.0, 1.0, 1.0]
    assert delays(stable_after=20.01, up_for=20.0) == [1.0, 2.0, 4.0, 8.0]
    # A venue that accepts and closes at once never looks stable.
    assert delays(stable_after=1.0, up_for=0.0) == [1.0, 2.0, 4.0, 8.0]


def test_no_item_means_no_connection_and_no_reset() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(50, BOOM))  # fails after 50 s, silently
    policy = ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", stable_after=1.0, max_attempts=3)
    proposals: list[ReconnectProposed] = []
    scheduler.start(lambda: source.pipe(retry_with_backoff(policy, on_proposal=proposals.append)))
    assert [p.delay for p in proposals] == [1.0, 2.0, 4.0]


def test_approval_denied_at_attempt_3_stops_cleanly() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    policy = ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", stable_after=100.0)
    asked: list[int] = []
    denied: list[ReconnectDenied] = []

    def approve(p: ReconnectProposed) -> bool:
        asked.append(p.attempt)
        return p.attempt < 3

    results = scheduler.start(
        lambda: source.pipe(retry_with_backoff(policy, approve=approve, on_denied=denied.append))
    )
    assert asked == [1, 2, 3]
    assert [m.time for m in results.messages] == [210, 241, 273, 293]
    err = results.messages[-1].value.exception
    assert isinstance(err, ReconnectDeniedError)
    assert err.__cause__ is BOOM
    assert "attempt 3" in str(err)
    assert [(d.attempt, d.why) for d in denied] == [(3, "denied by approve")]
    assert len(source.subscriptions) == 3
    assert live_actions(scheduler) == 0


def test_retry_on_false_passes_the_error_at_once() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    proposals: list[ReconnectProposed] = []
    results = scheduler.start(
        lambda: source.pipe(
            retry_with_backoff(
                ExponentialBackoff(),
                retry_on=lambda exc: not isinstance(exc, ConnectionError),
                on_proposal=proposals.append,
            )
        )
    )
    assert results.messages == [on_next(210, "a"), on_error(230, BOOM)]
    assert proposals == []


def _raising_approvals() -> dict[str, Any]:
    def sync(p: ReconnectProposed) -> bool:
        raise KeyError("host bug")

    def observable(p: ReconnectProposed) -> Any:
        return reactivex.throw(KeyError("host bug"))

    return {"sync": sync, "observable": observable}


@pytest.mark.parametrize("form", ["sync", "observable"])
def test_approve_raising_is_a_denial_with_the_reason(form: str, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    denied: list[ReconnectDenied] = []
    approve = _raising_approvals()[form]
    with caplog.at_level("WARNING", logger="rxws.reconnect"):
        results = scheduler.start(
            lambda: source.pipe(
                retry_with_backoff(ExponentialBackoff(), approve=approve, on_denied=denied.append)
            )
        )
    err = results.messages[-1].value.exception
    assert isinstance(err, ReconnectDeniedError) and err.__cause__ is BOOM
    assert "approve raised KeyError: 'host bug'" in str(err)
    assert results.messages[-1].time == 230
    assert [(d.attempt, d.why, d.at) for d in denied] == [(1, "approve raised KeyError: 'host bug'", 230.0)]
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "approve raised" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is not None
    assert live_actions(scheduler) == 0


async def test_async_approve_raising_is_the_same_denial(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(loop)

    async def approve(p: ReconnectProposed) -> bool:
        raise KeyError("host bug")

    denied: list[ReconnectDenied] = []
    failed: asyncio.Future[Exception] = loop.create_future()
    with caplog.at_level("WARNING", logger="rxws.reconnect"):
        reactivex.throw(BOOM).pipe(
            retry_with_backoff(ExponentialBackoff(), approve=approve, on_denied=denied.append)
        ).subscribe(on_error=failed.set_result, scheduler=scheduler)
        err = await asyncio.wait_for(failed, 5)
    assert isinstance(err, ReconnectDeniedError) and err.__cause__ is BOOM
    assert [(d.attempt, d.why) for d in denied] == [(1, "approve raised KeyError: 'host bug'")]
    assert any("approve raised" in r.getMessage() and r.exc_info for r in caplog.records)


def test_retry_on_raising_is_a_denial_too() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    denied: list[ReconnectDenied] = []

    def retry_on(exc: Exception) -> bool:
        raise ValueError("host bug")

    results = scheduler.start(
        lambda: source.pipe(
            retry_with_backoff(ExponentialBackoff(), retry_on=retry_on, on_denied=denied.append)
        )
    )
    err = results.messages[-1].value.exception
    assert isinstance(err, ReconnectDeniedError) and err.__cause__ is BOOM
    assert [(d.attempt, d.why) for d in denied] == [(1, "retry_on raised ValueError: host bug")]


def test_completion_passes_through() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(10, 1), on_completed(20))
    results = scheduler.start(lambda: source.pipe(retry_with_backoff(ExponentialBackoff())))
    assert results.messages == [on_next(210, 1), on_completed(220)]


def test_observable_approval_delayed_in_virtual_time() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    policy = ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", stable_after=100.0)
    answers: dict[int, Any] = {}

    def approve(p: ReconnectProposed) -> reactivex.Observable[bool]:
        # The host thinks for 5 s; approves twice, then completes without answering (= deny).
        answer = (
            scheduler.create_cold_observable(on_next(5, True), on_completed(6))
            if p.attempt < 3
            else scheduler.create_cold_observable(on_completed(5))
        )
        answers[p.attempt] = answer
        return answer

    results = scheduler.start(lambda: source.pipe(retry_with_backoff(policy, approve=approve)))
    # error@230 -> answer@235 -> +1 s -> 236 subscribe, a@246, error@266 -> answer@271 -> +2 s
    # -> 273 subscribe, a@283, error@303 -> empty answer@308 -> denied.
    assert [s.subscribe for s in source.subscriptions] == [200, 236, 273]
    assert [m.time for m in results.messages] == [210, 246, 283, 308]
    assert isinstance(results.messages[-1].value.exception, ReconnectDeniedError)
    # The approval subscription is dropped as soon as the first value arrives.
    assert answers[1].subscriptions == [Subscription(230, 235)]


def test_disposal_during_the_delay_leaves_nothing_scheduled() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    policy = ExponentialBackoff(50.0, 2.0, 60.0, jitter="none")
    results = scheduler.start(lambda: source.pipe(retry_with_backoff(policy)), disposed=240)
    assert results.messages == [on_next(210, "a")]
    assert source.subscriptions == [Subscription(200, 230)]
    assert live_actions(scheduler) == 0


def test_disposal_during_an_observable_approval_unsubscribes_it() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    answer = scheduler.create_cold_observable(on_next(100, True))
    results = scheduler.start(
        lambda: source.pipe(retry_with_backoff(ExponentialBackoff(), approve=lambda p: answer)),
        disposed=250,
    )
    assert results.messages == [on_next(210, "a")]
    assert answer.subscriptions == [Subscription(230, 250)]
    assert len(source.subscriptions) == 1
    assert live_actions(scheduler) == 0


def test_each_subscription_has_its_own_backoff_state() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    policy = ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", max_attempts=1, stable_after=100.0)
    shared = source.pipe(retry_with_backoff(policy))
    first = scheduler.create_observer()
    second = scheduler.create_observer()
    shared.subscribe(first, scheduler=scheduler)
    shared.subscribe(second, scheduler=scheduler)
    scheduler.start()
    assert [m.time for m in first.messages] == [m.time for m in second.messages] == [10, 41, 61]


async def test_async_approve_on_the_asyncio_scheduler() -> None:
    loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(loop)
    attempts = 0

    def subscribe_source(observer: Any, _: Any = None) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            observer.on_error(BOOM)
        else:
            observer.on_next("up")
            observer.on_completed()
        return reactivex.disposable.Disposable()

    async def approve(p: ReconnectProposed) -> bool:
        await asyncio.sleep(0)
        return True

    policy = ExponentialBackoff(0.001, 1.0, 0.001, jitter="none")
    done: asyncio.Future[list[Any]] = loop.create_future()
    got: list[Any] = []
    reactivex.create(subscribe_source).pipe(retry_with_backoff(policy, approve=approve)).subscribe(
        got.append, done.set_exception, lambda: done.set_result(got), scheduler=scheduler
    )
    assert await asyncio.wait_for(done, 5) == ["up"]
    assert attempts == 3


async def test_async_denial_and_cancellation_on_dispose() -> None:
    loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(loop)
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def slow(p: ReconnectProposed) -> bool:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return True

    sub = (
        reactivex.throw(BOOM)
        .pipe(retry_with_backoff(ExponentialBackoff(), approve=slow))
        .subscribe(scheduler=scheduler, on_error=lambda e: None)
    )
    await asyncio.wait_for(started.wait(), 5)
    sub.dispose()
    await asyncio.wait_for(cancelled.wait(), 5)

    async def no(p: ReconnectProposed) -> bool:
        return False

    failed: asyncio.Future[Exception] = loop.create_future()
    reactivex.throw(BOOM).pipe(retry_with_backoff(ExponentialBackoff(), approve=no)).subscribe(
        on_error=failed.set_result, scheduler=scheduler
    )
    err = await asyncio.wait_for(failed, 5)
    assert isinstance(err, ReconnectDeniedError) and err.__cause__ is BOOM


def test_async_approve_without_a_loop_is_an_error() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)

    async def approve(p: ReconnectProposed) -> bool:
        return True

    denied: list[ReconnectDenied] = []
    results = scheduler.start(
        lambda: source.pipe(
            retry_with_backoff(ExponentialBackoff(), approve=approve, on_denied=denied.append)
        )
    )
    err = results.messages[-1].value.exception
    assert isinstance(err, ReconnectDeniedError) and "no asyncio loop" in str(err)
    assert len(denied) == 1 and denied[0].why.startswith("approve could not run")


def test_works_inside_a_pipeline_with_map() -> None:
    scheduler = TestScheduler()
    source = flaky(scheduler)
    policy = ExponentialBackoff(1.0, jitter="none", max_attempts=1, stable_after=100.0)
    results = scheduler.start(
        lambda: source.pipe(ops.map(str.upper), retry_with_backoff(policy), ops.take(2))
    )
    assert results.messages == [on_next(210, "A"), on_next(241, "A"), on_completed(241)]


def test_async_approve_from_another_thread_runs_on_the_schedulers_loop() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        scheduler = AsyncIOThreadSafeScheduler(loop)
        approved_on: list[asyncio.AbstractEventLoop] = []
        finished = threading.Event()
        got: list[Any] = []
        attempts = 0

        def subscribe_source(observer: Any, _: Any = None) -> Any:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                observer.on_error(BOOM)  # on the test's thread: no running loop here
            else:
                observer.on_next("up")
                observer.on_completed()
            return reactivex.disposable.Disposable()

        async def approve(p: ReconnectProposed) -> bool:
            approved_on.append(asyncio.get_running_loop())
            return True

        policy = ExponentialBackoff(0.001, 1.0, 0.001, jitter="none")
        reactivex.create(subscribe_source).pipe(retry_with_backoff(policy, approve=approve)).subscribe(
            got.append, lambda e: finished.set(), finished.set, scheduler=scheduler
        )
        assert finished.wait(5)
        assert got == ["up"] and approved_on == [loop]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_async_approval_that_finishes_before_its_handle_is_stored_still_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race seen under load: on another thread's loop, the approval finished and its retry timer
    was stored before the approval's own handle, whose storing then disposed the timer. Forced here:
    the coroutine runs to completion inside run_coroutine_threadsafe, and the scheduler delivers the
    answer inline, so ``decided`` stores the timer before ``_await_on_loop`` returns."""
    import concurrent.futures

    def finished_at_once(coro: Any, _loop: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            coro.send(None)
        except StopIteration as stop:
            future.set_result(stop.value)
        return future

    class InlineTestScheduler(TestScheduler):
        def schedule(self, action: Any, state: Any = None) -> Any:  # deliver at once, inline
            return action(self, state)

    monkeypatch.setattr(asyncio, "run_coroutine_threadsafe", finished_at_once)
    scheduler = InlineTestScheduler()
    loop = asyncio.new_event_loop()  # only named: the approval "runs" there
    scheduler._loop = loop  # type: ignore[attr-defined]
    attempts = 0

    def subscribe_source(observer: Any, _: Any = None) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            observer.on_error(BOOM)
        else:
            observer.on_next("up")
        return reactivex.disposable.Disposable()

    async def approve(p: ReconnectProposed) -> bool:
        return True

    got: list[Any] = []
    try:
        policy = ExponentialBackoff(1.0, 1.0, 1.0, jitter="none")
        reactivex.create(subscribe_source).pipe(retry_with_backoff(policy, approve=approve)).subscribe(
            got.append, scheduler=scheduler
        )
        scheduler.advance_by(2.0)  # past the approved 1 s delay
        assert attempts == 2 and got == ["up"]
    finally:
        loop.close()


async def test_approval_cancelled_by_someone_else_is_a_denial() -> None:
    loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(loop)
    tasks: list[asyncio.Task[Any]] = []

    async def approve(p: ReconnectProposed) -> bool:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        await asyncio.Event().wait()
        return True

    failed: asyncio.Future[Exception] = loop.create_future()
    reactivex.throw(BOOM).pipe(retry_with_backoff(ExponentialBackoff(), approve=approve)).subscribe(
        on_error=failed.set_result, scheduler=scheduler
    )
    while not tasks:
        await asyncio.sleep(0)
    tasks[0].cancel()
    err = await asyncio.wait_for(failed, 5)
    assert isinstance(err, ReconnectDeniedError) and err.__cause__ is BOOM
