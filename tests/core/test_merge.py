"""Tests for rxws.core.merge: one topic merged from several sources, each message once.

Unit tests of each rule, then Hypothesis properties: random interleavings of two and three
sources' deliveries of one venue sequence, with random losses and repeats per source. Real venue
chains (tests/data) are in test_merge_corpus.py.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from merge_helpers import gaps_of, one

from rxws.core.merge import TopicMerge
from rxws.protocols.base import Seq, make_seq


# Sequenced ---------------------------------------------------------------------------------
def test_first_offer_is_delivered_and_higher_numbers_follow() -> None:
    m = TopicMerge()
    assert m.mark is None
    assert [m.offer(1, one(n)) for n in (5, 6, 8)] == [True, True, True]
    assert m.mark == 8
    assert (m.delivered, m.duplicates) == (3, 0)


def test_a_second_source_copy_is_a_counted_duplicate() -> None:
    m = TopicMerge()
    assert m.offer(1, one(1)) is True
    assert m.offer(2, one(1)) is False
    assert m.offer(2, one(2)) is True  # source 2 leads now
    assert m.offer(1, one(2)) is False
    assert (m.delivered, m.duplicates) == (2, 2)
    assert m.sources == frozenset({1, 2})


def test_range_straddling_the_mark_is_delivered() -> None:
    # Binance diff depth: an event with U <= mark < u still extends the book.
    m = TopicMerge()
    assert m.offer(1, Seq(100, 110)) is True
    assert m.offer(2, Seq(105, 115)) is True
    assert m.offer(1, Seq(111, 115)) is False  # nothing beyond 115
    assert m.offer(3, Seq(90, 99)) is False  # older than the chain (a late joiner's first event)
    assert m.mark == 115


def test_snapshot_at_or_below_the_mark_is_a_duplicate_above_it_is_delivered() -> None:
    m = TopicMerge()
    m.offer(1, one(10, reset=True))
    m.offer(1, one(12, prev=10))
    assert m.offer(2, one(12, reset=True)) is False  # a new subscription's snapshot, same state
    assert m.offer(3, one(11, reset=True)) is False  # older than what the host has
    assert m.offer(3, one(14, reset=True)) is True  # newer: it goes out
    assert m.restarts == 0


def test_idle_heartbeat_and_resent_snapshot_are_duplicates_of_a_single_source() -> None:
    m = TopicMerge()
    assert m.offer(1, one(15, prev=10)) is True
    assert m.offer(1, one(15, prev=15)) is False  # OKX idle: seqId == prevSeqId
    assert m.offer(1, one(15, reset=True)) is False  # Bybit level 1 re-sends the same u
    assert m.duplicates == 2


def test_backwards_range_is_refused() -> None:
    m = TopicMerge()
    with pytest.raises(ValueError, match="backwards"):
        m.offer(1, Seq(5, 4))
    assert (m.delivered, m.duplicates) == (0, 0)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        TopicMerge(window=0)


def test_caught_up_follows_the_latest_offer() -> None:
    m = TopicMerge()
    assert m.caught_up(2) is False  # unknown
    m.add_source(2)
    assert m.caught_up(2) is False  # known, no offer yet
    for n in (1, 2, 3):
        m.offer(1, one(n))
    m.offer(2, one(2))
    assert m.caught_up(2) is False  # behind the mark
    m.offer(2, one(3))
    assert m.caught_up(2) is True  # a copy of the latest delivered message
    m.offer(1, one(4))
    assert m.caught_up(2) is True  # judged at its offer, not moved by the other source
    m.offer(2, one(5))
    assert m.caught_up(2) is True  # delivered: ahead
    m.remove_source(2)
    assert m.caught_up(2) is False


def test_a_restart_marked_by_prev_opens_a_new_chain_once() -> None:
    m = TopicMerge()
    m.add_source(2)
    for n, p in ((10, None), (15, 10)):
        m.offer(1, one(n, p, reset=p is None))
    assert m.offer(1, one(3, prev=15)) is True  # OKX: seqId < prevSeqId
    assert (m.mark, m.restarts) == (3, 1)
    assert m.offer(2, one(10, reset=True)) is False  # source 2 is still on the old chain
    assert m.offer(2, one(15, prev=10)) is False
    assert m.caught_up(2) is False
    assert m.offer(2, one(3, prev=15)) is False  # shows the restart: joins, a copy
    assert m.caught_up(2) is True
    assert m.offer(2, one(5, prev=3)) is True
    assert m.restarts == 1


def test_an_unmarked_regression_below_the_chain_is_a_restart() -> None:
    # Numbers going back below everything this chain delivered: the tracker's "regression".
    m = TopicMerge()
    for n in (100, 101, 102):
        m.offer(1, one(n))
    assert m.offer(1, one(101)) is False  # a repeat inside the chain stays a duplicate
    assert m.offer(1, one(7)) is True
    assert (m.mark, m.restarts) == (7, 1)
    assert m.offer(1, one(8)) is True


def test_a_lone_stale_survivor_is_moved_onto_the_current_chain() -> None:
    m = TopicMerge()
    for n in (1, 2, 3, 10):
        m.offer(1, one(n))
    m.offer(2, one(3))
    assert m.offer(1, one(5, reset=True)) is True  # source 1 restarts (5 < 10, a snapshot)
    assert m.offer(2, one(12)) is False  # source 2 lagged across it, never going back: stale
    assert m.caught_up(2) is False
    m.remove_source(1)
    assert m.restarts == 2
    assert m.mark == 12  # its own latest number
    assert m.offer(2, one(13)) is True  # not swallowed forever
    assert m.caught_up(2) is True


def test_a_stale_source_going_back_joins_the_current_chain() -> None:
    m = TopicMerge()
    for s in (1, 2):
        for n in (1, 2, 3, 10):
            m.offer(s, one(n))
    assert m.offer(1, one(5, reset=True)) is True
    assert m.offer(2, one(6)) is True  # 6 < its 10: it crossed the restart it did not receive
    assert m.offer(1, one(6)) is False
    assert m.restarts == 1


def test_seed_starts_from_what_a_lone_source_delivered() -> None:
    m = TopicMerge()
    m.seed(1, 41)  # source 1 delivered up to 41 before the merge existed
    assert (m.mark, m.delivered, m.duplicates) == (41, 0, 0)
    assert m.offer(2, one(40, reset=True)) is False  # the new session's older snapshot
    assert m.offer(2, one(42)) is True
    assert m.offer(1, one(42)) is False
    assert m.caught_up(1) is True
    m.seed(3, 10)  # a lower seed moves nothing
    assert m.mark == 42


# Keyed ---------------------------------------------------------------------------------------
def test_keys_are_delivered_once_within_the_window() -> None:
    m = TopicMerge(window=3)
    assert [m.offer(1, None, k) for k in "abc"] == [True] * 3
    assert [m.offer(2, None, k) for k in "abc"] == [False] * 3
    assert m.caught_up(2) is True  # its latest key is the latest delivered one
    assert m.offer(2, None, "a") is False
    assert m.caught_up(2) is False  # an older key: behind
    assert [m.offer(1, None, k) for k in "de"] == [True] * 2
    assert m.remembered == 5  # "a" is older than the last 3 but still held (at most 2 * 3 - 1)
    assert m.offer(2, None, "a") is False
    assert m.offer(1, None, "f") is True  # "d", "e", "f" fill a generation: "a", "b", "c" go
    assert m.remembered == 3
    assert m.offer(2, None, "a") is True  # forgotten: taken as new
    assert (m.delivered, m.duplicates) == (7, 5)


def test_keyed_and_sequenced_messages_do_not_interfere() -> None:
    m = TopicMerge()
    assert m.offer(1, one(1)) is True
    assert m.offer(1, None, 1) is True
    assert m.offer(2, one(1)) is False
    assert m.offer(2, None, 1) is False
    assert m.remembered == 1


# Neither -------------------------------------------------------------------------------------
def test_unsequenced_unkeyed_messages_come_from_the_primary_only() -> None:
    m = TopicMerge()
    assert m.primary is None
    assert m.offer(1, None) is True  # the first source becomes primary
    assert m.offer(2, None) is False
    assert m.caught_up(2) is True  # without sequence or key, any offer counts
    m.set_primary(2)
    assert m.offer(1, None) is False
    assert m.offer(2, None) is True
    m.remove_source(2)
    assert m.primary is None
    assert m.offer(1, None) is True
    assert m.primary == 1
    assert (m.delivered, m.duplicates) == (3, 2)


def test_removing_an_unknown_source_does_nothing() -> None:
    m = TopicMerge()
    m.offer(1, one(1))
    m.remove_source(9)
    assert (m.sources, m.mark, m.restarts) == (frozenset({1}), 1, 0)


def test_a_source_added_before_a_restart_joins_at_or_below_the_mark() -> None:
    m = TopicMerge()
    m.add_source(2)
    m.add_source(3)
    for n in (100, 101):
        m.offer(1, one(n))
    m.offer(1, one(4, reset=True))  # source 1 restarts the chain at 4
    assert m.offer(2, one(101, reset=True)) is False  # its late snapshot of the old chain
    assert m.offer(2, one(102)) is False  # still the old chain
    assert m.offer(3, one(4, reset=True)) is False  # a copy of the new chain: joins
    assert m.caught_up(3) is True
    assert m.offer(3, one(5)) is True
    assert m.offer(2, one(5)) is False  # back on its own stream: joins, a copy
    assert m.caught_up(2) is True
    assert m.restarts == 1


# Properties ------------------------------------------------------------------------------------
BASE = 1000


def venue_chain(flavour: str, n: int, restart_at: int | None) -> list[Seq]:
    """A venue's sequence of ``n`` messages, restarting its numbering low at ``restart_at``.

    ``binance``: ranges ``U..u`` two wide, no prev (no restart); ``okx``: a snapshot, then
    ``prevSeqId`` links, the restart message has ``seqId < prevSeqId``; ``bybit``: a snapshot,
    deltas, the restart is a snapshot (``u == 1`` style, ``reset``)."""
    chain: list[Seq] = []
    for i in range(n):
        restarted = restart_at is not None and i >= restart_at
        number = 3 + i - restart_at if restart_at is not None and restarted else BASE + 1 + i
        if flavour == "binance":
            chain.append(Seq(BASE + 1 + 2 * i, BASE + 2 + 2 * i))
        elif flavour == "okx":
            chain.append(Seq(number, number, chain[-1].last if chain else None, not chain))
        else:
            chain.append(Seq(number, number, None, i == 0 or i == restart_at))
    return chain


@st.composite
def deliveries(draw: st.DrawFn, restarts: bool) -> tuple[list[Seq], list[list[tuple[int, int]]]]:
    """A venue chain and, per source (two or three), the (venue index, copy) pairs it received:
    random losses, and random repeats of a message right after it."""
    flavour = draw(st.sampled_from(["binance", "okx", "bybit"] if not restarts else ["okx", "bybit"]))
    n = draw(st.integers(min_value=1, max_value=30))
    restart_at = draw(st.integers(min_value=1, max_value=n - 1)) if restarts and n > 1 else None
    chain = venue_chain(flavour, n, restart_at)
    streams = []
    for _ in range(draw(st.integers(min_value=2, max_value=3))):
        kept = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        if restart_at is not None:  # each source subscribed before the restart (rxws.core.merge:
            kept[0] = True  # a newcomer after a restart no source showed yet is ambiguous)
        copies = draw(st.lists(st.integers(min_value=1, max_value=2), min_size=n, max_size=n))
        streams.append([(i, c) for i in range(n) if kept[i] for c in range(copies[i])])
    return chain, streams


def in_step(draw: st.DrawFn, streams: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Every source's offers as (source, venue index), sorted by venue index: sources in step,
    the order between sources for one message random."""
    ties = draw(st.permutations(range(len(streams))))
    offers = [(i, ties[s], c, s) for s, stream in enumerate(streams) for i, c in stream]
    return [(s, i) for i, _, _, s in sorted(offers)]


