"""rxws.core.correlation: PendingTable and request ids, without a loop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.core.correlation import PendingTable, ReplyOutcome, monotonic_ids


def test_monotonic_ids_are_unique_and_start_where_asked() -> None:
    ids = monotonic_ids()
    assert [ids() for _ in range(3)] == [1, 2, 3]
    assert monotonic_ids(100)() == 100


def test_resolve_pending_late_and_unknown() -> None:
    table: PendingTable[str] = PendingTable()
    table.add(1, "one", deadline=5.0)
    table.add(2, "two", deadline=1.0)
    assert len(table) == 2 and 1 in table
    assert table.resolve(1) == (ReplyOutcome.PENDING, "one")
    assert table.expire(2) == "two" and table.timeouts == 1
    assert table.resolve(2) == (ReplyOutcome.LATE, None)
    assert table.resolve(2) == (ReplyOutcome.UNKNOWN, None)  # a late reply is counted once
    assert table.resolve(99) == (ReplyOutcome.UNKNOWN, None)
    assert (table.late_replies, table.unknown_replies) == (1, 2)
    assert len(table) == 0


def test_duplicate_id_is_refused() -> None:
    table: PendingTable[str] = PendingTable()
    table.add("a", "x")
    with pytest.raises(KeyError):
        table.add("a", "y")
    assert table.get("a") == "x"


def test_due_expires_in_deadline_order_and_skips_resolved() -> None:
    table: PendingTable[str] = PendingTable()
    table.add(1, "late", deadline=3.0)
    table.add(2, "early", deadline=1.0)
    table.add(3, "gone", deadline=2.0)
    table.add(4, "never")  # no deadline
    table.resolve(3)
    assert table.next_deadline() == 1.0
    assert table.due(0.5) == []
    assert table.due(3.0) == [(2, "early"), (1, "late")]
    assert table.next_deadline() is None
    assert table.resolve(2) == (ReplyOutcome.LATE, None)
    assert list(table.drain()) == [(4, "never")]
    assert len(table) == 0 and table.next_deadline() is None


def test_discard_forgets_without_a_late_reply() -> None:
    table: PendingTable[str] = PendingTable()
    table.add(1, "x", deadline=1.0)
    assert table.discard(1) == "x"
    assert table.resolve(1) == (ReplyOutcome.UNKNOWN, None)
    assert table.due(10.0) == []


def test_remembers_a_bounded_number_of_expired_ids() -> None:
    table: PendingTable[int] = PendingTable(remember_expired=2)
    for rid in range(3):
        table.add(rid, rid)
        table.expire(rid)
    assert table.resolve(0) == (ReplyOutcome.UNKNOWN, None)  # forgotten, oldest first
    assert table.resolve(1) == (ReplyOutcome.LATE, None)
    assert table.resolve(2) == (ReplyOutcome.LATE, None)


def test_many_pending_stay_consistent_through_compaction() -> None:
    table: PendingTable[int] = PendingTable()
    for rid in range(1000):
        table.add(rid, rid, deadline=float(rid))
        if rid % 10:
            table.resolve(rid)
    assert len(table) == 100
    assert table.next_deadline() == 0.0
    assert [rid for rid, _ in table.due(500.0)] == list(range(0, 501, 10))


def test_reused_id_keeps_its_own_deadline() -> None:
    table: PendingTable[str] = PendingTable()
    table.add("r", "first", deadline=5.0)
    table.resolve("r")
    table.add("r", "second", deadline=100.0)  # e.g. an id generator that cycles
    assert table.next_deadline() == 100.0
    assert table.due(5.0) == []


@pytest.mark.parametrize("request_id", [[1, 2], {"a": 1}, {1}], ids=["list", "object", "set"])
def test_an_unhashable_reply_id_is_unknown_not_an_exception(request_id: object) -> None:
    table: PendingTable[str] = PendingTable()
    table.add(1, "one", deadline=5.0)
    assert table.resolve(request_id) == (ReplyOutcome.UNKNOWN, None)  # type: ignore[arg-type]
    assert table.unknown_replies == 1 and len(table) == 1
    assert table.resolve(1) == (ReplyOutcome.PENDING, "one")


def test_cancel_frees_the_slot_and_a_later_reply_is_late() -> None:
    table: PendingTable[str] = PendingTable()
    table.add(1, "one", deadline=5.0)
    table.add(2, "two", deadline=6.0)
    assert table.cancel(1) == "one"
    assert table.cancel(1) is None  # only once
    assert len(table) == 1 and 1 not in table and table.cancelled == 1 and table.timeouts == 0
    assert table.next_deadline() == 6.0  # the cancelled deadline no longer counts
    assert table.due(5.5) == []
    assert table.resolve(1) == (ReplyOutcome.LATE, None)


def test_a_streaming_entry_yields_each_part_and_is_taken_by_the_final_one() -> None:
    table: PendingTable[str] = PendingTable()
    table.add(7, "stream", deadline=5.0)
    assert table.resolve(7, final=False) == (ReplyOutcome.PARTIAL, "stream")
    assert table.resolve(7, final=False) == (ReplyOutcome.PARTIAL, "stream")
    assert 7 in table and table.next_deadline() == 5.0  # still pending, deadline kept
    assert table.resolve(7) == (ReplyOutcome.PENDING, "stream")
    assert 7 not in table and table.parts == 2
    assert table.resolve(7, final=False) == (ReplyOutcome.UNKNOWN, None)  # nothing waits any more


def test_a_part_after_a_timeout_is_late() -> None:
    table: PendingTable[str] = PendingTable()
    table.add(1, "s", deadline=1.0)
    assert table.due(1.0) == [(1, "s")]
    assert table.resolve(1, final=False) == (ReplyOutcome.LATE, None)


def test_complete_remembers_the_id_so_an_extra_copy_is_late() -> None:
    table: PendingTable[str] = PendingTable()
    table.add("o1", "x", deadline=3.0)
    assert table.complete("o1") == "x" and table.complete("o1") is None
    assert table.completed == 1 and len(table) == 0 and table.next_deadline() is None
    assert table.resolve("o1", final=False) == (ReplyOutcome.LATE, None)


def test_postpone_moves_a_deadline() -> None:
    table: PendingTable[str] = PendingTable()
    table.add(1, "s", deadline=1.0)
    assert table.postpone(1, 4.0) and not table.postpone(2, 4.0)
    assert table.due(2.0) == [] and table.next_deadline() == 4.0
    assert table.postpone(1, None) and table.next_deadline() is None
    assert table.due(100.0) == [] and 1 in table


def test_an_unhashable_id_is_unknown_for_a_part_too() -> None:
    table: PendingTable[str] = PendingTable()
    assert table.resolve([1], final=False) == (ReplyOutcome.UNKNOWN, None)  # type: ignore[arg-type]


def test_deadlines_in_send_order_and_out_of_order_expire_earliest_first() -> None:
    table: PendingTable[str] = PendingTable()
    for rid, deadline in ((1, 5.0), (2, 6.0), (3, 2.0), (4, 6.0), (5, 1.0), (6, 7.0)):
        table.add(rid, str(rid), deadline=deadline)  # 3 and 5 go back: they take the heap
    table.resolve(2)
    assert table.next_deadline() == 1.0
    assert [rid for rid, _ in table.due(6.0)] == [5, 3, 1, 4]
    assert table.next_deadline() == 7.0 and len(table) == 1


@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["add", "resolve", "due", "postpone"]), st.integers(0, 30), st.integers(0, 40)
        ),
        max_size=120,
    )
)
def test_deadlines_match_a_sorted_model(ops: list[tuple[str, int, int]]) -> None:
    """Whatever the order deadlines come in, ``due`` and ``next_deadline`` agree with a model
    that keeps every live deadline in a sorted list (ties in the order they were set)."""
    table: PendingTable[int] = PendingTable()
    model: dict[int, tuple[float, int]] = {}  # request id -> (deadline, when it was set)
    for step, (op, rid, when) in enumerate(ops):
        if op == "add" and rid not in model:
            table.add(rid, rid, deadline=float(when))
            model[rid] = (float(when), step)
        elif op == "resolve":
            table.resolve(rid)
            model.pop(rid, None)
        elif op == "postpone" and rid in model:
            assert table.postpone(rid, float(when))
            model[rid] = (float(when), step)
        elif op == "due":
            expected = sorted((d, s, r) for r, (d, s) in model.items() if d <= when)
            assert [r for r, _ in table.due(float(when))] == [r for _, _, r in expected]
            for _, _, r in expected:
                del model[r]
        assert table.next_deadline() == (min(d for d, _ in model.values()) if model else None)


def test_take_is_resolve_for_a_pending_entry_and_changes_nothing_otherwise() -> None:
    table: PendingTable[str] = PendingTable()
    for rid in range(100):  # past the FIFO's inline bound (64): both queueing paths
        table.add(rid, f"r{rid}", deadline=float(rid))
    assert table.take(7) == "r7" and 7 not in table and len(table) == 99
    assert table.take(7) is None and table.late_replies == 0 and table.unknown_replies == 0
    assert table.take(["unhashable"]) is None
    table.add(200, "late", deadline=0.5)  # out of order: on the heap
    assert [rid for rid, _ in table.due(10.0)] == [0, 200, 1, 2, 3, 4, 5, 6, 8, 9, 10]
    assert table.take(3) is None  # expired: resolve() tells it is late
    assert table.resolve(3) == (ReplyOutcome.LATE, None)
    assert table.next_deadline() == 11.0
