"""rxws._every: the keepalive runner behind ``client.every`` — cadence, pause while disconnected,
failures as events, no overlap, dispose and close leave nothing behind; in virtual time (and one
coroutine action on a real event loop)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import BehaviorSubject
from reactivex.testing import TestScheduler

from rxws._every import KeepaliveTask, every
from rxws.auth import Credentials
from rxws.events import Event, KeepaliveFailed


def live_timers(scheduler: TestScheduler) -> int:
    """Scheduled items not disposed (a disposed item stays queued, marked cancelled)."""
    return sum(1 for item, _ in scheduler._queue.items if not item.is_cancelled())


class Rig:
    def __init__(self, connected: bool = True) -> None:
        self.scheduler = TestScheduler()
        self.connected: BehaviorSubject[bool] = BehaviorSubject(connected)
        self.events: list[Event] = []
        self.times: list[float] = []

    def tick(self) -> None:
        self.times.append(self.scheduler.clock)

    def every(self, period: float, action: Any, **kwargs: Any) -> KeepaliveTask:
        return every(
            period,
            action,
            scheduler=self.scheduler,
            connected=self.connected,
            emit=self.events.append,
            **kwargs,
        )

    def failures(self) -> list[KeepaliveFailed]:
        return [e for e in self.events if isinstance(e, KeepaliveFailed)]


def test_a_plain_callable_runs_every_period_while_connected() -> None:
    r = Rig()
    task = r.every(30.0, r.tick)
    r.scheduler.advance_to(100.0)
    assert r.times == [30.0, 60.0, 90.0]
    assert task.runs == 3 and task.active and "running" in repr(task)


def test_immediately_runs_once_on_connect() -> None:
    r = Rig()
    r.every(30.0, r.tick, immediately=True)
    r.scheduler.advance_to(61.0)
    assert r.times == [0.0, 30.0, 60.0]


def test_runs_pause_while_disconnected_and_restart_a_period_after_reconnecting() -> None:
    r = Rig(connected=False)
    task = r.every(10.0, r.tick)
    r.scheduler.advance_to(25.0)
    assert r.times == [] and not task.active and "paused" in repr(task)
    r.connected.on_next(True)  # t=25
    r.scheduler.advance_to(47.0)
    assert r.times == [35.0, 45.0]
    r.connected.on_next(False)  # t=47
    r.scheduler.advance_to(100.0)
    assert r.times == [35.0, 45.0]
    r.connected.on_next(True)  # t=100
    r.connected.on_next(True)  # a repeated "connected" does not start a second timer
    r.scheduler.advance_to(121.0)
    assert r.times == [35.0, 45.0, 110.0, 120.0]


def test_a_failing_run_is_an_event_and_the_timer_goes_on() -> None:
    r = Rig()
    calls = 0
    secret = Credentials(api_key="a-key-123456", secret="the-secret-987654").secret.get_secret_value()

    def extend_listen_key() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError(f"HTTP 400 for secret {secret}")

    task = r.every(60.0, extend_listen_key)
    r.scheduler.advance_to(200.0)
    assert calls == 3 and task.failures == 1
    [failed] = r.failures()
    assert (failed.at, failed.name) == (120.0, "extend_listen_key")
    assert failed.error.startswith("RuntimeError: HTTP 400") and secret not in failed.error


def test_an_observable_action_is_subscribed_and_its_error_reported() -> None:
    r = Rig()
    results = iter([reactivex.of(1), reactivex.throw(ValueError("venue said -1125")), reactivex.empty()])
    task = r.every(5.0, lambda: next(results), name="keepalive")
    r.scheduler.advance_to(16.0)
    assert task.runs == 3 and [f.error for f in r.failures()] == ["ValueError: venue said -1125"]
    assert r.failures()[0].name == "keepalive" and not task.in_flight


def test_a_run_still_going_makes_the_next_tick_skip() -> None:
    r = Rig()
    task = r.every(
        10.0, lambda: reactivex.timer(25.0, scheduler=r.scheduler).pipe(ops.do_action(lambda _: r.tick()))
    )
    r.scheduler.advance_to(61.0)
    # runs start at 10 (ends 35) and 40 (ends 65); ticks at 20, 30, 50, 60 find a run going
    assert (task.runs, task.skipped) == (2, 4) and r.times == [35.0]


def test_a_disconnect_cancels_the_run_in_flight() -> None:
    r = Rig()
    task = r.every(
        10.0, lambda: reactivex.timer(5.0, scheduler=r.scheduler).pipe(ops.do_action(lambda _: r.tick()))
    )
    r.scheduler.advance_to(12.0)
    assert task.in_flight
    r.connected.on_next(False)
    r.scheduler.advance_to(50.0)
    assert r.times == [] and not task.in_flight


def test_dispose_and_close_leave_nothing_scheduled() -> None:
    r = Rig()
    task = r.every(10.0, lambda: reactivex.timer(5.0, scheduler=r.scheduler))
    r.scheduler.advance_to(12.0)
    assert live_timers(r.scheduler) == 2 and task.in_flight  # the next tick and the run's timer
    task.dispose()
    task.dispose()  # idempotent
    assert task.disposed and not task.active and not task.in_flight
    assert live_timers(r.scheduler) == 0  # no timer left
    assert not r.connected.observers  # no subscription left
    r2 = Rig()
    task2 = r2.every(10.0, r2.tick)
    r2.connected.on_completed()  # the client closed
    r2.scheduler.advance_to(100.0)
    assert task2.disposed and r2.times == [] and live_timers(r2.scheduler) == 0


def test_an_observable_that_ends_at_once_disposes_the_task() -> None:
    scheduler = TestScheduler()
    task = every(1.0, lambda: None, scheduler=scheduler, connected=reactivex.of(True), emit=lambda e: None)
    scheduler.advance_to(10.0)
    assert task.disposed and task.runs == 0


def test_bad_period_and_a_coroutine_without_a_loop() -> None:
    r = Rig()
    with pytest.raises(ValueError):
        r.every(0.0, r.tick)

    async def coro() -> None:
        return None

    r.every(1.0, coro, name="refresh")
    r.scheduler.advance_to(1.0)
    [failed] = r.failures()
    assert failed.name == "refresh" and "needs a running event loop" in failed.error


async def test_a_coroutine_action_runs_on_the_loop_and_its_failure_is_an_event() -> None:
    loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(loop)
    connected: BehaviorSubject[bool] = BehaviorSubject(True)
    events: list[Event] = []
    runs: list[int] = []
    three = loop.create_future()

    async def refresh_token() -> None:
        runs.append(len(runs) + 1)
        await asyncio.sleep(0)
        if len(runs) == 2:
            raise ConnectionError("token endpoint down")
        if len(runs) == 3 and not three.done():
            three.set_result(None)

    task = every(0.01, refresh_token, scheduler=scheduler, connected=connected, emit=events.append)
    await asyncio.wait_for(three, 5.0)
    task.dispose()
    assert [e.error for e in events if isinstance(e, KeepaliveFailed)] == [
        "ConnectionError: token endpoint down"
    ]
    assert task.runs >= 3 and not task.in_flight
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not any("refresh_token" in repr(t) for t in pending)


async def test_dispose_cancels_a_running_coroutine() -> None:
    loop = asyncio.get_running_loop()
    started = loop.create_future()
    cancelled = loop.create_future()

    async def slow() -> None:
        started.set_result(None)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set_result(None)
            raise

    connected: BehaviorSubject[bool] = BehaviorSubject(True)
    task = every(0.01, slow, scheduler=AsyncIOScheduler(loop), connected=connected, emit=lambda e: None)
    await asyncio.wait_for(started, 5.0)
    task.dispose()
    await asyncio.wait_for(cancelled, 5.0)
    assert task.disposed and not task.in_flight