def any_order(draw: st.DrawFn, streams: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """Every source's offers as (source, venue index), each source in its own order, the sources
    interleaved at random (any source may lag any other by any amount)."""
    cursors = [0] * len(streams)
    order = []
    while True:
        live = [s for s, stream in enumerate(streams) if cursors[s] < len(stream)]
        if not live:
            return order
        s = draw(st.sampled_from(live))
        order.append((s, streams[s][cursors[s]][0]))
        cursors[s] += 1


def holes(indices: list[int]) -> list[tuple[int, int]]:
    """(before, after) venue indices around each range missing inside ``indices``."""
    return [(a, b) for a, b in pairwise(indices) if b != a + 1]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), restarts=st.booleans())
def test_sources_in_step_lose_only_what_every_source_missed(data: st.DataObject, restarts: bool) -> None:
    chain, streams = data.draw(deliveries(restarts))
    order = in_step(data.draw, streams)
    m = TopicMerge()
    out = [i for s, i in order if m.offer(s, chain[i])]
    received = sorted({i for stream in streams for i, _ in stream})
    assert out == received  # the venue's sequence, each once, minus what no source received
    assert (m.delivered, m.duplicates) == (len(out), len(order) - len(out))
    assert m.restarts == (1 if _crosses(chain, received) else 0)
    gaps = gaps_of([chain[i] for i in out])
    expected = [(chain[a].last, chain[b].first) for a, b in holes(out) if not chain[b].reset]
    assert [(g.last_seq, g.next_seq) for g in gaps] == expected  # a gap exactly where all missed


