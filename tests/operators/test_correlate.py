"""correlate in virtual time: marbles for items and responses, one tick = 1 virtual second.

Items and responses are single letters: an item ``a`` is answered by responses ``A``, ``A1``,
``A2``... (the key is the lower-cased first letter). Hot observables start at 200 (subscription).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.marbles import marbles_testing

from rxws.exceptions import RequestTimeout, UsageError
from rxws.operators import CorrelationStats, correlate


def key(x: str) -> str:
    return x[0].lower()


def flat(messages: list[Any]) -> list[tuple[float, str]]:
    """The merged, materialized response streams as ``(time, what)``: a value, ``|`` for a
    stream's completion, ``timeout <key>``, ``error <Type>``, and ``outer|`` / ``outer#``."""
    out: list[tuple[float, str]] = []
    for message in messages:
        value = message.value
        if isinstance(value, OnNext) and isinstance(value.value, OnNext):
            out.append((message.time, value.value.value))
        elif isinstance(value, OnNext) and isinstance(value.value, OnCompleted):
            out.append((message.time, "|"))
        elif isinstance(value, OnNext) and isinstance(value.value, OnError):
            error = value.value.exception
            label = f"timeout {error.request_id}" if isinstance(error, RequestTimeout) else f"error {error}"
            out.append((message.time, label))
        elif isinstance(value, OnCompleted):
            out.append((message.time, "outer|"))
        elif isinstance(value, OnError):
            out.append((message.time, f"outer# {value.exception}"))
    return out


def materialized(
    items: Observable[str], responses: Observable[str], stats: CorrelationStats, **kw: Any
) -> Callable[[], Observable[Any]]:
    kw.setdefault("timeout", 4.0)
    key_of = kw.pop("key_of", key)
    return lambda: items.pipe(
        correlate(responses, key_of, stats=stats, **kw),
        ops.map(lambda stream: stream.pipe(ops.materialize())),
        ops.merge_all(),
    )


def test_each_item_gets_its_first_match_or_a_timeout() -> None:
    stats = CorrelationStats()
    with marbles_testing(timespan=1.0) as (start, _cold, hot, _exp):
        items = hot("-a---b-----c------|")
        responses = hot("--A-------B--C------")
        result = start(materialized(items, responses, stats))
    assert flat(result) == [
        (202.0, "A"),
        (202.0, "|"),
        (209.0, "timeout b"),  # b at 205 + 4 ticks; its B comes at 210: late
        (213.0, "C"),
        (213.0, "|"),
        (218.0, "outer|"),  # the source completed and every stream has ended
    ]
    assert (stats.items, stats.matched, stats.completed, stats.timeouts, stats.late) == (3, 2, 2, 1, 1)
    assert stats.strays == 1 and stats.pending == 0


def test_several_matches_until_the_final_one() -> None:
    stats = CorrelationStats()
    lookup = {"w": "A1", "x": "A2", "y": "A3", "z": "A4"}
    with marbles_testing(timespan=1.0) as (start, _cold, hot, _exp):
        items = hot("-a-------")
        responses = hot("--w-x-y-z--", lookup=lookup)
        result = start(materialized(items, responses, stats, timeout=10.0, until=lambda r: r == "A3"))
    assert flat(result) == [(202.0, "A1"), (204.0, "A2"), (206.0, "A3"), (206.0, "|")]
    assert (stats.matched, stats.completed, stats.late) == (3, 1, 1)  # A4: an extra copy after the end


def test_a_response_before_its_item_in_the_same_tick_is_held_and_later_strays_are_counted() -> None:
    scheduler = TestScheduler()
    on_next = ReactiveTest.on_next
    responses = scheduler.create_hot_observable(on_next(210, "A"), on_next(220, "Z"), on_next(230, "B"))
    items = scheduler.create_hot_observable(on_next(210, "a"), on_next(231, "b"))  # b one tick too late
    stats = CorrelationStats()
    result = scheduler.start(materialized(items, responses, stats), disposed=400)
    assert flat(result.messages) == [(210.0, "A"), (210.0, "|"), (235.0, "timeout b")]
    assert (stats.held, stats.unmatched, stats.late) == (1, 2, 0)  # Z and the early B: unmatched


