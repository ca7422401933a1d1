"""Marble tests for rxws.operators.detect_gaps, in virtual time."""

from __future__ import annotations

from typing import Any

from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxws.core.backoff import ExponentialBackoff
from rxws.core.sequence import SequenceTracker
from rxws.events import GapDetected
from rxws.operators import detect_gaps, retry_with_backoff
from rxws.protocols.base import Seq

on_next, on_error, on_completed = ReactiveTest.on_next, ReactiveTest.on_error, ReactiveTest.on_completed

Msg = dict[str, Any]


def seq_of(m: Msg) -> Seq | None:
    n = m.get("seq")
    return None if n is None else Seq(n, n)


def topic_of(m: Msg) -> str:
    return str(m["topic"])


def msg(topic: str, n: int | None) -> Msg:
    return {"topic": topic, "seq": n}


def test_items_pass_through_unchanged_marbles() -> None:
    gaps: list[GapDetected] = []
    with marbles_testing(timespan=1.0) as (start, cold, _hot, exp):
        source = cold("-a-b-c-|", {"a": 1, "b": 2, "c": 4}, None)
        expected = exp("-a-b-c-|", {"a": 1, "b": 2, "c": 4}, None)
        results = start(source.pipe(detect_gaps(lambda n: Seq(n, n), on_gap=gaps.append)))
    assert results == expected
    assert [(g.gap, g.last_seq, g.next_seq) for g in gaps] == [("sequence", 2, 4)]


def test_sequence_duplicate_regression_per_topic() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(210, msg("a", 1)),
        on_next(220, msg("b", 100)),
        on_next(230, msg("a", 2)),
        on_next(240, msg("a", 5)),  # jump
        on_next(250, msg("b", 101)),
        on_next(260, msg("a", 5)),  # duplicate
        on_next(270, msg("b", 3)),  # regression
        on_next(280, msg("t", None)),  # no numbers
        on_completed(300),
    )
    gaps: list[GapDetected] = []
    results = scheduler.start(lambda: source.pipe(detect_gaps(seq_of, topic_of, on_gap=gaps.append)))
    assert len(results.messages) == 9
    assert [(g.topic, g.gap, g.start, g.end, g.last_seq, g.next_seq) for g in gaps] == [
        ("a", "sequence", 230.0, 240.0, 2, 5),
        ("a", "duplicate", 240.0, 260.0, 5, 5),
        ("b", "regression", 250.0, 270.0, 101, 3),
    ]


def test_prev_mismatch() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(210, Seq(10, 10, prev=5)),
        on_next(220, Seq(20, 20, prev=10)),
        on_next(230, Seq(40, 40, prev=30)),
    )
    gaps: list[GapDetected] = []
    scheduler.start(lambda: source.pipe(detect_gaps(lambda s: s, on_gap=gaps.append)))
    assert [(g.topic, g.gap, g.last_seq, g.next_seq) for g in gaps] == [("", "sequence", 20, 40)]


def test_gap_is_reported_before_the_item_that_reveals_it() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, 1), on_next(220, 3))
    log: list[Any] = []
    source.pipe(detect_gaps(lambda n: Seq(n, n), on_gap=lambda g: log.append(g.gap))).subscribe(
        log.append, scheduler=scheduler
    )
    scheduler.start()
    assert log == [1, "sequence", 3]


def test_disconnect_window_across_a_reconnect() -> None:
    """A drop, an approved reconnect after 5 s, and one disconnect gap per topic."""
    scheduler = TestScheduler()
    first = [
        on_next(10, msg("a", 1)),
        on_next(20, msg("b", 7)),
        on_next(30, msg("a", 2)),
        on_error(40, OSError()),
    ]
    again = [on_next(15, msg("b", 9)), on_next(25, msg("a", 3)), on_next(35, msg("a", 4)), on_completed(50)]
    connections = [scheduler.create_cold_observable(first), scheduler.create_cold_observable(again)]
    subscribed = 0

    def connect(observer: Any, sched: Any = None) -> Any:
        nonlocal subscribed
        subscribed += 1
        return connections[subscribed - 1].subscribe(observer, scheduler=sched)

    tracker = SequenceTracker()
    gaps: list[GapDetected] = []
    policy = ExponentialBackoff(5.0, jitter="none")
    results = scheduler.start(
        lambda: Observable(connect).pipe(
            detect_gaps(seq_of, topic_of, on_gap=gaps.append, tracker=tracker),
            retry_with_backoff(policy),
        )
    )
    # First connection 200..240, drop at 240, reconnect at 245: b@260, a@270, a@280, done@295.
    assert [m.time for m in results.messages] == [210, 220, 230, 260, 270, 280, 295]
    assert [(g.topic, g.gap, g.start, g.end, g.last_seq, g.next_seq, g.at) for g in gaps] == [
        ("b", "disconnect", 220.0, 260.0, 7, 9, 260.0),
        ("a", "disconnect", 230.0, 270.0, 2, 3, 270.0),
    ]
    assert tracker.pending() == frozenset()


def test_per_subscription_tracker_by_default() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(10, 1), on_next(20, 2))
    gaps: list[GapDetected] = []
    op = source.pipe(detect_gaps(lambda n: Seq(n, n), on_gap=gaps.append))
    op.subscribe(scheduler=scheduler)
    op.subscribe(scheduler=scheduler)
    scheduler.start()
    assert gaps == []  # two subscriptions, two trackers: 1, 2 twice is not a duplicate


def test_reader_errors_end_the_stream() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, 1), on_next(220, "x"), on_next(230, 3))

    def bad(n: Any) -> Seq:
        return Seq(int(n), int(n))

    results = scheduler.start(lambda: source.pipe(detect_gaps(bad)))
    assert [m.time for m in results.messages] == [210, 220]
    assert isinstance(results.messages[-1].value.exception, ValueError)


def test_operator_facade_exports() -> None:
    import rxws.operators

    for name in rxws.operators.__all__:
        assert getattr(rxws.operators, name) is not None
    assert {"detect_gaps", "retry_with_backoff"} <= set(rxws.operators.__all__)