def _crosses(chain: list[Seq], received: list[int]) -> bool:
    """Whether the received part of ``chain`` goes from the first numbering to the restarted one."""
    return any(chain[i].last < BASE for i in received) and any(chain[i].last > BASE for i in received)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_interleaving_delivers_each_number_once_in_order(data: st.DataObject) -> None:
    chain, streams = data.draw(deliveries(False))
    order = data.draw(st.builds(lambda: None)) or any_order(data.draw, streams)
    m = TopicMerge()
    out = [i for s, i in order if m.offer(s, chain[i])]
    assert out == sorted(set(out))  # increasing: no repeat, nothing out of order
    # A message goes out iff its first copy arrives before any copy of a later message.
    highest = -1
    expected = []
    for _, i in order:
        if i > highest:
            expected.append(i)
            highest = i
    assert out == expected
    assert m.restarts == 0
    assert m.delivered + m.duplicates == len(order)
    gaps = gaps_of([chain[i] for i in out])
    assert [(g.last_seq, g.next_seq) for g in gaps] == [
        (chain[a].last, chain[b].first) for a, b in holes(out)
    ]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_keyed_sources_deliver_each_key_once(data: st.DataObject) -> None:
    _, streams = data.draw(deliveries(False))
    order = any_order(data.draw, streams)
    m = TopicMerge(window=64)  # more than the 30 keys: nothing is forgotten
    out = [i for s, i in order if m.offer(s, None, ("trade", i))]
    first_seen = list(dict.fromkeys(i for _, i in order))
    assert out == first_seen  # each key once, when its first copy arrived
    assert m.delivered + m.duplicates == len(order)


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.integers(min_value=0, max_value=40), max_size=200),
    window=st.integers(min_value=1, max_value=16),
)
def test_keyed_memory_is_bounded_by_the_window(keys: list[int], window: int) -> None:
    m = TopicMerge(window=window)
    delivered: list[int] = []
    for n, k in enumerate(keys):
        fresh = m.offer(n % 3, None, k)
        if k in delivered[-window:]:
            assert fresh is False  # the last `window` delivered keys are always remembered
        elif k not in delivered[-(2 * window - 1) :]:
            assert fresh is True  # nothing older than 2 * window - 1 keys is held
        if fresh:
            delivered.append(k)
        assert min(len(delivered), window) <= m.remembered <= 2 * window - 1


