"""Bybit on the examples of the Bybit v5 API documentation.

Sources (read 2026-11-25):

* CONNECT: https://bybit-exchange.github.io/docs/v5/ws/connect, sections "How to Send the Heartbeat
  Packet", "How to Subscribe to Topics", "Understanding the Subscription Response", "Public
  channel - Args limits".
* ORDERBOOK: https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook, "Response Example"
  (the docs elide levels with ``...``; the elisions are left out).
* TRADE: https://bybit-exchange.github.io/docs/v5/websocket/trade/guideline, "Response Parameters"
  (``reqId``, ``retCode`` 10403 / 10429, ``retMsg``, ``op``, ``connId``) and
  https://bybit-exchange.github.io/docs/v5/error (10006 "Too many visits").

Examples copied literally; messages assembled from a documented shape say so.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.core.sequence import SequenceTracker
from rxws.exceptions import DecodeError
from rxws.protocols import Bybit, MessageKind, Seq

DATA, REPLY, ACK, CONTROL, ERROR, UNKNOWN = (
    MessageKind.DATA,
    MessageKind.REPLY,
    MessageKind.ACK,
    MessageKind.CONTROL,
    MessageKind.ERROR,
    MessageKind.UNKNOWN,
)

# CONNECT, "How to Subscribe to Topics" (the "// optional" comment left out).
SUBSCRIBE_REQUEST = """{
    "req_id": "test",
    "op": "subscribe",
    "args": [
        "orderbook.1.BTCUSDT",
        "publicTrade.BTCUSDT",
        "orderbook.1.ETHUSDT"
    ]
}"""
UNSUBSCRIBE_REQUEST = """{
    "op": "unsubscribe",
    "args": [
        "publicTrade.ETHUSD"
    ],
    "req_id": "customised_id"
}"""
# CONNECT, "Understanding the Subscription Response": Private, Public Spot, Linear, Option.
ACK_PRIVATE = """{
    "success": true,
    "ret_msg": "",
    "op": "subscribe",
    "conn_id": "cejreassvfrsfvb9v1a0-2m"
}"""
ACK_SPOT = """{
    "success": true,
    "ret_msg": "subscribe",
    "conn_id": "2324d924-aa4d-45b0-a858-7b8be29ab52b",
    "req_id": "10001",
    "op": "subscribe"
}"""
ACK_LINEAR = """{
    "success": true,
    "ret_msg": "",
    "conn_id": "3cd84cb1-4d06-4a05-930a-2efe5fc70f0f",
    "req_id": "",
    "op": "subscribe"
}"""
ACK_OPTION = """{
    "success": true,
    "conn_id": "aa01fbfffe80af37-00000001-000b37b9-7147f432704fd28c-00e1c172",
    "data": {
    "failTopics": [],
    "successTopics": [
        "orderbook.100.BTC-6JAN23-18000-C"
    ]
},
    "type": "COMMAND_RESP"
}"""
# CONNECT, "How to Send the Heartbeat Packet".
PING = '{"req_id": "100001", "op": "ping"}'
PONG_SPOT = """{
    "success": true,
    "ret_msg": "pong",
    "conn_id": "0970e817-426e-429a-a679-ff7f55e0b16a",
    "op": "ping"
}"""
PONG_LINEAR = """{
    "success": true,
    "ret_msg": "pong",
    "conn_id": "465772b1-7630-4fdc-a492-e003e6f0f260",
    "req_id": "",
    "op": "ping"
}"""
PONG_OPTION = """{
    "args": [
        "1672916271846"
    ],
    "op": "pong"
}"""
PONG_PRIVATE = """{
    "req_id": "test",
    "op": "pong",
    "args": [
        "1675418560633"
    ],
    "conn_id": "cfcb4ocsvfriu23r3er0-1b"
}"""
# ORDERBOOK, "Response Example".
ORDERBOOK = """{
    "topic": "orderbook.50.BTCUSDT",
    "type": "snapshot",
    "ts": 1672304484978,
    "data": {
        "s": "BTCUSDT",
        "b": [
            [
                "16493.50",
                "0.006"
            ],
            [
                "16493.00",
                "0.100"
            ]
        ],
        "a": [
            [
                "16611.00",
                "0.029"
            ],
            [
                "16612.00",
                "0.213"
            ]
        ],
    "u": 18521288,
    "seq": 7961638724
    },
    "cts": 1672304484976
}"""


@pytest.fixture
def bybit() -> Bybit:
    return Bybit()


def test_subscribe_and_unsubscribe_requests_match_the_docs(bybit: Bybit) -> None:
    topics = ["orderbook.1.BTCUSDT", "publicTrade.BTCUSDT", "orderbook.1.ETHUSDT"]
    assert bybit.subscribe_message(topics, "test") == json.loads(SUBSCRIBE_REQUEST)
    unsubscribe = bybit.unsubscribe_message(["publicTrade.ETHUSD"], "customised_id")
    assert unsubscribe == json.loads(UNSUBSCRIBE_REQUEST)
    assert bybit.subscribe_message(["a"], 7)["req_id"] == "7"


def test_subscribe_ack_with_req_id_is_a_reply(bybit: Bybit) -> None:
    msg = bybit.decode(ACK_SPOT)
    assert bybit.classify(msg) == (REPLY, 10001)
    assert bybit.reply_error(msg) is None
    assert bybit.reply_result(msg) is None


@pytest.mark.parametrize("frame", [ACK_PRIVATE, ACK_LINEAR])
def test_subscribe_ack_without_req_id_is_an_ack_without_topics(bybit: Bybit, frame: str) -> None:
    msg = bybit.decode(frame)
    assert bybit.classify(msg) == (ACK, None)
    assert bybit.ack_topics(msg) == ()
    assert bybit.reply_error(msg) is None


def test_option_command_resp_acks_its_success_topics(bybit: Bybit) -> None:
    msg = bybit.decode(ACK_OPTION)
    assert bybit.classify(msg) == (ACK, None)
    assert bybit.ack_topics(msg) == ("orderbook.100.BTC-6JAN23-18000-C",)


def test_heartbeat_and_every_documented_pong(bybit: Bybit) -> None:
    assert {"op": "ping"}.items() <= json.loads(PING).items()
    assert bybit.heartbeat_message() == {"op": "ping"}
    assert bybit.heartbeat_interval == 20.0
    for frame in (PONG_SPOT, PONG_LINEAR, PONG_OPTION, PONG_PRIVATE):
        assert bybit.classify(bybit.decode(frame)) == (CONTROL, "pong")


def test_orderbook_is_data_with_update_id_sequence(bybit: Bybit) -> None:
    msg = bybit.decode(ORDERBOOK)
    assert bybit.classify(msg) == (DATA, "orderbook.50.BTCUSDT")
    # The example is a snapshot: "you have to reset your local orderbook" -- a new chain.
    assert bybit.sequence(msg) == Seq(18521288, 18521288, None, True)
    delta = dict(msg, type="delta")
    assert bybit.sequence(delta) == Seq(18521288, 18521288)


def orderbook(kind: str, update: int, topic: str = "orderbook.50.BTCUSDT") -> dict[str, Any]:
    """A message of the documented ORDERBOOK shape with the given type and update id."""
    msg = json.loads(ORDERBOOK)
    msg["topic"] = topic
    msg["type"] = kind
    msg["data"]["u"] = update
    return msg


def test_orderbook_gap_rule_follows_the_docs(bybit: Bybit) -> None:
    # ORDERBOOK (read 2026-11-30): u is the update id, continuous in general; a snapshot resets
    # the book; level 1 re-sends the snapshot after 3 s idle with the same u; "u" = 1 after a
    # service restart is a new snapshot.
    tracker = SequenceTracker()
    topic = "orderbook.1.BTCUSDT"
    msgs = [
        orderbook("snapshot", 100, topic),
        orderbook("snapshot", 101, topic),
        orderbook("snapshot", 101, topic),  # idle: the same snapshot again
        orderbook("snapshot", 1, topic),  # service restart
        orderbook("delta", 2, topic),
    ]
    assert [tracker.observe(topic, bybit.sequence(m), float(i)) for i, m in enumerate(msgs)] == [None] * 5
    restart = orderbook("delta", 1)  # u == 1 is a restart whatever the type says
    assert bybit.sequence(restart) == Seq(1, 1, None, True)
    skipped = tracker.observe(topic, bybit.sequence(orderbook("delta", 5, topic)), 5.0)
    assert skipped is not None and (skipped.gap, skipped.last_seq, skipped.next_seq) == ("sequence", 2, 5)


def test_topics_without_a_chain_have_no_sequence(bybit: Bybit) -> None:
    # Trade push example ("Trade", read 2026-11-30), shortened: data is a list and has no u.
    trade = {
        "topic": "publicTrade.BTCUSDT",
        "type": "snapshot",
        "ts": 1672304486868,
        "data": [{"T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50", "i": "x"}],
    }
    assert bybit.sequence(trade) is None
    # A non-book topic whose data happens to carry "u" is not read as a chain either.
    assert bybit.sequence({"topic": "tickers.BTCUSDT", "type": "snapshot", "data": {"u": 5}}) is None


def test_failed_subscribe_has_no_code(bybit: Bybit) -> None:
    # Assembled from the documented ack shape with "success": false (the docs give no example).
    msg = {
        "success": False,
        "ret_msg": "error:handler not found,topic:orderbook.1.BTCUSDTX",
        "conn_id": "2324d924-aa4d-45b0-a858-7b8be29ab52b",
        "req_id": "12",
        "op": "subscribe",
    }
    assert bybit.classify(msg) == (REPLY, 12)
    error = bybit.reply_error(msg)
    assert error is not None and error.code is None
    assert error.message.startswith("error:handler not found")
    no_id = dict(msg, req_id="")
    assert bybit.classify(no_id) == (ERROR, None)


@pytest.mark.parametrize("code", [10006, 10403, 10429])
def test_rate_limit_codes(bybit: Bybit, code: int) -> None:
    # Assembled from TRADE's response parameters (reqId, retCode, retMsg, op, connId).
    msg = {"reqId": "5", "retCode": code, "retMsg": "Too many visits!", "op": "order.create", "connId": "x"}
    assert bybit.classify(msg) == (REPLY, 5)
    assert bybit.rate_limit_signal(msg) == f"bybit_{code}"
    error = bybit.reply_error(msg)
    assert error is not None and error.code == code
    assert bybit.rate_limit_signal({"retCode": 0, "retMsg": "OK", "op": "auth"}) is None


def test_limits_by_category() -> None:
    # CONNECT, "Public channel - Args limits".
    spot = Bybit(category="spot")
    assert spot.max_topics_per_message == 10
    assert spot.max_chars_per_message == 21_000
    assert spot.max_chars_per_connection == 21_000
    assert Bybit(category="option").max_topics_per_connection == 2000
    assert Bybit(category="linear").max_topics_per_message is None
    assert Bybit(category="private").max_chars_per_message is None
    batches = spot.batches([f"publicTrade.S{i}" for i in range(25)])
    assert [len(b) for b in batches] == [10, 10, 5]


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("rid", [[1], {"a": 1}, 1.5, True])
def test_unknown_id_types_are_not_replies(bybit: Bybit, rid: Any) -> None:
    msg = {"success": True, "ret_msg": "", "req_id": rid, "op": "subscribe"}
    assert bybit.classify(msg) == (UNKNOWN, None)


@pytest.mark.parametrize(
    "msg",
    [{"type": "delta", "data": {"u": 1}}, {"topic": 5, "data": {}}, {"topic": None, "data": {"u": 2}}],
)
def test_data_without_a_topic_is_not_data(bybit: Bybit, msg: Any) -> None:
    assert bybit.classify(msg)[0] is not DATA


@pytest.mark.parametrize("value", [[1, 2], 42, "text", None, True, 2.5, [[[[]]]], {}])
def test_valid_json_that_is_not_a_message(bybit: Bybit, value: Any) -> None:
    assert bybit.classify(value) == (UNKNOWN, None)
    assert bybit.reply_error(value) is None
    assert bybit.sequence(value) is None
    assert bybit.rate_limit_signal(value) is None
    assert bybit.ack_topics(value) == ()


def test_sequence_needs_an_integer_u(bybit: Bybit) -> None:
    assert bybit.sequence({"topic": "t", "data": {"u": "18521288"}}) is None
    assert bybit.sequence({"topic": "publicTrade.BTCUSDT", "data": [{"T": 1}]}) is None
    assert bybit.sequence({"topic": "t", "data": {"seq": 7961638724}}) is None


def test_deep_nesting_and_garbage(bybit: Bybit) -> None:
    try:
        msg = bybit.decode(b"[" * 10_000 + b"]" * 10_000)
    except DecodeError:
        msg = None
    assert bybit.classify(msg) == (UNKNOWN, None)
    with pytest.raises(DecodeError):
        bybit.decode(b"\xc3\x28")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    ["topic", "data", "op", "req_id", "reqId", "success", "ret_msg", "retCode", "type", "u", "successTopics"]
)
messages = st.dictionaries(keys, json_values, max_size=6) | json_values


@given(messages)
def test_reading_never_raises(msg: Any) -> None:
    bybit = Bybit()
    for probe in (msg, {"topic": "t", "data": msg}, {"type": "COMMAND_RESP", "data": msg}):
        bybit.classify(probe)
        bybit.reply_error(probe)
        bybit.reply_result(probe)
        bybit.ack_topics(probe)
        bybit.sequence(probe)
        bybit.rate_limit_signal(probe)
        bybit.auto_reply(probe)


def test_system_status_is_data_for_its_watchers_not_a_notice(bybit: Bybit) -> None:
    # "Get System Status" response example (https://bybit-exchange.github.io/docs/v5/websocket/system/
    # system-status, read 2026-11-30): a subscribed topic, so its watcher gets it.
    msg = {
        "topic": "system.status",
        "ts": 1751858399649,
        "data": [
            {
                "id": "4d95b2a0-587f-11f0-bcc9-56f28c94d6ea",
                "title": "t06",
                "state": "completed",
                "begin": "1751596902000",
                "end": "1751597011000",
                "href": "",
                "serviceTypes": [2, 3, 4, 5],
                "product": [1, 2],
                "uidSuffix": [],
                "maintainType": 1,
                "env": 1,
            }
        ],
    }
    assert bybit.classify(msg) == (DATA, "system.status")
    assert bybit.sequence(msg) is None
