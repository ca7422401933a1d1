"""Real update chains from the corpus (tests/data) through a WebSocketClient, in virtual time.

A client of each venue's dialect connects over a MemoryTransport to a Responder playing the
venue (it acknowledges the subscription), watches the chain's topic, and the test pushes the
captured frames as the venue sent them. Intact chains must give no GapDetected; a chain with one
message taken out of the middle must give exactly one ``GapDetected(gap="sequence")`` whose
``last_seq``/``next_seq`` are the numbers on either side of the hole, computed here from the raw
fields by the venue's documented rule (see tests/protocols/test_corpus_*.py for the sources):

* Binance spot diff depth: ``U`` == previous ``u`` + 1; USDⓈ-M: ``pu`` == previous ``u``. Either
  side of a hole: the previous event's ``u`` and the next event's ``U``.
* OKX ``books``: ``prevSeqId`` == previous ``seqId`` (whatever the numbers: the documented reset
  after maintenance has ``seqId`` < ``prevSeqId``). Either side: previous ``seqId``, next ``seqId``.
* Bybit order book: ``u`` rises by one; a ``snapshot`` (or ``u`` == 1) restarts the book.
* Deribit ``book.*.raw``: ``prev_change_id`` == previous ``change_id``.

Channels without a chain (OKX trades whose ``seqId`` repeats, ``bbo-tbt``; Deribit grouped books)
must give no GapDetected at all, and shutdown notices must reach the host as VenueNotice.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from corpus import frames, messages
from harness import Virtual

from rxws import ConnectionState
from rxws.events import GapDetected, VenueNotice
from rxws.protocols import Binance, Bybit, Deribit, Okx, VenueProtocol
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport

LATENCY = 0.25
START = 5.0  # the first corpus frame is pushed at START, the next ones 0.1 s apart
DIFF_DEPTH = re.compile(r"^[a-z0-9]+@depth(@\d+ms)?$")


class Session:
    """A connected client of ``protocol`` on a twin of ``dialect``, watching ``topics``."""

    def __init__(self, dialect: str, protocol: VenueProtocol, *topics: str) -> None:
        self.virtual = Virtual(latency=LATENCY)
        self.virtual.responder = Responder(dialect=dialect)
        self.virtual.transport = MemoryTransport(latency=LATENCY, responder=self.virtual.responder)
        self.client = self.virtual.client(protocol=protocol)
        self.got: dict[str, list[Any]] = {t: [] for t in topics}
        self.virtual.at(1.0, self.client.connect)
        for topic in topics:
            self.virtual.at(
                2.0, lambda topic=topic: self.client.watch(topic).subscribe(self.got[topic].append)
            )
        self.virtual.run(until=3.0)
        assert self.client.state_value is ConnectionState.CONNECTED
        assert sorted(self.virtual.responder.topics()) == sorted(topics)

    def play(self, lines: list[str]) -> None:
        """Push ``lines`` (corpus frames) to the client, 0.1 s apart, and let them all arrive."""
        for i, line in enumerate(lines):
            self.virtual.at(START + i / 10, lambda line=line: self.virtual.transport.peer.push(line))
        self.virtual.run(until=START + len(lines) / 10 + 1.0)

    def events(self, cls: type[Any]) -> list[Any]:
        assert self.virtual.timeline is not None
        return self.virtual.timeline.of(cls)


def _without(lines: list[str], index: int) -> list[str]:
    return lines[:index] + lines[index + 1 :]


def _check_one_hole(
    dialect: str, protocol: VenueProtocol, topic: str, lines: list[str], index: int, last: int, nxt: int
) -> None:
    """Intact: no gap, every frame delivered. Without ``lines[index]``: one sequence gap."""
    whole = Session(dialect, protocol, topic)
    whole.play(lines)
    assert whole.events(GapDetected) == []
    assert len(whole.got[topic]) == len(lines)

    holed = Session(dialect, protocol, topic)
    holed.play(_without(lines, index))
    gaps = holed.events(GapDetected)
    assert [(g.topic, g.gap, g.last_seq, g.next_seq) for g in gaps] == [(topic, "sequence", last, nxt)]
    assert len(holed.got[topic]) == len(lines) - 1  # the gap is reported; the data still flows


# Binance ---------------------------------------------------------------------------------------
def _binance_chains(venue: str) -> dict[str, list[str]]:
    chains: dict[str, list[str]] = {}
    for line, message in zip(
        frames(venue, "combined_depth_capture"), messages(venue, "combined_depth_capture"), strict=True
    ):
        if DIFF_DEPTH.match(message["stream"]):
            chains.setdefault(message["stream"], []).append(line)
    return {stream: lines for stream, lines in chains.items() if len(lines) >= 3}


@pytest.mark.parametrize(
    ("venue", "stream"),
    [(v, s) for v in ("binance_spot", "binance_usdm") for s in sorted(_binance_chains(v))],
)
def test_binance_depth_chain(venue: str, stream: str) -> None:
    lines = _binance_chains(venue)[stream]
    index = len(lines) // 2
    before, removed, after = (Binance().decode(lines[i])["data"] for i in (index - 1, index, index + 1))
    # The hole is real by the documented rule: the next event no longer follows the previous one.
    if venue == "binance_usdm":
        assert after["pu"] == removed["u"] != before["u"]
    else:
        assert after["U"] == removed["u"] + 1 != before["u"] + 1
    _check_one_hole("binance", Binance(), stream, lines, index, before["u"], after["U"])


def test_binance_chains_cover_every_captured_symbol() -> None:
    assert sorted(_binance_chains("binance_spot")) == [
        "badgerbtc@depth@100ms",
        "ftmusdt@depth@100ms",
        "sxpbtc@depth@100ms",
        "xmrbtc@depth@100ms",
    ]
    assert len(_binance_chains("binance_usdm")) == 4


# OKX -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [1, 3])
def test_okx_documented_reset_chain_is_in_sequence_and_a_hole_in_it_is_one_gap(index: int) -> None:
    lines = frames("okx", "sequence_reset_derived")
    items = [m["data"][0] for m in messages("okx", "sequence_reset_derived")]
    # (prevSeqId, seqId): (-1, 10) (10, 15) (15, 15) (15, 3) (3, 5); either side of the hole.
    _check_one_hole(
        "okx", Okx(), "books:BTC-USDT", lines, index, items[index - 1]["seqId"], items[index + 1]["seqId"]
    )


@pytest.mark.parametrize("index", [1, 2, 3])
def test_okx_captured_books_chain(index: int) -> None:
    lines = frames("okx", "books_chain_capture_2026")
    items = [m["data"][0] for m in messages("okx", "books_chain_capture_2026")]
    assert items[index + 1]["prevSeqId"] == items[index]["seqId"] != items[index - 1]["seqId"]
    _check_one_hole(
        "okx",
        Okx(),
        "books:BTC-USDT-SWAP",
        lines,
        index,
        items[index - 1]["seqId"],
        items[index + 1]["seqId"],
    )


def test_okx_a_missing_no_change_update_loses_nothing() -> None:
    """(15, 15) says nothing changed: without it, (15, 3) still names the last seqId seen."""
    lines = frames("okx", "sequence_reset_derived")
    session = Session("okx", Okx(), "books:BTC-USDT")
    session.play(_without(lines, 2))
    assert session.events(GapDetected) == []


@pytest.mark.parametrize(("channel", "drop"), [("trades", False), ("bbo-tbt", False), ("bbo-tbt", True)])
def test_okx_chainless_channels_never_report_a_gap(channel: str, drop: bool) -> None:
    topic = f"{channel}:BTC-USDT-SWAP"
    lines = [
        line
        for line, message in zip(
            frames("okx", "bbo_trades_capture_2026"), messages("okx", "bbo_trades_capture_2026"), strict=True
        )
        if message["arg"]["channel"] == channel
    ]
    assert len(lines) >= 8
    if drop:
        lines = _without(lines, len(lines) // 2)
    session = Session("okx", Okx(), topic)
    session.play(lines)
    assert session.events(GapDetected) == []
    assert len(session.got[topic]) == len(lines)


def test_okx_private_pushes_reach_their_watchers() -> None:
    lines = frames("okx", "private_capture_roq")
    pushes = messages("okx", "private_capture_roq")
    session = Session("okx", Okx(), "account", "orders:instType=ANY")
    session.play(lines)
    assert session.got["account"] == [m for m in pushes if m["arg"]["channel"] == "account"]
    assert session.got["orders:instType=ANY"] == [m for m in pushes if m["arg"]["channel"] == "orders"]
    assert len(session.got["orders:instType=ANY"]) == 3


def test_okx_64008_notices_are_shutdown_venue_notices() -> None:
    notices = [
        line
        for name in ("fixtures_docs", "control_roq")
        for line, m in zip(frames("okx", name), messages("okx", name), strict=True)
        if isinstance(m, dict) and m.get("event") == "notice"
    ]
    session = Session("okx", Okx(), "books:BTC-USDT")
    session.play(notices)
    got = session.events(VenueNotice)
    assert [(n.notice, str(n.code)) for n in got] == [("shutdown", "64008")] * 2
    assert session.client.state_value is ConnectionState.CONNECTED  # the host decides


# Binance shutdown ------------------------------------------------------------------------------
def test_binance_server_shutdown_in_every_form_is_a_shutdown_venue_notice() -> None:
    lines = frames("binance_spot", "server_shutdown")
    session = Session("binance", Binance(), "ftmusdt@depth@100ms")
    session.play(lines)
    assert [n.notice for n in session.events(VenueNotice)] == ["shutdown"] * len(lines) == ["shutdown"] * 3
    assert session.got["ftmusdt@depth@100ms"] == []


# Bybit ---------------------------------------------------------------------------------------
def test_bybit_order_book_chain_restart_with_u_1_and_a_hole() -> None:
    lines = [line for line in frames("bybit", "derived_from_docs") if '"topic"' in line]
    books = [Bybit().decode(line)["data"]["u"] for line in lines]
    assert books == [18521288, 18521289, 18521290, 18521291, 1, 2]
    # Intact (u = 1 restarts the book: no gap); without u 18521289: 18521288 then 18521290.
    _check_one_hole("bybit", Bybit(), "orderbook.50.BTCUSDT", lines, 1, books[0], books[2])


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("orderbook1_linear_capture", "AIOZUSDT"),
        ("orderbook1_linear_capture", "BANDUSDT"),
        ("orderbook1_linear_capture", "SNTUSDT"),
        ("orderbook1_spot_capture", "KCSUSDT"),
    ],
)
def test_bybit_level_1_snapshots_never_report_a_gap(name: str, symbol: str) -> None:
    """Every level-1 push is a snapshot ("reset your local orderbook"): nothing can be missing,
    even when a push is lost or ``u`` repeats (as it does in the captures)."""
    topic = f"orderbook.1.{symbol}"
    lines = [line for line in frames("bybit", name) if f'"topic":"{topic}"' in line]
    assert len(lines) >= 4
    for played in (lines, _without(lines, len(lines) // 2)):
        session = Session("bybit", Bybit(), topic)
        session.play(played)
        assert session.events(GapDetected) == []
        assert len(session.got[topic]) == len(played)


# Deribit -------------------------------------------------------------------------------------
def test_deribit_raw_book_chain() -> None:
    topic = "book.BTC-24SEP21-8000-P.raw"
    lines = [line for line in frames("deribit", "book_raw_capture") if f'"channel":"{topic}"' in line]
    data = [Deribit().decode(line)["params"]["data"] for line in lines]
    assert len(lines) == 9 and data[0]["type"] == "snapshot"
    index = 4
    assert data[index + 1]["prev_change_id"] == data[index]["change_id"] != data[index - 1]["change_id"]
    _check_one_hole(
        "deribit", Deribit(), topic, lines, index, data[index - 1]["change_id"], data[index + 1]["change_id"]
    )


def test_deribit_grouped_book_has_no_chain() -> None:
    """A grouped book notification is a whole top-N book with no prev_change_id: the same one
    twice (an unchanged book) is not a duplicate, and there is nothing to miss between two."""
    topic = "book.BTC-PERPETUAL.none.10.100ms"
    [line] = [line for line in frames("deribit", "fixtures_nautilus") if f'"channel":"{topic}"' in line]
    session = Session("deribit", Deribit(), topic)
    session.play([line, line])
    assert session.events(GapDetected) == []
    assert len(session.got[topic]) == 2