def test_hold_keeps_an_early_response_for_a_while() -> None:
    scheduler = TestScheduler()
    on_next = ReactiveTest.on_next
    responses = scheduler.create_hot_observable(on_next(210, "A"), on_next(211, "B"))
    items = scheduler.create_hot_observable(on_next(213, "a"), on_next(218, "b"))
    stats = CorrelationStats()
    result = scheduler.start(materialized(items, responses, stats, hold=5.0), disposed=400)
    assert flat(result.messages) == [(213.0, "A"), (213.0, "|"), (222.0, "timeout b")]
    assert (stats.held, stats.unmatched) == (1, 1)  # B waited 211..216 and was given up


def test_the_hold_is_bounded() -> None:
    scheduler = TestScheduler()
    on_next = ReactiveTest.on_next
    responses = scheduler.create_hot_observable(*(on_next(210, f"{c}") for c in "ABCDE"))
    items = scheduler.create_hot_observable(on_next(210, "a"), on_next(210, "e"))
    stats = CorrelationStats()
    result = scheduler.start(materialized(items, responses, stats, max_held=2), disposed=400)
    assert flat(result.messages) == [(210.0, "A"), (210.0, "|"), (214.0, "timeout e")]
    assert (stats.held, stats.unmatched, stats.overflow) == (1, 1, 3)


@pytest.mark.parametrize("which", ["source", "responses"])
def test_an_error_in_either_stream_fails_the_waiting_streams_and_the_outer(which: str) -> None:
    stats = CorrelationStats()
    boom = ValueError("boom")
    with marbles_testing(timespan=1.0) as (start, _cold, hot, _exp):
        items = hot("-a-b-#" if which == "source" else "-a-b----", error=boom)
        responses = hot("--A-----" if which == "source" else "--A--#", error=boom)
        result = start(materialized(items, responses, stats, timeout=10.0))
    assert flat(result) == [(202.0, "A"), (202.0, "|"), (205.0, "error boom"), (205.0, "outer# boom")]
    assert stats.pending == 0


def test_disposal_mid_flight_leaves_nothing_waiting() -> None:
    scheduler = TestScheduler()
    on_next = ReactiveTest.on_next
    items = scheduler.create_hot_observable(*(on_next(201 + i, f"k{i}") for i in range(50)))
    responses = scheduler.create_hot_observable(on_next(260, "K0"), on_next(400, "K1"))
    stats = CorrelationStats()
    result = scheduler.start(
        materialized(items, responses, stats, timeout=100.0, key_of=str.lower), disposed=300
    )
    scheduler.advance_to(1000)
    assert flat(result.messages) == [(260.0, "K0"), (260.0, "|")]
    assert stats.items == 50 and stats.pending == 0
    assert stats.unmatched == 0 and stats.timeouts == 0  # no timer fired after the disposal


def test_a_duplicate_key_fails_only_the_second_stream() -> None:
    stats = CorrelationStats()
    with marbles_testing(timespan=1.0) as (start, _cold, hot, _exp):
        items = hot("-a-a----")
        responses = hot("-----A---")
        result = start(materialized(items, responses, stats))
    assert flat(result) == [
        (203.0, "error correlate: key 'a' is already waiting for a response"),
        (205.0, "A"),
        (205.0, "|"),
    ]
    assert stats.duplicates == 1


def test_a_late_subscriber_to_a_response_stream_still_sees_it() -> None:
    scheduler = TestScheduler()
    on_next = ReactiveTest.on_next
    items = scheduler.create_hot_observable(on_next(210, "a"), on_next(211, "b"))
    responses = scheduler.create_hot_observable(on_next(212, "B"), on_next(213, "A"))
    result = scheduler.start(
        lambda: items.pipe(correlate(responses, key, timeout=5.0), ops.merge(max_concurrent=1)), disposed=400
    )
    assert [(m.time, m.value.value) for m in result.messages if isinstance(m.value, OnNext)] == [
        (213.0, "A"),
        (213.0, "B"),  # b's stream, subscribed only after a's ended, replays what it got
    ]


