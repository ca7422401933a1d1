"""``VenueProtocol.dedupe_key`` of every dialect, against real frames and the venues' docs.

Expected keys are read here from each frame's raw fields, as the venues document them (read
2026-11-30):

* Binance spot "Trade Streams" (``<symbol>@trade``: ``"t": 12345 // Trade ID``) and "Aggregate
  Trade Streams" (``<symbol>@aggTrade``: ``"a": 12345 // Aggregate trade ID``); USD-M futures
  "Aggregate Trade Streams" (same ``a``). https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
* OKX "Trades channel" (``tradeId``: "Trade ID", for aggregated trades "the last trade ID in the
  trades aggregation") and "All trades channel". https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-trades-channel
* Bybit v5 "Trade" (``publicTrade.{symbol}``, ``data`` an array, ``> i`` "Trade ID").
  https://bybit-exchange.github.io/docs/v5/websocket/public/trade
* Deribit "Subscription Channels", ``trades.{instrument_name}.{interval}`` (``data`` an array of
  trades, ``trade_id`` "Unique (per currency) trade identifier"). https://docs.deribit.com
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from corpus import all_files, messages

from rxws.protocols import Binance, Bybit, Deribit, GenericJson, Okx
from rxws.protocols.base import MessageKind, VenueProtocol

DIALECTS: dict[str, VenueProtocol] = {
    "binance_spot": Binance(),
    "binance_usdm": Binance(),
    "okx": Okx(),
    "bybit": Bybit(),
    "deribit": Deribit(),
}

# Binance "Trade Streams" payload example (comments removed).
BINANCE_TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.001",
    "q": "100",
    "T": 1672515782136,
    "m": True,
    "M": True,
}
# Bybit v5 "Trade" response example.
BYBIT_TRADE = json.loads(
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
    '"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
    '"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}'
)
# Deribit trades notification: the documented data array (two trades of one taker order).
DERIBIT_TRADES = {
    "jsonrpc": "2.0",
    "method": "subscription",
    "params": {
        "channel": "trades.BTC-PERPETUAL.100ms",
        "data": [
            {"trade_seq": 30289432, "trade_id": "48079254", "timestamp": 1590484156350, "price": 8954,
             "instrument_name": "BTC-PERPETUAL", "direction": "sell", "amount": 20},
            {"trade_seq": 30289433, "trade_id": "48079255", "timestamp": 1590484156350, "price": 8954,
             "instrument_name": "BTC-PERPETUAL", "direction": "sell", "amount": 20},
        ],
    },
}  # fmt: skip


def test_default_is_none() -> None:
    assert VenueProtocol().dedupe_key({"t": 1}) is None
    assert GenericJson().dedupe_key({"topic": "x", "data": {}}) is None


@pytest.mark.parametrize("venue", ["binance_spot", "binance_usdm"])
def test_binance_agg_trades_in_the_corpus_are_keyed_by_a(venue: str) -> None:
    binance = Binance()
    trades = [
        m for m in messages(venue, "combined_depth_capture") if m.get("stream", "").endswith("@aggTrade")
    ]
    assert trades
    for m in trades:
        assert binance.dedupe_key(m) == m["data"]["a"]
        assert binance.dedupe_key(m["data"]) == m["data"]["a"]  # the same payload on a raw stream


def test_binance_trade_is_keyed_by_t() -> None:
    binance = Binance()
    assert binance.dedupe_key(BINANCE_TRADE) == 12345
    assert binance.dedupe_key({"stream": "bnbbtc@trade", "data": BINANCE_TRADE}) == 12345
    assert binance.dedupe_key({"stream": "bnbbtc@trade", "data": {**BINANCE_TRADE, "t": "x"}}) is None
    assert binance.dedupe_key({"stream": "bnbbtc@trade", "data": None}) is None
    assert binance.dedupe_key([1]) is None


@pytest.mark.parametrize("name", ["bbo_trades_capture_2026", "public_capture_2022"])
def test_okx_trades_in_the_corpus_are_keyed_by_trade_id(name: str) -> None:
    okx = Okx()
    pushes = [
        m
        for m in messages("okx", name)
        if isinstance(m, dict) and m.get("arg", {}).get("channel") == "trades"
    ]
    pushes = [m for m in pushes if "data" in m]
    assert pushes
    for m in pushes:
        ids = [item["tradeId"] for item in m["data"]]
        assert okx.dedupe_key(m) == (ids[0] if len(ids) == 1 else tuple(ids))


def test_okx_several_trades_in_one_push_give_the_tuple() -> None:
    okx = Okx()
    push = {
        "arg": {"channel": "trades-all", "instId": "BTC-USDT"},
        "data": [{"tradeId": "1"}, {"tradeId": "2"}],
    }
    assert okx.dedupe_key(push) == ("1", "2")
    assert okx.dedupe_key({**push, "data": [{"tradeId": "1"}, {"px": "1"}]}) is None  # an item without id
    assert okx.dedupe_key({**push, "data": []}) is None


def test_bybit_public_trade_is_keyed_by_i() -> None:
    bybit = Bybit()
    assert bybit.dedupe_key(BYBIT_TRADE) == "20f43950-d8dd-5b31-9112-a178eb6023af"
    two = {**BYBIT_TRADE, "data": [BYBIT_TRADE["data"][0], {**BYBIT_TRADE["data"][0], "i": "b"}]}
    assert bybit.dedupe_key(two) == ("20f43950-d8dd-5b31-9112-a178eb6023af", "b")


def test_deribit_trades_are_keyed_by_trade_id() -> None:
    deribit = Deribit()
    assert deribit.dedupe_key(DERIBIT_TRADES) == ("48079254", "48079255")
    one = {
        **DERIBIT_TRADES,
        "params": {**DERIBIT_TRADES["params"], "data": DERIBIT_TRADES["params"]["data"][:1]},
    }
    assert deribit.dedupe_key(one) == "48079254"
    kind, _ = deribit.classify(DERIBIT_TRADES)
    assert kind is MessageKind.DATA


def _is_trade(venue: str, m: Any) -> bool:
    if not isinstance(m, dict):
        return False
    if venue.startswith("binance"):
        data = m.get("data", m)
        return isinstance(data, dict) and data.get("e") in ("trade", "aggTrade")
    if venue == "okx":
        return m.get("arg", {}).get("channel") in ("trades", "trades-all") and "data" in m
    if venue == "bybit":
        return str(m.get("topic", "")).startswith("publicTrade.")
    params = m.get("params")
    return isinstance(params, dict) and str(params.get("channel", "")).startswith(("trades.", "user.trades."))


@pytest.mark.parametrize(("venue", "name"), all_files())
def test_every_other_corpus_frame_has_no_key(venue: str, name: str) -> None:
    protocol = DIALECTS[venue]
    others = [m for m in messages(venue, name) if not _is_trade(venue, m)]
    assert [protocol.dedupe_key(m) for m in others] == [None] * len(others)
