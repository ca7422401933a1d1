"""Tests for rxws/_topics.py's per-topic delivery: the consecutive-number fast path.

``TopicSubject.deliver_counted`` (dialects with ``seq_field``) must judge every message exactly
as ``deliver`` (the full ``sequence()`` + ``SequenceTracker`` path) does: the same
messages delivered, the same gaps, the same record, for any stream of numbers, repeats, jumps,
regressions, values that are not integers, and disconnect windows.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

from rxws._client_base import ClientContext
from rxws._topics import TopicSubject
from rxws.core.sequence import SequenceTracker
from rxws.events import GapDetected
from rxws.protocols import GenericJson


class _NoCounter(GenericJson):
    """GenericJson without ``seq_field``: the client takes the full path for every message."""

    seq_field: ClassVar[str | None] = None


def _subject(
    protocol: GenericJson, scheduler: TestScheduler
) -> tuple[TopicSubject, list[Any], SequenceTracker]:
    ctx = ClientContext("c", protocol, scheduler, None)
    tracker = SequenceTracker()
    subject = TopicSubject("t", ctx, tracker, lambda exc: None)
    seen: list[Any] = []
    ctx.events.subscribe(seen.append)
    subject.subscribe(seen.append)
    return subject, seen, tracker


_values = st.one_of(
    st.integers(0, 30), st.sampled_from([True, False, 2.0, "3", None]), st.just("next"), st.just("drop")
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_values, max_size=60))
def test_the_fast_path_judges_every_message_as_the_full_path(values: list[Any]) -> None:
    scheduler = TestScheduler()
    fast, fast_seen, fast_tracker = _subject(GenericJson(), scheduler)
    full, full_seen, full_tracker = _subject(_NoCounter(), scheduler)
    assert fast.sink == fast.deliver_counted and full.sink == full.deliver
    last = 0
    for i, value in enumerate(values):
        scheduler.advance_to(float(i + 1))
        if value == "drop":
            fast_tracker.disconnected(float(i))
            full_tracker.disconnected(float(i))
            continue
        if value == "next":  # make the common case common
            value = last + 1
        if type(value) is int:
            last = value
        message = {"topic": "t", "seq": value, "i": i} if value is not None else {"topic": "t", "i": i}
        fast.sink(message)
        full.sink(dict(message))
    assert fast_seen == full_seen
    assert fast_tracker.snapshot() == full_tracker.snapshot()
    assert fast.record.run_start == full.record.run_start and fast.record.dropped == full.record.dropped


def test_the_fast_path_delivers_in_order_numbers_and_reports_a_jump() -> None:
    scheduler = TestScheduler()
    fast, seen, _tracker = _subject(GenericJson(), scheduler)
    for n in (1, 2, 3, 5):
        fast.sink({"topic": "t", "seq": n})
    gaps = [e for e in seen if isinstance(e, GapDetected)]
    assert [m["seq"] for m in seen if isinstance(m, dict)] == [1, 2, 3, 5]
    assert [(g.gap, g.last_seq, g.next_seq) for g in gaps] == [("sequence", 3, 5)]
    assert fast.record.last_seq == 5
