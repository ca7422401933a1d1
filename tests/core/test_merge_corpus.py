"""rxws.core.merge against real venue chains (tests/data, loaded by tests/corpus.py).

Each chain goes through two or three sources in every (or many) interleavings; the expected
outputs are the venues' documented chains, computed from the frames' raw fields here, never by
running the merge: OKX "Order book channel" (snapshot ``prevSeqId`` -1, reset ``seqId <
prevSeqId``), Bybit v5 "Orderbook" (``u == 1`` restarts with a snapshot), Deribit
``book.{instrument}.{interval}`` (``prev_change_id``), Binance diff depth (``U``/``u``, ``pu``),
OKX ``trades`` (``tradeId``; ``seqId`` repeats).
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from corpus import messages
from merge_helpers import gaps_of, interleavings, merge_of, run

from rxws.core.merge import TopicMerge
from rxws.protocols import Binance, Bybit, Deribit, Okx
from rxws.protocols.base import Seq, VenueProtocol


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
        m = merge_of(1, 2)
        out = run(m, order, {1: chain, 2: chain})
        assert out == expected, order
        assert (m.restarts, m.delivered, m.duplicates) == (1, 4, 6)
        assert gaps_of(out) == []


def test_okx_reset_missed_by_one_source_is_joined_by_its_next_message() -> None:
    chain = corpus_seqs(Okx(), "okx", "sequence_reset_derived", "books:BTC-USDT")
    missed = [chain[0], chain[1], chain[2], chain[4]]  # source 2 lost the reset message
    for order in interleavings(5, 4):
        m = merge_of(1, 2)
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
        m = merge_of(1, 2)
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
