"""Marble tests for rxws.operators.rate_limit, in virtual time (one marble character = 1 s)."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxws.exceptions import RateLimitExceeded
from rxws.operators import rate_limit
from rxws.ratelimit import (
    Decision,
    Dropped,
    LeakyBucket,
    Queued,
    RateLimitEvent,
    SlidingWindow,
    Throttled,
    VenueRateLimiter,
)

on_next, on_error, on_completed = ReactiveTest.on_next, ReactiveTest.on_error, ReactiveTest.on_completed


def test_docstring_diagram_spacing_and_completion_waits() -> None:
    with marbles_testing() as (start, _cold, hot, exp):
        events: list[RateLimitEvent] = []
        source = hot("-a-b-c-|")
        result = start(source.pipe(rate_limit(LeakyBucket(1, 4), on_event=events.append)))
        assert result == exp("-a---b---(c,|)")
    assert [e.kind for e in events] == ["queued", "throttled", "queued", "throttled"]
    assert events[1] == Throttled(at=203.0, delay=2.0)


def test_allowed_items_pass_straight_through_without_scheduling() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, 1), on_next(210, 2), on_completed(220))
    events: list[RateLimitEvent] = []
    result = scheduler.start(lambda: source.pipe(rate_limit(SlidingWindow(5, 1), on_event=events.append)))
    assert result.messages == [on_next(210, 1), on_next(210, 2), on_completed(220)]
    assert events == []


def test_five_per_second_burst_is_spread_exactly() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable([on_next(300, i) for i in range(12)] + [on_completed(300)])
    result = scheduler.start(lambda: source.pipe(rate_limit(SlidingWindow(5, 1.0))))
    times = [m.time for m in result.messages if m.value.kind == "N"]
    assert times == [300] * 5 + [301] * 5 + [302] * 2
    assert result.messages[-1] == on_completed(302)


def test_heavy_head_is_never_starved_by_light_items() -> None:
    """Strict FIFO: the cost-5 item waits at the head; the light ones behind it wait too."""
    scheduler = TestScheduler()
    weights = {"H": 5, "l": 1}
    source = scheduler.create_hot_observable(
        on_next(201, "l"), on_next(202, "H"), on_next(203, "l"), on_next(204, "l"), on_completed(205)
    )
    limit = rate_limit(SlidingWindow(5, 10.0), cost=lambda x: weights[x])
    result = scheduler.start(lambda: source.pipe(limit))
    assert result.messages == [
        on_next(201, "l"),
        on_next(211, "H"),  # the first "l" leaves the window at 211; "H" goes first
        on_next(221, "l"),
        on_next(221, "l"),
        on_completed(221),
    ]


def burst(scheduler: TestScheduler, *values: Any, at: int = 201, end: int = 206) -> Any:
    """A hot source emitting ``values`` at once at ``at`` and completing at ``end``."""
    return scheduler.create_hot_observable([on_next(at, v) for v in values] + [on_completed(end)])


def test_overflow_error_reports_the_discarded_items() -> None:
    scheduler = TestScheduler()
    dropped: list[Any] = []
    events: list[RateLimitEvent] = []
    source = burst(scheduler, "a", "b", "c", "d")
    limit = rate_limit(LeakyBucket(1, 10), max_queue=2, on_drop=dropped.append, on_event=events.append)
    result = scheduler.start(lambda: source.pipe(limit))
    assert result.messages[0] == on_next(201, "a")
    assert len(result.messages) == 2
    err = result.messages[1]
    assert err.time == 201 and isinstance(err.value.exception, RateLimitExceeded)
    assert dropped == ["b", "c"]
    assert events[-1] == Dropped(at=201.0, reason="error", count=2, depth=0)


def test_drop_newest() -> None:
    scheduler = TestScheduler()
    dropped: list[Any] = []
    events: list[RateLimitEvent] = []
    source = burst(scheduler, "a", "b", "c", "d")
    limit = rate_limit(
        LeakyBucket(1, 2), max_queue=1, overflow="drop_newest", on_drop=dropped.append, on_event=events.append
    )
    result = scheduler.start(lambda: source.pipe(limit))
    assert result.messages == [on_next(201, "a"), on_next(203, "b"), on_completed(206)]
    assert dropped == ["c", "d"]
    assert [e for e in events if isinstance(e, Dropped)] == [
        Dropped(at=201.0, reason="drop_newest", depth=1),
        Dropped(at=201.0, reason="drop_newest", depth=1),
    ]


def test_drop_oldest_decides_the_new_head_at_once() -> None:
    scheduler = TestScheduler()
    dropped: list[Any] = []
    source = burst(scheduler, "a", "b", "c", "d")
    limit = rate_limit(LeakyBucket(1, 2), max_queue=1, overflow="drop_oldest", on_drop=dropped.append)
    result = scheduler.start(lambda: source.pipe(limit))
    assert result.messages == [on_next(201, "a"), on_next(203, "d"), on_completed(206)]
    assert dropped == ["b", "c"]


def test_zero_queue_drops_whatever_must_wait() -> None:
    with marbles_testing() as (start, _cold, hot, exp):
        dropped: list[Any] = []
        limit = rate_limit(LeakyBucket(1, 3), max_queue=0, overflow="drop_oldest", on_drop=dropped.append)
        assert start(hot("-a-b-c|").pipe(limit)) == exp("-a---c|")
    assert dropped == ["b"]


def test_source_errors_pass_through_at_once() -> None:
    with marbles_testing() as (start, _cold, hot, exp):
        dropped: list[Any] = []
        error = ValueError("boom")
        source = hot("-a-b#", error=error)
        result = start(source.pipe(rate_limit(LeakyBucket(1, 5), on_drop=dropped.append)))
        assert result == exp("-a--#", error=error)
    assert dropped == ["b"]


def test_penalty_after_a_violation_holds_messages_until_it_ends() -> None:
    scheduler = TestScheduler()
    limiter = VenueRateLimiter(message=[SlidingWindow(5, 1.0)])
    events: list[RateLimitEvent] = []
    limiter.add_listener(events.append)
    source = scheduler.create_hot_observable(
        on_next(210, "a"), on_next(220, "b"), on_next(221, "c"), on_completed(230)
    )
    scheduler.schedule_absolute(215.0, lambda *_: limiter.report_violation("c1", "close_1008", 215.0))
    scheduler.schedule_absolute(
        219.0, lambda *_: limiter.report_violation("c1", "close_1008", 219.0)
    )  # a second violation: 2 s more, from 219

    def acquire(item: str, now: float) -> Decision:
        return limiter.acquire_message("c1", now)

    result = scheduler.start(lambda: source.pipe(rate_limit(acquire)))
    assert result.messages == [on_next(210, "a"), on_next(221, "b"), on_next(221, "c"), on_completed(230)]
    assert [e.kind for e in events] == [
        "violation_reported",
        "penalty_started",  # 1 s from 215
        "violation_reported",
        "penalty_ended",  # noticed by the second report, at 219
        "penalty_started",  # 2 s from 219
        "rejected",  # "b" at 220
        "penalty_ended",  # at 221, when "b" is retried
    ]


def test_an_item_that_can_never_pass_ends_the_stream() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, 2000), on_completed(230))
    limiter = VenueRateLimiter(max_topics_per_connection=1024)

    def acquire(topics: int, now: float) -> Decision:
        return limiter.acquire_subscribe("c", now, topics)

    result = scheduler.start(lambda: source.pipe(rate_limit(acquire)))
    assert len(result.messages) == 1
    assert isinstance(result.messages[0].value.exception, RateLimitExceeded)


def test_an_acquire_that_raises_ends_the_stream_with_its_error() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, 9), on_completed(230))
    result = scheduler.start(lambda: source.pipe(rate_limit(SlidingWindow(5, 1.0), cost=float)))
    assert isinstance(result.messages[0].value.exception, ValueError)


def test_disposal_reports_what_was_still_queued() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable([on_next(210, i) for i in range(4)])
    dropped: list[Any] = []
    events: list[RateLimitEvent] = []
    limit = rate_limit(LeakyBucket(1, 100), on_drop=dropped.append, on_event=events.append)
    scheduler.start(lambda: source.pipe(limit), disposed=300)
    assert dropped == [1, 2, 3]
    assert events[-1] == Dropped(at=300.0, reason="disposed", count=3)


def test_scheduler_given_at_subscribe_time_is_used() -> None:
    scheduler = TestScheduler()
    seen: list[tuple[float, int]] = []
    obs = reactivex.of(1, 2, 3).pipe(rate_limit(LeakyBucket(1, 1)))
    obs.subscribe(lambda x: seen.append((scheduler.clock, x)), scheduler=scheduler)
    scheduler.start()
    assert seen == [(0.0, 1), (1.0, 2), (2.0, 3)]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        rate_limit(SlidingWindow(1, 1.0), max_queue=-1)
    with pytest.raises(ValueError, match="overflow"):
        rate_limit(SlidingWindow(1, 1.0), overflow="drop_all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost"):
        rate_limit(lambda item, now: Decision(True), cost=float)


def test_queued_events_report_depth() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable([on_next(210, i) for i in range(3)])
    events: list[RateLimitEvent] = []
    scheduler.start(lambda: source.pipe(rate_limit(LeakyBucket(1, 1), on_event=events.append)))
    assert [e.depth for e in events if isinstance(e, Queued)] == [1, 2]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(1, 3)), min_size=1, max_size=40),
    st.integers(1, 5),
    st.integers(1, 4),
)
def test_output_is_fifo_and_within_the_limit(arrivals: list[tuple[int, int]], limit: int, per: int) -> None:
    scheduler = TestScheduler()
    arrivals = sorted(arrivals, key=lambda a: a[0])
    items = [(i, min(w, limit)) for i, (_, w) in enumerate(arrivals)]
    source = scheduler.create_hot_observable(
        [on_next(201 + t, items[i]) for i, (t, _) in enumerate(arrivals)] + [on_completed(240)]
    )
    limit_op = rate_limit(SlidingWindow(limit, per), cost=lambda it: it[1], max_queue=10_000)
    result = scheduler.start(lambda: source.pipe(limit_op), disposed=10_000)
    out = [(m.time, m.value.value) for m in result.messages if m.value.kind == "N"]
    assert [v for _, v in out] == items, "every item, in arrival order"
    for i, (ti, _) in enumerate(out):
        assert sum(v[1] for tj, v in out[i:] if tj < ti + per) <= limit
    assert result.messages[-1].value.kind == "C"


def test_works_inside_a_larger_pipeline() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable([on_next(210 + i, i) for i in range(6)] + [on_completed(216)])
    result = scheduler.start(
        lambda: source.pipe(ops.map(lambda x: x * 10), rate_limit(LeakyBucket(1, 2)), ops.take(3))
    )
    assert result.messages == [on_next(210, 0), on_next(212, 10), on_next(214, 20), on_completed(214)]
