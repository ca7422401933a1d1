"""idle_watchdog in virtual time."""

from __future__ import annotations

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from rxws.operators import idle_watchdog

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def test_reports_each_silence_once_and_passes_items_through() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, "a"), on_next(220, "b"), on_next(300, "c"), on_next(305, "d"), on_completed(400)
    )
    idle: list[tuple[float, float]] = []
    results = scheduler.start(
        lambda: xs.pipe(idle_watchdog(30.0, lambda s: idle.append((scheduler.clock, s)), scheduler=scheduler))
    )
    assert results.messages == [
        on_next(210, "a"),
        on_next(220, "b"),
        on_next(300, "c"),
        on_next(305, "d"),
        on_completed(400),
    ]
    # silent from 220 -> reported at 250 (once, not again at 280); from 305 -> at 335
    assert idle == [(250.0, 30.0), (335.0, 30.0)]


def test_silence_from_the_start_is_reported() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(260, "late"))
    idle: list[float] = []
    scheduler.start(
        lambda: xs.pipe(idle_watchdog(40.0, lambda _s: idle.append(scheduler.clock), scheduler=scheduler)),
        disposed=500,
    )
    assert idle == [240.0, 300.0]  # subscribed at 200: silent until 240; after 260: at 300


def test_disposal_cancels_the_pending_timer() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(260, "x"))
    idle: list[float] = []
    scheduler.start(
        lambda: xs.pipe(idle_watchdog(40.0, lambda _s: idle.append(scheduler.clock), scheduler=scheduler)),
        disposed=280,  # the timer armed at 260 for 300 must not fire
    )
    scheduler.advance_to(1000)
    assert idle == [240.0]


def test_rejects_a_non_positive_period() -> None:
    with pytest.raises(ValueError, match="> 0"):
        idle_watchdog(0, lambda _s: None)
