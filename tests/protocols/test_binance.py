"""Binance on the examples of Binance's own API documentation.

Sources (read 2026-11-25):

* STREAMS: "WebSocket Streams for Binance", https://github.com/binance/binance-spot-api-docs/blob/master/
  web-socket-streams.md (also https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams),
  sections "Live Subscribing/Unsubscribing to streams", "Error Messages", "Trade Streams",
  "Kline/Candlestick Streams", "Diff. Depth Stream". The docs write payloads as JavaScript with
  ``// comments``; the comments are left out, the JSON is otherwise copied literally.
* WSAPI: "WebSocket API for Binance", https://github.com/binance/binance-spot-api-docs/blob/master/
  web-socket-api.md, sections "Response format" and "Rate limits" > "IP limits".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.exceptions import DecodeError
from rxws.protocols import Binance, MessageKind, Seq
from rxws.protocols.binance import raw_stream_name

DATA, REPLY, CONTROL, ERROR, UNKNOWN, NOTICE = (
    MessageKind.DATA,
    MessageKind.REPLY,
    MessageKind.CONTROL,
    MessageKind.ERROR,
    MessageKind.UNKNOWN,
    MessageKind.NOTICE,
)

# STREAMS, "Subscribe to a stream".
SUBSCRIBE_REQUEST = """{
    "method": "SUBSCRIBE",
    "params": [
      "btcusdt@aggTrade",
      "btcusdt@depth"
    ],
    "id": 1
  }"""
SUBSCRIBE_RESPONSE = """{
    "result": null,
    "id": 1
  }"""
# STREAMS, "Unsubscribe to a stream".
UNSUBSCRIBE_REQUEST = """{
    "method": "UNSUBSCRIBE",
    "params": [
      "btcusdt@depth"
    ],
    "id": 312
  }"""
# STREAMS, "Listing Subscriptions".
LIST_REQUEST = """{
    "method": "LIST_SUBSCRIPTIONS",
    "id": 3
  }"""
LIST_RESPONSE = """{
    "result": [
      "btcusdt@aggTrade"
    ],
    "id": 3
  }"""
# STREAMS, "Error Messages" table.
ERROR_UNKNOWN_PROPERTY = '{"code": 0, "msg": "Unknown property","id": 5}'  # the docs' "%s" id filled in
ERROR_BAD_ID = '{"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}'
ERROR_BAD_JSON = '{"code":3,"msg":"Invalid JSON: expected value at line %s column %s"}'
# STREAMS, "Diff. Depth Stream" payload.
DIFF_DEPTH = """{
  "e": "depthUpdate",
  "E": 1672515782136,
  "s": "BNBBTC",
  "U": 157,
  "u": 160,
  "b": [
    [
      "0.0024",
      "10"
    ]
  ],
  "a": [
    [
      "0.0026",
      "100"
    ]
  ]
}"""
# STREAMS, "Trade Streams" payload.
TRADE = """{
  "e": "trade",
  "E": 1672515782136,
  "s": "BNBBTC",
  "t": 12345,
  "p": "0.001",
  "q": "100",
  "T": 1672515782136,
  "m": true,
  "M": true
}"""
# WSAPI, "Response format", failed response.
WSAPI_FAILED = """{
  "id": "e2a85d9f-07a5-4f94-8d5f-789dc3deb097",
  "status": 400,
  "error": {
    "code": -2010,
    "msg": "Account has insufficient balance for requested action."
  },
  "rateLimits": [
    {
      "rateLimitType": "ORDERS",
      "interval": "SECOND",
      "intervalNum": 10,
      "limit": 50,
      "count": 13
    }
  ]
}"""
# WSAPI, "Rate limits" > "IP limits": banned response.
WSAPI_BANNED = """{
  "id": "fc93a61a-a192-4cf4-bb2a-a8f0f0c51e06",
  "status": 418,
  "error": {
    "code": -1003,
    "msg": "Way too much request weight used; IP banned until 1659146400000. Please use WebSocket Streams for live updates to avoid bans.",
    "data": {
      "serverTime": 1659142907531,
      "retryAfter": 1659146400000
    }
  },
  "rateLimits": [
    {
      "rateLimitType": "REQUEST_WEIGHT",
      "interval": "MINUTE",
      "intervalNum": 1,
      "limit": 6000,
      "count": 2411
    }
  ]
}"""


@pytest.fixture
def bn() -> Binance:
    return Binance()


def test_subscribe_unsubscribe_and_list_requests_match_the_docs(bn: Binance) -> None:
    assert bn.subscribe_message(["btcusdt@aggTrade", "btcusdt@depth"], 1) == json.loads(SUBSCRIBE_REQUEST)
    assert bn.unsubscribe_message(["btcusdt@depth"], 312) == json.loads(UNSUBSCRIBE_REQUEST)
    assert bn.request_message("LIST_SUBSCRIPTIONS", None, 3) == json.loads(LIST_REQUEST)


def test_subscribe_ack_is_a_reply_with_null_result(bn: Binance) -> None:
    msg = bn.decode(SUBSCRIBE_RESPONSE)
    assert bn.classify(msg) == (REPLY, 1)
    assert bn.reply_error(msg) is None
    assert bn.reply_result(msg) is None


def test_list_subscriptions_reply(bn: Binance) -> None:
    msg = bn.decode(LIST_RESPONSE)
    assert bn.classify(msg) == (REPLY, 3)
    assert bn.reply_result(msg) == ["btcusdt@aggTrade"]


def test_error_with_id_is_a_reply_error_even_with_code_zero(bn: Binance) -> None:
    msg = bn.decode(ERROR_UNKNOWN_PROPERTY)
    assert bn.classify(msg) == (REPLY, 5)
    error = bn.reply_error(msg)
    assert error is not None and (error.code, error.message) == (0, "Unknown property")


@pytest.mark.parametrize("frame, code", [(ERROR_BAD_ID, 2), (ERROR_BAD_JSON, 3)])
def test_errors_without_id_are_errors_keyed_by_code(bn: Binance, frame: str, code: int) -> None:
    msg = bn.decode(frame)
    assert bn.classify(msg) == (ERROR, code)
    error = bn.reply_error(msg)
    assert error is not None and error.code == code


def test_wsapi_error_reply(bn: Binance) -> None:
    msg = bn.decode(WSAPI_FAILED)
    assert bn.classify(msg) == (REPLY, "e2a85d9f-07a5-4f94-8d5f-789dc3deb097")
    error = bn.reply_error(msg)
    assert error is not None
    assert (error.code, error.message) == (-2010, "Account has insufficient balance for requested action.")
    assert bn.rate_limit_signal(msg) is None


def test_ip_ban_is_a_rate_limit_signal(bn: Binance) -> None:
    msg = bn.decode(WSAPI_BANNED)
    assert bn.classify(msg) == (REPLY, "fc93a61a-a192-4cf4-bb2a-a8f0f0c51e06")
    assert bn.rate_limit_signal(msg) == "binance_-1003"
    error = bn.reply_error(msg)
    assert error is not None and error.code == -1003
    assert bn.rate_limit_signal({"code": -1003, "msg": "Too many requests."}) == "binance_-1003"
    assert bn.rate_limit_signal({"code": -1015, "msg": "Too many new orders."}) == "binance_-1015"


def test_combined_stream_is_data_keyed_by_stream_with_depth_sequence(bn: Binance) -> None:
    # "Combined stream events are wrapped as follows: {"stream":"<streamName>","data":<rawPayload>}"
    msg = {"stream": "bnbbtc@depth", "data": json.loads(DIFF_DEPTH)}
    assert bn.classify(msg) == (DATA, "bnbbtc@depth")
    assert bn.sequence(msg) == Seq(157, 160)


def test_raw_payloads_are_routed_by_a_derived_stream_name(bn: Binance) -> None:
    depth = bn.decode(DIFF_DEPTH)
    assert bn.classify(depth) == (DATA, "bnbbtc@depth")
    assert bn.sequence(depth) == Seq(157, 160)
    trade = bn.decode(TRADE)
    assert bn.classify(trade) == (DATA, "bnbbtc@trade")
    assert bn.sequence(trade) is None
    kline = {"e": "kline", "E": 1672515782136, "s": "BNBBTC", "k": {"i": "1m"}}
    assert raw_stream_name(kline) == "bnbbtc@kline_1m"
    assert raw_stream_name({"e": "24hrTicker", "s": "BNBBTC"}) == "bnbbtc@ticker"


def test_futures_depth_previous_update_id_is_prev(bn: Binance) -> None:
    msg = {"stream": "btcusdt@depth", "data": {"e": "depthUpdate", "U": 157, "u": 160, "pu": 149}}
    assert bn.sequence(msg) == Seq(157, 160, 149)


# STREAMS "Server Shutdown" (raw and combined forms) and WSAPI "Connection events" > "Server
# Shutdown" (https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/connection-events),
# read 2026-11-30: the three documented forms of one notice.
SHUTDOWN_RAW = '{"e": "serverShutdown", "E": 1770123456789}'
SHUTDOWN_COMBINED = '{"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1770123456789}}'
SHUTDOWN_WSAPI = '{"event": {"e": "serverShutdown", "E": 1770123456789}}'


@pytest.mark.parametrize(
    "frame", [SHUTDOWN_RAW, SHUTDOWN_COMBINED, SHUTDOWN_WSAPI], ids=["raw", "combined", "wsapi"]
)
def test_server_shutdown_is_one_notice_in_every_form(bn: Binance, frame: str) -> None:
    msg = bn.decode(frame)
    assert bn.classify(msg) == (NOTICE, "shutdown")
    assert bn.notice_detail(msg) == (None, "serverShutdown E=1770123456789")
    assert bn.sequence(msg) is None


def test_a_stream_event_named_like_the_notice_elsewhere_is_not_a_notice(bn: Binance) -> None:
    # Only the documented "!serverShutdown" stream is the notice; other streams stay data.
    assert bn.classify({"stream": "bnbbtc@trade", "data": json.loads(TRADE)}) == (DATA, "bnbbtc@trade")
    assert bn.classify({"event": {"e": "outboundAccountPosition"}}) == (UNKNOWN, None)


# USD-M Futures "Diff. Book Depth Streams" and "Partial Book Depth Streams" payloads
# (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/,
# read 2026-11-30), comments left out; spot "Individual Symbol Book Ticker Streams" and "Partial
# Book Depth Streams" from STREAMS.
FUTURES_DIFF_DEPTH = """{"e": "depthUpdate", "E": 123456789, "T": 123456788, "s": "BTCUSDT",
  "U": 157, "u": 160, "pu": 149, "b": [["0.0024", "10"]], "a": [["0.0026", "100"]]}"""
FUTURES_PARTIAL_DEPTH = """{"e": "depthUpdate", "E": 1571889248277, "T": 1571889248276, "s": "BTCUSDT",
  "U": 390497796, "u": 390497878, "pu": 390497794,
  "b": [["7403.89", "0.002"]], "a": [["7405.96", "3.340"]]}"""
SPOT_PARTIAL_DEPTH = '{"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}'
SPOT_BOOK_TICKER = """{"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000",
  "a": "25.36520000", "A": "40.66000000"}"""


def combined(stream: str, payload: str) -> dict[str, Any]:
    return {"stream": stream, "data": json.loads(payload)}


def test_gap_rule_per_stream(bn: Binance) -> None:
    # Diff depth (spot: U/u, the next U follows u + 1; futures: pu == previous u).
    assert bn.sequence(combined("bnbbtc@depth", DIFF_DEPTH)) == Seq(157, 160)
    assert bn.sequence(combined("bnbbtc@depth@100ms", DIFF_DEPTH)) == Seq(157, 160)
    assert bn.sequence(combined("btcusdt@depth@500ms", FUTURES_DIFF_DEPTH)) == Seq(157, 160, 149)
    assert bn.sequence(json.loads(FUTURES_DIFF_DEPTH)) == Seq(157, 160, 149)  # raw connection
    # No chain: partial depth (even the futures payload with U/u/pu), bookTicker's u, trades.
    assert bn.sequence(combined("btcusdt@depth5@100ms", FUTURES_PARTIAL_DEPTH)) is None
    assert bn.sequence(combined("btcusdt@depth20", FUTURES_PARTIAL_DEPTH)) is None
    assert bn.sequence(combined("bnbbtc@depth10", SPOT_PARTIAL_DEPTH)) is None
    assert bn.sequence(combined("bnbusdt@bookTicker", SPOT_BOOK_TICKER)) is None
    assert bn.sequence(json.loads(SPOT_BOOK_TICKER)) is None
    assert bn.sequence(combined("bnbbtc@trade", TRADE)) is None
    assert bn.sequence(json.loads(TRADE)) is None


def test_limits_and_no_heartbeat(bn: Binance) -> None:
    assert bn.max_topics_per_connection == 1024
    assert bn.heartbeat_message() is None
    assert bn.heartbeat_interval is None


# -- bad input ---------------------------------------------------------------------------------------


def test_reply_without_id_and_error_without_code(bn: Binance) -> None:
    assert bn.classify({"result": None}) == (UNKNOWN, None)
    msg = {"error": {"msg": "no code"}, "id": 9}
    assert bn.classify(msg) == (REPLY, 9)
    error = bn.reply_error(msg)
    assert error is not None and error.code is None and error.message == "no code"


@pytest.mark.parametrize("rid", [[1], {"a": 1}, 1.5, True])
def test_unknown_id_types_are_not_replies(bn: Binance, rid: Any) -> None:
    assert bn.classify({"result": None, "id": rid}) == (UNKNOWN, None)


@pytest.mark.parametrize(
    "msg",
    [{"data": {"U": 1, "u": 2}}, {"stream": 7, "data": {}}, {"stream": None, "data": {}}, {"e": 5, "s": "X"}],
)
def test_data_without_a_stream_is_unknown(bn: Binance, msg: Any) -> None:
    assert bn.classify(msg) == (UNKNOWN, None)


@pytest.mark.parametrize("value", [[1, 2], 42, "text", None, True, 2.5, [[[[]]]], {}])
def test_valid_json_that_is_not_a_message(bn: Binance, value: Any) -> None:
    assert bn.classify(value) == (UNKNOWN, None)
    assert bn.reply_error(value) is None
    assert bn.sequence(value) is None
    assert bn.rate_limit_signal(value) is None


def test_sequence_ignores_non_integer_ids(bn: Binance) -> None:
    assert bn.sequence({"stream": "x@depth", "data": {"U": "157", "u": 160}}) is None
    assert bn.sequence({"stream": "x@depth", "data": [1]}) is None
    assert bn.sequence({"u": 400900217, "s": "BNBUSDT"}) is None  # bookTicker: no U, no gap check


def test_deep_nesting_and_binary_frames(bn: Binance) -> None:
    try:
        msg = bn.decode(("[" * 10_000 + "]" * 10_000).encode())
    except DecodeError:
        msg = None
    assert bn.classify(msg) == (UNKNOWN, None)
    assert bn.decode(SUBSCRIBE_RESPONSE.encode()) == {"result": None, "id": 1}
    with pytest.raises(DecodeError):
        bn.decode(b"\x00\x01\x02")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    ["stream", "data", "id", "result", "error", "code", "msg", "e", "s", "U", "u", "pu", "k"]
)
messages = st.dictionaries(keys, json_values, max_size=6) | json_values


@given(messages)
def test_reading_never_raises(msg: Any) -> None:
    bn = Binance()
    bn.classify(msg)
    bn.reply_error(msg)
    bn.reply_result(msg)
    bn.ack_topics(msg)
    bn.sequence(msg)
    bn.rate_limit_signal(msg)
    bn.auto_reply(msg)
    bn.sequence({"stream": "x", "data": msg})
    bn.classify({"stream": "x", "data": msg})


def test_stream_facts_are_cached_within_a_bound(bn: Binance) -> None:
    # The per-stream "has a chain" fact is cached; 5000 distinct streams keep it bounded and the
    # answers stay right past the bound.
    for i in range(5000):
        assert bn.sequence(combined(f"s{i}@trade", TRADE)) is None
    assert len(bn._chained) == 4096
    assert bn.sequence(combined("late@depth@100ms", DIFF_DEPTH)) == Seq(157, 160)
    assert bn.sequence(combined("late@depth5", SPOT_PARTIAL_DEPTH)) is None
    assert len(bn._chained) == 4096