# offer_copy: the shortcut for a copy of a delivered message -----------------------------------
def _state(m: TopicMerge) -> tuple[object, ...]:
    sources = {s: (src.last, src.epoch, src.caught) for s, src in m._sources.items()}
    return (m.mark, m.delivered, m.duplicates, m.restarts, m.remembered, m.primary, sources)


_ops = st.lists(
    st.one_of(
        st.tuples(
            st.integers(1, 3),
            st.integers(1, 12),
            st.integers(0, 2),
            st.one_of(st.none(), st.integers(0, 12)),
            st.booleans(),
        ),
        st.tuples(st.just("key"), st.integers(1, 3), st.one_of(st.none(), st.integers(0, 6))),
        st.tuples(st.just("remove"), st.integers(1, 3)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops)
def test_offer_copy_takes_only_plain_duplicates_and_changes_what_offer_would(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """Fed the same offers, a merge that tries ``offer_copy`` first (then ``offer`` when it
    declines) ends every step in the same state, with the same decisions, as one that only
    uses ``offer``; ``offer_copy`` never takes a message ``offer`` would deliver."""
    shortcut, plain = TopicMerge(window=3), TopicMerge(window=3)
    for op in ops:
        if op[0] == "remove":
            shortcut.remove_source(op[1])
            plain.remove_source(op[1])
            continue
        if op[0] == "key":
            source, seq, key = op[1], None, op[2]
        else:
            source, first, width, prev, reset = op  # type: ignore[misc]
            seq, key = Seq(first, first + width, prev, reset), None
        taken = shortcut.offer_copy(source, seq, key)
        delivered = False if taken else shortcut.offer(source, seq, key)
        assert delivered == plain.offer(source, seq, key)
        assert not (taken and delivered)
        assert _state(shortcut) == _state(plain)


def test_offer_copy_declines_an_unknown_source_and_anything_not_yet_delivered() -> None:
    m = TopicMerge()
    assert m.offer_copy(1, one(1)) is False  # unknown source
    assert m.offer(1, one(1)) is True
    assert m.offer_copy(1, one(2)) is False  # above the mark: offer() delivers it
    assert m.offer_copy(1, one(1)) is True  # a copy of what was delivered
    assert (m.delivered, m.duplicates) == (1, 1)


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["offer", "copy", "add", "remove", "snapshot"]),
        st.integers(0, 2),
        st.integers(-3, 12),
    ),
    max_size=60,
)