def test_none_keys_are_ignored_and_keys_may_be_read_differently() -> None:
    scheduler = TestScheduler()
    on_next = ReactiveTest.on_next
    items = scheduler.create_hot_observable(on_next(210, {"clOrdId": "x1"}))
    responses = scheduler.create_hot_observable(
        on_next(211, {"type": "heartbeat"}), on_next(212, {"order": {"clOrdId": "x1"}, "status": "filled"})
    )
    stats = CorrelationStats()
    result = scheduler.start(
        lambda: items.pipe(
            correlate(
                responses,
                lambda item: item["clOrdId"],
                response_key=lambda r: r.get("order", {}).get("clOrdId"),
                timeout=5.0,
                stats=stats,
            ),
            ops.merge_all(),
        )
    )
    assert [m.value.value["status"] for m in result.messages if isinstance(m.value, OnNext)] == ["filled"]
    assert stats.ignored == 1 and stats.matched == 1


def test_unhashable_response_keys_are_unmatched_not_errors() -> None:
    stats = CorrelationStats()
    scheduler = TestScheduler()
    source: Observable[Any] = reactivex.never()
    responses = scheduler.create_hot_observable(ReactiveTest.on_next(210, ["a", "list"]))
    scheduler.start(lambda: source.pipe(correlate(responses, lambda r: list(r), timeout=1.0, stats=stats)))
    assert stats.unmatched == 1


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timeout"):
        correlate(reactivex.never(), key, timeout=0)
    with pytest.raises(ValueError, match="hold"):
        correlate(reactivex.never(), key, timeout=1, hold=-1)
    with pytest.raises(ValueError, match="max_held"):
        correlate(reactivex.never(), key, timeout=1, max_held=-1)


def test_stats_read_as_a_dict() -> None:
    stats = CorrelationStats()
    stats.late, stats.unmatched = 2, 3
    assert stats.as_dict()["strays"] == 5 and "strays" in repr(stats)
    assert isinstance(UsageError("x"), Exception)


@pytest.mark.parametrize("where", ["item", "response", "until"])
def test_a_selector_that_raises_fails_the_outer_stream(where: str) -> None:
    def picky(x: str) -> str:
        if (where == "item" and x == "b") or (where == "response" and x == "B"):
            raise LookupError(f"no key in {x}")
        return key(x)

    def until(r: str) -> bool:
        if where == "until":
            raise LookupError(f"no key in {r}")
        return True

    stats = CorrelationStats()
    with marbles_testing(timespan=1.0) as (start, _cold, hot, _exp):
        items = hot("-a--b----")
        responses = hot("----B----")  # in the same tick as b, after it
        result = start(materialized(items, responses, stats, key_of=picky, until=until, timeout=10.0))
    expected = {
        "item": [(204.0, "error no key in b"), (204.0, "outer# no key in b")],
        "response": [(204.0, "error no key in B")] * 2 + [(204.0, "outer# no key in B")],  # a and b fail
        "until": [(204.0, "B")] + [(204.0, "error no key in B")] * 2 + [(204.0, "outer# no key in B")],
    }[where]
    assert flat(result) == expected
    assert stats.pending == 0


def test_an_unhashable_item_key_fails_only_its_stream() -> None:
    stats = CorrelationStats()
    scheduler = TestScheduler()
    items = scheduler.create_hot_observable(ReactiveTest.on_next(210, ["x"]))
    result = scheduler.start(
        lambda: items.pipe(
            correlate(reactivex.never(), lambda i: i, timeout=1.0, stats=stats),
            ops.map(lambda s: s.pipe(ops.materialize())),
            ops.merge_all(),
        )
    )
    assert [str(m.value.value.exception) for m in result.messages] == ["correlate: key ['x'] is unhashable"]
    assert stats.duplicates == 0 and stats.pending == 0
