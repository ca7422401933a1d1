"""VenueProtocol.event_time on the corpus: the venue's own time stamp, where the venue documents one.

Each capture's time stamps must fall on the day ``tests/data/SOURCES.md`` gives for its recording
(OKX's 2022 capture: within a day of it), the first one must be exactly the field the frame
carries, and replies, acks, errors and control frames have none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from corpus import messages

from rxws.protocols import Binance, Bybit, Deribit, GenericJson, Okx
from rxws.protocols.base import MessageKind, VenueProtocol

UTC = dt.UTC

# (venue dir, file, dialect, recording day per SOURCES.md, first time stamp in the file (s), how many have one)
CAPTURES = [
    ("binance_spot", "combined_depth_capture", Binance, dt.date(2021, 8, 14), 1628952395.768, 53),
    ("binance_usdm", "combined_depth_capture", Binance, dt.date(2021, 7, 22), 1626992741.017, 58),
    ("okx", "bbo_trades_capture_2026", Okx, dt.date(2026, 9, 26), 1790439596.527, 23),
    ("okx", "books_chain_capture_2026", Okx, dt.date(2026, 9, 26), None, 5),
    ("bybit", "orderbook1_linear_capture", Bybit, dt.date(2025, 6, 13), 1749833474.773, 37),
    ("bybit", "orderbook1_spot_capture", Bybit, dt.date(2025, 6, 13), 1749833472.906, 14),
    ("deribit", "book_raw_capture", Deribit, dt.date(2021, 7, 22), None, 20),
]


def _times(protocol: VenueProtocol, venue: str, name: str) -> list[tuple[Any, float | None]]:
    return [(m, protocol.event_time(m)) for m in messages(venue, name)]


@pytest.mark.parametrize(
    ("venue", "name", "dialect", "day", "first", "stamped"), CAPTURES, ids=lambda v: str(v)
)
def test_captured_data_carries_the_recording_time(
    venue: str, name: str, dialect: type[VenueProtocol], day: dt.date, first: float | None, stamped: int
) -> None:
    protocol = dialect()
    pairs = _times(protocol, venue, name)
    times = [t for _, t in pairs if t is not None]
    assert len(times) == stamped
    assert {dt.datetime.fromtimestamp(t, UTC).date() for t in times} == {day}
    if first is not None:
        assert times[0] == pytest.approx(first, abs=1e-6)
    for message, t in pairs:  # a time stamp only on data messages
        kind, _ = protocol.classify(message)
        assert t is None or kind is MessageKind.DATA, message


def test_binance_reads_e_in_both_forms_and_bookticker_has_none() -> None:
    protocol = Binance()
    combined = {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1672515782136, "s": "BTCUSDT"}}
    assert protocol.event_time(combined) == pytest.approx(1672515782.136)
    assert protocol.event_time(combined["data"]) == pytest.approx(1672515782.136)
    spot = messages("binance_spot", "combined_depth_capture")
    book_tickers = [m for m in spot if m["stream"].endswith("@bookTicker")]
    assert book_tickers and all(protocol.event_time(m) is None for m in book_tickers)  # spot: no E
    assert protocol.event_time({"result": None, "id": 1}) is None
    assert protocol.event_time({"stream": "x", "data": {"E": "soon"}}) is None  # not a number


def test_okx_reads_the_last_items_ts_string() -> None:
    protocol = Okx()
    trades = [m for m in messages("okx", "public_capture_2022") if "data" in m]
    assert trades and all(protocol.event_time(m) is not None for m in trades)
    for message in trades:
        assert protocol.event_time(message) == int(message["data"][-1]["ts"]) / 1000
    days = {dt.datetime.fromtimestamp(protocol.event_time(m) or 0, UTC).date() for m in trades}
    assert days <= {dt.date(2022, 2, 27), dt.date(2022, 2, 28)}  # the capture, UTC vs local day
    for name in ("control_roq", "rate_limit_derived"):  # events and op replies: none
        assert all(protocol.event_time(m) is None for m in messages("okx", name))
    assert protocol.event_time("pong") is None


def test_bybit_reads_the_top_level_ts_of_pushes_only() -> None:
    protocol = Bybit()
    delta = messages("bybit", "fixtures_and_docs")[2]
    assert protocol.event_time(delta) == pytest.approx(1709891679.5)
    for reply in messages("bybit", "derived_from_docs")[:2]:  # op replies carry no push ts
        assert protocol.event_time(reply) is None


def test_deribit_reads_the_notification_timestamp() -> None:
    protocol = Deribit()
    book = messages("deribit", "book_raw_capture")
    assert protocol.event_time(book[0]) is None  # the subscribe reply
    stamps = [protocol.event_time(m) for m in book[1:]]
    assert all(s is not None for s in stamps)
    assert stamps == [m["params"]["data"]["timestamp"] / 1000 for m in book[1:]]
    grouped, error, test_request = messages("deribit", "fixtures_nautilus")
    assert protocol.event_time(grouped) == pytest.approx(1769246173.071)
    assert protocol.event_time(error) is None and protocol.event_time(test_request) is None
    trades = {"method": "subscription", "params": {"channel": "trades.BTC-PERPETUAL.raw", "data": [
        {"trade_id": "1", "timestamp": 1590484156350}, {"trade_id": "2", "timestamp": 1590484156352},
    ]}}  # fmt: skip
    assert protocol.event_time(trades) == pytest.approx(1590484156.352)  # the last trade's


def test_the_default_reads_none() -> None:
    assert GenericJson().event_time({"topic": "t", "seq": 1, "data": {"ts": 1}}) is None
