"""Tests for rxws.core.merge: one topic merged from several sources, each message once.

The corpus tests feed real venue chains (tests/data, loaded by tests/corpus.py) through two or
three sources in every (or many) interleavings; the expected outputs are the venues' documented
chains, computed from the frames' raw fields here, never by running the merge.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import combinations, pairwise
from typing import Any

import pytest
from corpus import messages

from rxws.core.merge import TopicMerge
from rxws.core.sequence import SequenceTracker
from rxws.events import GapDetected
from rxws.protocols import Binance, Bybit, Deribit, Okx
from rxws.protocols.base import Seq, VenueProtocol


def one(n: int, prev: int | None = None, reset: bool = False) -> Seq:
    return Seq(n, n, prev, reset)


def gaps_of(seqs: Sequence[Seq]) -> list[GapDetected]:
    """The gaps a SequenceTracker reports for the merged output ``seqs``."""
    tracker = SequenceTracker()
    out = [tracker.observe("t", s, float(i)) for i, s in enumerate(seqs)]
    return [g for g in out if g is not None]


def interleavings(a: int, b: int) -> Iterator[list[int]]:
    """Every order of ``a`` offers of source 1 and ``b`` offers of source 2, each source in order."""
    for positions in combinations(range(a + b), a):
        chosen = set(positions)
        yield [1 if i in chosen else 2 for i in range(a + b)]


def run(merge: TopicMerge, order: Sequence[int], streams: dict[int, Sequence[Any]]) -> list[Any]:
    """Offer each source's stream in ``order`` (a list of source ids); the delivered items.

    Items are ``Seq`` (sequenced) or ``(None, key)`` pairs (keyed)."""
    cursor = dict.fromkeys(streams, 0)
    out: list[Any] = []
    for source in order:
        item = streams[source][cursor[source]]
        cursor[source] += 1
        seq, key = (item, None) if isinstance(item, Seq) else item
        if merge.offer(source, seq, key):
            out.append(item)
    return out


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


# Keyed ---------------------------------------------------------------------------------------
def test_keys_are_delivered_once_within_the_window() -> None:
    m = TopicMerge(window=3)
    assert [m.offer(1, None, k) for k in "abc"] == [True] * 3
    assert [m.offer(2, None, k) for k in "abc"] == [False] * 3
    assert m.caught_up(2) is True  # its latest key is the latest delivered one
    assert m.offer(2, None, "a") is False
    assert m.caught_up(2) is False  # an older key: behind
    assert m.offer(1, None, "d") is True  # evicts "a"
    assert m.remembered == 3
    assert m.offer(2, None, "a") is True  # out of the window: taken as new
    assert (m.delivered, m.duplicates) == (5, 4)


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


# Real venue chains ---------------------------------------------------------------------------
def corpus_seqs(protocol: VenueProtocol, venue: str, name: str, topic: str) -> list[Seq]:
    out = []
    for message in messages(venue, name):
        _kind, key = protocol.classify(message)
        if key == topic:
            seq = protocol.sequence(message)
            assert seq is not None
            out.append(seq)
    return out


def test_okx_documented_reset_through_two_sources_in_every_interleaving() -> None:
    # OKX "Order book channel": snapshot 10, 10 -> 15, idle 15 -> 15, reset 15 -> 3, 3 -> 5.
    raw = [m["data"][0] for m in messages("okx", "sequence_reset_derived")]
    assert [(d["prevSeqId"], d["seqId"]) for d in raw] == [(-1, 10), (10, 15), (15, 15), (15, 3), (3, 5)]
    chain = corpus_seqs(Okx(), "okx", "sequence_reset_derived", "books:BTC-USDT")
    expected = [chain[0], chain[1], chain[3], chain[4]]  # the idle message carries nothing new
    for order in interleavings(5, 5):
        m = TopicMerge()
        m.add_source(1)
        m.add_source(2)
        out = run(m, order, {1: chain, 2: chain})
        assert out == expected, order
        assert (m.restarts, m.delivered, m.duplicates) == (1, 4, 6)
        assert gaps_of(out) == []


def test_okx_reset_missed_by_one_source_is_joined_by_its_next_message() -> None:
    chain = corpus_seqs(Okx(), "okx", "sequence_reset_derived", "books:BTC-USDT")
    missed = [chain[0], chain[1], chain[2], chain[4]]  # source 2 lost the reset message
    for order in interleavings(5, 4):
        m = TopicMerge()
        m.add_source(1)
        m.add_source(2)
        out = run(m, order, {1: chain, 2: missed})
        reset_at = [i for i, s in enumerate(order) if s == 1][3]  # source 1's reset message
        five_at = [i for i, s in enumerate(order) if s == 2][3]  # source 2's 3 -> 5
        if reset_at < five_at:
            assert out == [chain[0], chain[1], chain[3], chain[4]], order
            assert gaps_of(out) == []
        else:  # source 2 led across the reset: 3 -> 5 went out first, the late reset is superseded
            assert out == [chain[0], chain[1], chain[4]], order
            assert [(g.gap, g.last_seq, g.next_seq) for g in gaps_of(out)] == [("sequence", 15, 5)]
        assert m.restarts == 1
        assert m.caught_up(2) is True


def test_bybit_u1_restart_through_two_sources_in_every_interleaving() -> None:
    # Bybit v5 "Orderbook": snapshot, deltas u+1..., then "u"=1: a new snapshot, then u=2.
    chain = corpus_seqs(Bybit(), "bybit", "derived_from_docs", "orderbook.50.BTCUSDT")
    raw = [m["data"]["u"] for m in messages("bybit", "derived_from_docs") if "topic" in m]
    assert [s.last for s in chain] == raw == [18521288, 18521289, 18521290, 18521291, 1, 2]
    for order in interleavings(6, 6):
        m = TopicMerge()
        m.add_source(1)
        m.add_source(2)
        out = run(m, order, {1: chain, 2: chain})
        assert out == chain, order
        assert m.restarts == 1
        assert gaps_of(out) == []


def test_deribit_chain_with_complementary_losses_has_no_gap() -> None:
    topic = "book.BTC-24SEP21-8000-P.raw"
    chain = corpus_seqs(Deribit(), "deribit", "book_raw_capture", topic)
    assert len(chain) == 9 and chain[0].reset and all(s.prev == p.last for p, s in pairwise(chain))
    lost_by_1 = {2, 5, 6}
    lost_by_2 = {0, 3, 8}
    streams = {
        1: [s for i, s in enumerate(chain) if i not in lost_by_1],
        2: [s for i, s in enumerate(chain) if i not in lost_by_2],
    }
    # Sources in step (each message arrives from both before the next one): nothing is lost.
    order = [src for i in range(9) for src in (2, 1) if i not in (lost_by_1 if src == 1 else lost_by_2)]
    m = TopicMerge()
    out = run(m, order, streams)
    assert out == chain
    assert gaps_of(out) == []
    assert m.delivered + m.duplicates == len(order)


def test_deribit_range_every_source_missed_is_one_gap() -> None:
    topic = "book.BTC-24SEP21-8000-P.raw"
    chain = corpus_seqs(Deribit(), "deribit", "book_raw_capture", topic)
    streams = {1: chain[:4] + chain[6:], 2: chain[:3] + chain[6:]}  # both lost 4..5
    order = [1, 2] * 3 + [1] + [1, 2] * 3
    out = run(TopicMerge(), order, streams)
    assert out == chain[:4] + chain[6:]
    gaps = gaps_of(out)
    assert [(g.gap, g.last_seq, g.next_seq) for g in gaps] == [("sequence", chain[3].last, chain[6].first)]


@pytest.mark.parametrize(
    ("venue", "topic"),
    [("binance_spot", "ftmusdt@depth@100ms"), ("binance_usdm", "sushiusdt@depth@100ms")],
)
def test_binance_diff_depth_late_joiner_straddles_and_takes_over(venue: str, topic: str) -> None:
    chain = corpus_seqs(Binance(), venue, "combined_depth_capture", topic)
    assert len(chain) >= 15
    m = TopicMerge()
    half = len(chain) // 2
    out = [s for s in chain[:half] if m.offer(1, s)]
    # Source 2 subscribes late: its first event starts inside what source 1 delivered.
    late = Seq(chain[half - 2].first, chain[half].last, chain[half].prev)
    assert m.offer(2, late) is True
    out.append(late)
    assert m.caught_up(2) is True
    m.remove_source(1)  # the rotation's old connection closes
    out += [s for s in chain[half + 1 :] if m.offer(2, s)]
    assert [s.last for s in out] == [s.last for s in chain[:half]] + [s.last for s in chain[half:]]
    assert gaps_of(out) == []


def test_okx_trades_with_repeated_seq_ids_are_merged_by_trade_id() -> None:
    okx = Okx()
    pushes = [m for m in messages("okx", "bbo_trades_capture_2026") if m["arg"]["channel"] == "trades"]
    assert len({p["data"][0]["seqId"] for p in pushes}) < len(pushes)  # seqId repeats: no chain
    keys = [okx.dedupe_key(p) for p in pushes]
    assert keys == [p["data"][0]["tradeId"] for p in pushes]
    streams = {1: [(None, k) for k in keys], 2: [(None, k) for k in keys], 3: [(None, k) for k in keys[3:]]}
    order = [1, 2, 3] * 3 + [1, 2] * (len(keys) - 3) + [3] * (len(keys) - 6)
    m = TopicMerge()
    out = run(m, order, streams)
    assert len(out) == len(keys)
    assert sorted(k for _, k in out) == sorted(keys)  # each trade once (source 3 ran ahead at first)
    assert m.duplicates == len(order) - len(keys)