@given(_OPS)
def test_offer_number_judges_as_offer_of_seq_n_n(ops: list[tuple[str, int, int]]) -> None:
    """``offer_number``/``offer_copy_number`` (the counter-field fast path) answer and move the
    state exactly as ``offer``/``offer_copy`` of ``Seq(n, n)``, restarts and stale sources too."""
    by_seq, by_number = TopicMerge(), TopicMerge()
    for op, source, n in ops:
        if op == "offer":
            assert by_number.offer_number(source, n) == by_seq.offer(source, make_seq(n, n))
        elif op == "copy":
            assert by_number.offer_copy_number(source, n) == by_seq.offer_copy(source, make_seq(n, n))
        elif op == "snapshot":  # another kind of message moves both alike
            assert by_number.offer(source, make_seq(n, n, None, True)) == by_seq.offer(
                source, make_seq(n, n, None, True)
            )
        elif op == "add":
            by_seq.add_source(source)
            by_number.add_source(source)
        else:
            by_seq.remove_source(source)
            by_number.remove_source(source)
        for merge in (by_seq, by_number):
            assert merge.sources == by_seq.sources
        assert (by_number.mark, by_number.delivered, by_number.duplicates, by_number.restarts) == (
            by_seq.mark,
            by_seq.delivered,
            by_seq.duplicates,
            by_seq.restarts,
        )
        assert [by_number.caught_up(s) for s in range(3)] == [by_seq.caught_up(s) for s in range(3)]
