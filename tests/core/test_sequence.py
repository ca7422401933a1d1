"""Tests for rxws.core.sequence: sequence gaps, duplicates, regressions, disconnect windows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.core.sequence import SequenceTracker, TopicMark
from rxws.events import GapDetected
from rxws.protocols.base import Seq


def one(n: int) -> Seq:
    return Seq(n, n)


def test_contiguous_numbers_report_nothing() -> None:
    t = SequenceTracker()
    assert [t.observe("a", one(n), float(n)) for n in range(1, 6)] == [None] * 5
    assert t.mark("a") == TopicMark(5, 5.0)


def test_jump_is_a_sequence_gap() -> None:
    t = SequenceTracker()
    t.observe("a", one(1), 1.0)
    t.observe("a", one(2), 2.0)
    gap = t.observe("a", one(5), 3.5)
    assert gap == GapDetected(topic="a", gap="sequence", start=2.0, end=3.5, last_seq=2, next_seq=5, at=3.5)
    assert t.observe("a", one(6), 4.0) is None


def test_range_messages_overlapping_or_contiguous_are_fine() -> None:
    t = SequenceTracker()
    t.observe("depth", Seq(100, 110), 1.0)
    assert t.observe("depth", Seq(111, 120), 2.0) is None  # contiguous
    assert t.observe("depth", Seq(115, 130), 3.0) is None  # overlapping, extending (Binance U<=L+1<=u)
    gap = t.observe("depth", Seq(140, 150), 4.0)
    assert gap is not None and (gap.gap, gap.last_seq, gap.next_seq) == ("sequence", 130, 140)


def test_duplicate_leaves_the_record_alone() -> None:
    t = SequenceTracker()
    for n in (10, 11, 12):
        t.observe("a", one(n), float(n))
    gap = t.observe("a", one(12), 13.0)
    assert gap is not None and gap.gap == "duplicate"
    assert (gap.last_seq, gap.next_seq) == (12, 12)
    dup_range = t.observe("a", Seq(10, 11), 14.0)
    assert dup_range is not None and dup_range.gap == "duplicate"
    assert t.observe("a", one(13), 15.0) is None


def test_regression_adopts_the_new_numbering() -> None:
    t = SequenceTracker()
    for n in (10, 11, 12):
        t.observe("a", one(n), float(n))
    gap = t.observe("a", one(1), 20.0)  # the venue restarted its counter
    assert gap is not None
    assert (gap.gap, gap.last_seq, gap.next_seq, gap.start, gap.end) == ("regression", 12, 1, 12.0, 20.0)
    assert t.observe("a", one(2), 21.0) is None


def test_numbers_before_a_jump_are_regressions_not_duplicates() -> None:
    t = SequenceTracker()
    t.observe("a", one(1), 1.0)
    t.observe("a", one(5), 2.0)  # sequence gap, the run restarts at 5
    gap = t.observe("a", one(3), 3.0)  # 3 was never received
    assert gap is not None and gap.gap == "regression"


def test_prev_mismatch_is_a_sequence_gap() -> None:
    t = SequenceTracker()
    t.observe("book", Seq(100, 100, prev=90), 1.0)
    assert t.observe("book", Seq(130, 130, prev=100), 2.0) is None  # sparse ids, prev matches
    assert t.observe("book", Seq(130, 130, prev=130), 2.5) is None  # OKX: no change, seqId == prevSeqId
    gap = t.observe("book", Seq(170, 170, prev=150), 3.0)
    assert gap is not None and (gap.gap, gap.last_seq, gap.next_seq) == ("sequence", 130, 170)
    dup = t.observe("book", Seq(170, 170, prev=150), 4.0)
    assert dup is not None and dup.gap == "duplicate"


def test_disconnect_window_per_topic() -> None:
    t = SequenceTracker()
    t.observe("a", one(1), 1.0)
    t.observe("b", one(7), 2.0)
    t.observe("a", one(2), 3.0)
    t.track("c", 2.5)  # subscribed, never got a message
    t.disconnected(4.0)
    assert t.pending() == {"a", "b", "c"}
    gap_b = t.observe("b", one(8), 10.0)
    assert gap_b == GapDetected(
        topic="b", gap="disconnect", start=2.0, end=10.0, last_seq=7, next_seq=8, at=10.0
    )
    gap_a = t.observe("a", one(9), 11.0)  # the jump is folded into the disconnect gap
    assert gap_a is not None and (gap_a.gap, gap_a.start, gap_a.end, gap_a.last_seq, gap_a.next_seq) == (
        "disconnect",
        3.0,
        11.0,
        2,
        9,
    )
    assert t.observe("a", one(10), 12.0) is None
    assert t.pending() == {"c"}
    gap_c = t.observe("c", None, 13.0)
    assert gap_c is not None
    assert (gap_c.start, gap_c.end, gap_c.last_seq, gap_c.next_seq) == (2.5, 13.0, None, None)
    assert t.pending() == frozenset()


def test_second_drop_keeps_the_original_start() -> None:
    t = SequenceTracker()
    t.observe("a", one(1), 1.0)
    t.disconnected(2.0)
    t.disconnected(5.0)
    gap = t.observe("a", one(2), 9.0)
    assert gap is not None and (gap.start, gap.end) == (1.0, 9.0)


def test_topics_without_sequence_numbers_get_time_windows() -> None:
    t = SequenceTracker()
    assert t.observe("ticker", None, 1.0) is None
    assert t.observe("ticker", None, 2.0) is None
    t.disconnected(3.0)
    gap = t.observe("ticker", None, 8.0)
    assert gap is not None and (gap.gap, gap.start, gap.end) == ("disconnect", 2.0, 8.0)


def test_forget_snapshot_restore() -> None:
    t = SequenceTracker()
    t.observe("a", one(5), 1.0)
    t.observe("b", None, 2.0)
    snap = t.snapshot()
    assert snap == {"a": TopicMark(5, 1.0), "b": TopicMark(None, 2.0)}
    t.forget("a")
    assert "a" not in t and len(t) == 1 and list(t) == ["b"]
    assert t.observe("a", one(100), 3.0) is None  # a fresh start

    u = SequenceTracker()
    u.restore(snap)
    assert u.pending() == {"a", "b"}
    gap = u.observe("a", one(9), 50.0)
    assert gap is not None and (gap.gap, gap.start, gap.last_seq, gap.next_seq) == ("disconnect", 1.0, 5, 9)
    v = SequenceTracker()
    v.restore({"a": (5, 1.0)}, disconnected=False)
    assert v.observe("a", one(6), 2.0) is None
    v.clear()
    assert len(v) == 0


def test_prev_equal_to_last_is_in_sequence_whatever_the_numbers() -> None:
    # OKX "Order book channel" > "Sequence number" (read 2026-11-30): after maintenance seqId may be
    # lower than prevSeqId while prevSeqId equals the last seqId; then the normal rule resumes.
    t = SequenceTracker()
    t.observe("book", Seq(10, 10), 0.0)
    assert t.observe("book", Seq(15, 15, prev=10), 1.0) is None
    assert t.observe("book", Seq(15, 15, prev=15), 2.0) is None  # idle: seqId == prevSeqId
    assert t.observe("book", Seq(3, 3, prev=15), 3.0) is None  # the documented reset
    assert t.mark("book") == TopicMark(3, 3.0)
    assert t.observe("book", Seq(5, 5, prev=3), 4.0) is None
    gap = t.observe("book", Seq(9, 9, prev=7), 5.0)  # normal rule again: 7 was never seen
    assert gap is not None and (gap.gap, gap.last_seq, gap.next_seq) == ("sequence", 5, 9)
    # A range whose first number is far ahead but whose prev matches (Binance USD-M pu == u).
    assert t.observe("book", Seq(40, 50, prev=9), 6.0) is None


def test_after_a_prev_reset_the_run_restarts_at_the_new_numbers() -> None:
    t = SequenceTracker()
    t.observe("book", Seq(100, 100), 0.0)
    assert t.observe("book", Seq(3, 3, prev=100), 1.0) is None  # reset: the run is now 3..
    old = t.observe("book", Seq(2, 2, prev=99), 2.0)  # below the new run, prev not 3: broken chain
    assert old is not None and (old.gap, old.last_seq, old.next_seq) == ("sequence", 3, 2)
    assert t.observe("book", Seq(3, 3, prev=2), 3.0) is None  # prev == last (2) again
    again = t.observe("book", Seq(3, 3, prev=1), 4.0)  # already received in this run
    assert again is not None and again.gap == "duplicate"


def test_a_missed_reset_message_is_a_sequence_gap_not_a_regression() -> None:
    # OKX's documented example with the reset push (15 -> 3) lost: (3 -> 5) names prevSeqId 3,
    # not the last seqId 15. By OKX's rule a message was missed; that the numbers went down is
    # what a reset does, not a sign of an old message.
    t = SequenceTracker()
    for i, (prev, seq) in enumerate([(None, 10), (10, 15), (15, 15)]):
        assert t.observe("book", Seq(seq, seq, prev=prev, reset=prev is None), float(i)) is None
    gap = t.observe("book", Seq(5, 5, prev=3), 3.0)
    assert gap == GapDetected(
        topic="book", gap="sequence", start=2.0, end=3.0, last_seq=15, next_seq=5, at=3.0
    )
    assert t.observe("book", Seq(7, 7, prev=5), 4.0) is None  # the chain goes on from 5


def test_reset_starts_a_new_chain_whatever_the_last_number() -> None:
    t = SequenceTracker()
    for n in (100, 101):
        t.observe("ob", one(n), float(n))
    assert t.observe("ob", Seq(101, 101, reset=True), 102.0) is None  # same snapshot re-sent
    assert t.observe("ob", Seq(1, 1, reset=True), 103.0) is None  # Bybit u == 1: restart
    assert t.mark("ob") == TopicMark(1, 103.0)
    assert t.observe("ob", one(2), 104.0) is None
    assert t.observe("ob", Seq(500, 500, prev=7, reset=True), 105.0) is None  # a jump forward
    gap = t.observe("ob", one(502), 106.0)
    assert gap is not None and (gap.gap, gap.last_seq, gap.next_seq) == ("sequence", 500, 502)
    assert t.observe("new", Seq(7, 7, reset=True), 107.0) is None  # a topic's first message


def test_reset_after_a_drop_still_reports_the_disconnect_window() -> None:
    t = SequenceTracker()
    t.observe("ob", one(10), 1.0)
    t.disconnected(2.0)
    gap = t.observe("ob", Seq(50, 50, reset=True), 5.0)
    assert gap == GapDetected(
        topic="ob", gap="disconnect", start=1.0, end=5.0, last_seq=10, next_seq=50, at=5.0
    )
    assert t.observe("ob", one(51), 6.0) is None


def test_fast_path_record_follows_the_same_rules() -> None:
    t = SequenceTracker()
    rec = t.record("book", 0.0)
    assert rec.advance(Seq(1, 1), 1.0) is False  # no number yet: left to observe
    assert t.observe("book", Seq(15, 15), 1.0) is None
    assert rec.advance(Seq(3, 3, prev=15), 2.0) is True  # the documented reset, on the fast path
    assert (rec.last_seq, rec.run_start, rec.last_time) == (3, 3, 2.0)
    assert rec.advance(Seq(4, 4), 3.0) is True
    assert rec.advance(Seq(9, 9, prev=7), 4.0) is False  # a gap: left to observe, record untouched
    assert rec.advance(Seq(9, 9, reset=True), 4.0) is False  # not contiguous: observe takes it
    assert (rec.last_seq, rec.last_time) == (4, 3.0)
    assert t.observe("book", Seq(9, 9, reset=True), 4.0) is None
    assert rec.last_seq == 9
    t.disconnected(5.0)
    assert rec.advance(Seq(10, 10, prev=9), 6.0) is False  # a drop is always observe's


@given(st.lists(st.integers(-5, 1000), min_size=1, max_size=40))
def test_a_chain_of_matching_prevs_never_reports_a_gap(numbers: list[int]) -> None:
    """Whatever the numbers do, each message naming the last one as its prev is in sequence."""
    t = SequenceTracker()
    last = numbers[0]
    assert t.observe("a", one(last), 0.0) is None
    for i, n in enumerate(numbers[1:], 1):
        assert t.observe("a", Seq(n, n, prev=last), float(i)) is None
        last = n
    assert t.mark("a") == TopicMark(last, float(len(numbers) - 1))


def test_backwards_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="goes backwards"):
        SequenceTracker().observe("a", Seq(5, 4), 0.0)


@given(st.lists(st.integers(0, 200), min_size=1, max_size=60, unique=True))
def test_rising_numbers_are_fully_accounted_for(numbers: list[int]) -> None:
    """Every number between the first and last is either received or inside a reported gap."""
    numbers.sort()
    t = SequenceTracker()
    covered: set[int] = set()
    for i, n in enumerate(numbers):
        gap = t.observe("a", one(n), float(i))
        covered.add(n)
        if gap is not None:
            assert gap.gap == "sequence"
            assert gap.last_seq is not None and gap.next_seq == n
            missing = set(range(gap.last_seq + 1, gap.next_seq))
            assert missing and not (missing & covered)
            covered |= missing
    assert covered == set(range(numbers[0], numbers[-1] + 1))


@given(st.lists(st.integers(0, 30), min_size=1, max_size=60))
def test_any_numbers_follow_the_rules(numbers: list[int]) -> None:
    """A single-number message is silent exactly when it is last + 1; otherwise the kind fits."""
    t = SequenceTracker()
    last: int | None = None
    for i, n in enumerate(numbers):
        gap = t.observe("a", one(n), float(i))
        if last is None or n == last + 1:
            assert gap is None
        else:
            assert gap is not None and gap.last_seq == last and gap.next_seq == n
            assert gap.gap in (("sequence",) if n > last else ("duplicate", "regression"))
        mark = t.mark("a")
        assert mark is not None
        last = mark.last_seq
        assert len(t) == 1  # bounded: one record per topic
