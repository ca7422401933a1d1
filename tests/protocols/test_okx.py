"""Okx on the examples of the OKX v5 API documentation.

Source: https://www.okx.com/docs-v5/en/ (read 2026-11-25), sections "WebSocket > Connect",
"WebSocket > Login", "WebSocket > Subscribe", "WebSocket > Unsubscribe", "WebSocket >
Notification", "Public Data > WebSocket > Instruments channel", "Order Book Trading > Market Data >
WS / Order book channel" and "Error Code > WebSocket > Public". Examples copied literally; where a
message is assembled from a documented shape and a documented code it says so.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.core.sequence import SequenceTracker
from rxws.exceptions import DecodeError
from rxws.protocols import MessageKind, Okx, Seq
from rxws.protocols.okx import topic_arg, topic_of_arg

DATA, REPLY, ACK, CONTROL, ERROR, UNKNOWN, NOTICE_KIND = (
    MessageKind.DATA,
    MessageKind.REPLY,
    MessageKind.ACK,
    MessageKind.CONTROL,
    MessageKind.ERROR,
    MessageKind.UNKNOWN,
    MessageKind.NOTICE,
)

# "Subscribe": request and response examples.
SUBSCRIBE_REQUEST = """{
    "id": "1512",
    "op":"subscribe",
    "args":[
        {
            "channel":"tickers",
            "instId":"BTC-USDT"
        }
    ]
}"""
SUBSCRIBE_RESPONSE = """{
    "id": "1512",
    "event": "subscribe",
    "arg": {
        "channel": "tickers",
        "instId": "BTC-USDT"
    },
    "connId": "accb8e21"
}"""
# "Unsubscribe": request and response examples.
UNSUBSCRIBE_REQUEST = """{
  "op": "unsubscribe",
  "args": [
    {
      "channel": "tickers",
      "instId": "BTC-USDT"
    }
  ]
}"""
UNSUBSCRIBE_RESPONSE = """{
    "event": "unsubscribe",
    "arg": {
        "channel": "tickers",
        "instId": "BTC-USDT"
    },
    "connId": "d0b44253"
}"""
# "Instruments channel": successful and failure response examples.
INSTRUMENTS_SUBSCRIBED = """{
  "id": "1512",
  "event": "subscribe",
  "arg": {
    "channel": "instruments",
    "instType": "SPOT"
  },
  "connId": "a4d3ae55"
}"""
INSTRUMENTS_FAILED = r"""{
  "id": "1512",
  "event": "error",
  "code": "60012",
  "msg": "Invalid request: {\"op\": \"subscribe\", \"argss\":[{ \"channel\" : \"instruments\", \"instType\" : \"FUTURES\"}]}",
  "connId": "a4d3ae55"
}"""
# "Login": failure response example.
LOGIN_FAILED = """{
  "event": "error",
  "code": "60009",
  "msg": "Login failed.",
  "connId": "a4d3ae55"
}"""
# "Notification": service upgrade notice.
NOTICE = """{
    "event": "notice",
    "code": "64008",
    "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
    "connId": "a4d3ae55"
}"""
# "Connect": connection count messages.
CONN_COUNT = """{
    "event":"channel-conn-count",
    "channel":"orders",
    "connCount": "2",
    "connId":"abcd1234"
}"""
CONN_COUNT_ERROR = """{
    "event": "channel-conn-count-error",
    "channel": "orders",
    "connCount": "20",
    "connId":"a4d3ae55"
}"""
# "Order book channel": push data example, incremental data.
BOOKS_UPDATE = """{
  "arg": {
    "channel": "books",
    "instId": "BTC-USDT"
  },
  "action": "update",
  "data": [
    {
      "asks": [
        ["8476.98", "415", "0", "13"],
        ["8477", "7", "0", "2"],
        ["8477.34", "85", "0", "1"],
        ["8477.56", "1", "0", "1"],
        ["8505.84", "8", "0", "1"],
        ["8506.37", "85", "0", "1"],
        ["8506.49", "2", "0", "1"],
        ["8506.96", "100", "0", "2"]
      ],
      "bids": [
        ["8476.97", "256", "0", "12"],
        ["8475.55", "101", "0", "1"],
        ["8475.54", "100", "0", "1"],
        ["8475.3", "1", "0", "1"],
        ["8447.32", "6", "0", "1"],
        ["8447.02", "246", "0", "1"],
        ["8446.83", "24", "0", "1"],
        ["8446", "95", "0", "3"]
      ],
      "ts": "1597026383085",
      "checksum": -855196043,
      "prevSeqId": 123456,
      "seqId": 123457
    }
  ]
}"""


@pytest.fixture
def okx() -> Okx:
    return Okx()


# -- topics --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg, topic",
    [
        ({"channel": "books", "instId": "BTC-USDT"}, "books:BTC-USDT"),
        ({"channel": "instruments", "instType": "SPOT"}, "instruments:instType=SPOT"),
        ({"channel": "orders", "instType": "SPOT", "instId": "BTC-USDT"}, "orders:BTC-USDT,instType=SPOT"),
        ({"channel": "status"}, "status"),
        ({"channel": "opt-summary", "instFamily": "BTC-USD"}, "opt-summary:instFamily=BTC-USD"),
    ],
)
def test_topic_mapping_round_trips(arg: dict[str, str], topic: str) -> None:
    assert topic_of_arg(arg) == topic
    assert topic_arg(topic) == arg


def test_topic_of_arg_needs_a_channel() -> None:
    with pytest.raises(ValueError):
        topic_of_arg({"instId": "BTC-USDT"})


# -- subscribe, acks, errors ---------------------------------------------------------------------


def test_subscribe_request_matches_the_docs(okx: Okx) -> None:
    assert okx.subscribe_message(["tickers:BTC-USDT"], 1512) == json.loads(SUBSCRIBE_REQUEST)


def test_unsubscribe_request_matches_the_docs_plus_an_id(okx: Okx) -> None:
    msg = okx.unsubscribe_message(["tickers:BTC-USDT"], 7)
    assert msg.pop("id") == "7"
    assert msg == json.loads(UNSUBSCRIBE_REQUEST)


def test_subscribe_response_is_an_ack_keyed_by_topic(okx: Okx) -> None:
    msg = okx.decode(SUBSCRIBE_RESPONSE)
    assert okx.classify(msg) == (ACK, "tickers:BTC-USDT")
    assert okx.ack_topics(msg) == ("tickers:BTC-USDT",)
    assert okx.reply_error(msg) is None
    spot = okx.decode(INSTRUMENTS_SUBSCRIBED)
    assert okx.classify(spot) == (ACK, "instruments:instType=SPOT")


def test_unsubscribe_response_is_an_unack_keyed_by_topic(okx: Okx) -> None:
    msg = okx.decode(UNSUBSCRIBE_RESPONSE)
    topic = okx.classify(msg)[1]
    assert okx.classify(msg) == (MessageKind.UNACK, topic)
    assert okx.ack_topics(msg) == (topic,)


def test_failed_subscribe_with_id_is_a_reply_error(okx: Okx) -> None:
    msg = okx.decode(INSTRUMENTS_FAILED)
    assert okx.classify(msg) == (REPLY, 1512)  # "1512" was str(1512): read back as the int
    error = okx.reply_error(msg)
    assert error is not None and error.code == 60012
    assert error.message.startswith("Invalid request:")


def test_error_without_id_is_an_error_keyed_by_code(okx: Okx) -> None:
    msg = okx.decode(LOGIN_FAILED)
    assert okx.classify(msg) == (ERROR, 60009)
    error = okx.reply_error(msg)
    assert error is not None and (error.code, error.message) == (60009, "Login failed.")


def test_notice_and_connection_counts(okx: Okx) -> None:
    notice = okx.decode(NOTICE)
    assert okx.classify(notice) == (NOTICE_KIND, "shutdown")
    assert okx.notice_detail(notice) == (
        64008,
        "The connection will soon be closed for a service upgrade. Please reconnect.",
    )
    other = dict(notice, code="64009")  # an undocumented code: still a notice, labelled plainly
    assert okx.classify(other) == (NOTICE_KIND, "notice")
    assert okx.classify(okx.decode(CONN_COUNT)) == (CONTROL, "channel-conn-count")
    assert okx.classify(okx.decode(CONN_COUNT_ERROR)) == (ERROR, "channel-conn-count-error")


def test_rate_limit_codes(okx: Okx) -> None:
    # The documented error event shape with code 60014 "Requests too frequent" from the table in
    # "Error Code > WebSocket > Public".
    msg = {"event": "error", "code": "60014", "msg": "Requests too frequent", "connId": "a4d3ae55"}
    assert okx.classify(msg) == (ERROR, 60014)
    assert okx.rate_limit_signal(msg) == "okx_60014"
    reply = {"id": "9", "op": "order", "code": "50011", "msg": "Rate limit reached"}
    assert okx.rate_limit_signal(reply) == "okx_50011"
    per_item = {"id": "9", "op": "order", "code": "1", "msg": "", "data": [{"sCode": "50061", "sMsg": "x"}]}
    assert okx.rate_limit_signal(per_item) == "okx_50061"
    assert okx.rate_limit_signal(okx.decode(LOGIN_FAILED)) is None


# -- data and sequence --------------------------------------------------------------------------------


def test_books_push_is_data_with_seq_and_prev(okx: Okx) -> None:
    msg = okx.decode(BOOKS_UPDATE)
    assert okx.classify(msg) == (DATA, "books:BTC-USDT")
    assert okx.sequence(msg) == Seq(123457, 123457, 123456)


def test_snapshot_starts_a_chain(okx: Okx) -> None:
    msg = json.loads(BOOKS_UPDATE)
    msg["action"] = "snapshot"
    msg["data"][0]["prevSeqId"] = -1
    msg["data"][0]["seqId"] = 123456
    assert okx.sequence(msg) == Seq(123456, 123456, None, True)


def book(channel: str, seq_id: int, prev_seq_id: int, action: str = "update") -> dict[str, Any]:
    """A push of the documented "Order book channel" shape with the given numbers."""
    msg = json.loads(BOOKS_UPDATE)
    msg["arg"]["channel"] = channel
    msg["action"] = action
    msg["data"][0].update(seqId=seq_id, prevSeqId=prev_seq_id)
    return msg


@pytest.mark.parametrize("channel", ["books", "books-l2-tbt", "books50-l2-tbt"])
def test_documented_sequence_example_has_no_gap(okx: Okx, channel: str) -> None:
    # "Order book channel" > "Sequence number" > "Example" (read 2026-11-30): snapshot -1/10,
    # update 10/15, idle 15/15, reset after maintenance 15/3, then 3/5. None is a gap.
    tracker = SequenceTracker()
    msgs = [
        book(channel, 10, -1, "snapshot"),
        book(channel, 15, 10),
        book(channel, 15, 15),
        book(channel, 3, 15),
        book(channel, 5, 3),
    ]
    gaps = [tracker.observe(f"{channel}:BTC-USDT", okx.sequence(m), float(i)) for i, m in enumerate(msgs)]
    assert gaps == [None] * 5
    assert tracker.mark(f"{channel}:BTC-USDT") == (5, 4.0)
    # After the reset the normal rule applies again: a missed push is a gap.
    gap = tracker.observe(f"{channel}:BTC-USDT", okx.sequence(book(channel, 9, 7)), 5.0)
    assert gap is not None and (gap.gap, gap.last_seq, gap.next_seq) == ("sequence", 5, 9)


# Push data examples (read 2026-11-30): "Trades channel", "Order book channel" (books5, bbo-tbt),
# "Tickers channel"; copied with their documented seqId fields.
TRADES_PUSH = """{"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [{"instId": "BTC-USDT",
  "tradeId": "130639474", "px": "42219.9", "sz": "0.12060306", "side": "buy", "ts": "1630048897897",
  "count": "3", "source": "0", "seqId": 1234}]}"""
BOOKS5_PUSH = """{"arg": {"channel": "books5", "instId": "BCH-USDT-SWAP"}, "data": [{"asks":
  [["111.06", "55154", "0", "2"]], "bids": [["111.05", "57745", "0", "2"]], "instId": "BCH-USDT-SWAP",
  "ts": "1670324386802", "seqId": 363996337}]}"""
BBO_TBT_PUSH = """{"arg": {"channel": "bbo-tbt", "instId": "BCH-USDT-SWAP"}, "data": [{"asks":
  [["111.06", "55154", "0", "2"]], "bids": [["111.05", "57745", "0", "2"]], "ts": "1670324386802",
  "seqId": 363996337}]}"""


@pytest.mark.parametrize(
    "frame", [TRADES_PUSH, BOOKS5_PUSH, BBO_TBT_PUSH], ids=["trades", "books5", "bbo-tbt"]
)
def test_channels_without_a_chain_have_no_sequence(okx: Okx, frame: str) -> None:
    msg = okx.decode(frame)
    assert okx.classify(msg)[0] is DATA
    assert okx.sequence(msg) is None  # seqId may repeat (trades) or be re-sent when idle


def test_prev_seq_id_on_an_undocumented_channel_is_not_read_as_a_chain(okx: Okx) -> None:
    msg = book("books5", 15, 15)  # books5 documents no prevSeqId; if one appeared, still no chain
    assert okx.sequence(msg) is None
    msg["arg"] = {"channel": ["books"], "instId": "BTC-USDT"}  # malformed: no error, no sequence
    assert okx.sequence(msg) is None


def test_snapshot_channels_resent_when_idle_are_not_gaps(okx: Okx) -> None:
    # "If there are no updates to the depth for an extended period ... OKX will send the latest
    # snapshot" with the same seqId: no chain, so the same push twice reports nothing.
    tracker = SequenceTracker()
    msg = okx.decode(BBO_TBT_PUSH)
    assert [tracker.observe("bbo-tbt:BCH-USDT-SWAP", okx.sequence(msg), t) for t in (0.0, 60.0)] == [
        None,
        None,
    ]


# "Account channel" push data example (read 2026-11-30): the arg carries uid, never subscribed.
ACCOUNT_PUSH = """{"arg": {"channel": "account", "uid": "44*********584"}, "eventType": "snapshot",
  "curPage": 1, "lastPage": true, "data": [{"totalEq": "55868.06403501676", "uTime": "1705564223311"}]}"""
# "Order channel" push arg shape with the subscribed instType ANY and uid (the contract's example).
ORDERS_PUSH = """{"arg": {"channel": "orders", "instType": "ANY", "uid": "614488474791936"},
  "data": [{"instType": "SPOT", "instId": "BTC-USDT", "ordId": "312269865356374016"}]}"""


def test_private_pushes_route_to_the_subscribed_topic(okx: Okx) -> None:
    okx.subscribe_message(["account", "orders:instType=ANY"], 1)
    assert okx.classify(okx.decode(ACCOUNT_PUSH)) == (DATA, "account")
    assert okx.classify(okx.decode(ORDERS_PUSH)) == (DATA, "orders:instType=ANY")
    assert okx.sequence(okx.decode(ACCOUNT_PUSH)) is None
    # Without any subscription bookkeeping the uid is still not part of the topic.
    assert Okx().classify(okx.decode(ACCOUNT_PUSH)) == (DATA, "account")


def test_private_push_without_the_subscribed_keys_finds_its_subscription(okx: Okx) -> None:
    # The Account channel's request example subscribes {"channel": "account", "ccy": "BTC"} and
    # with "extraParams"; the push arg lists only channel and uid.
    okx.subscribe_message(["account:ccy=BTC"], 1)
    assert okx.classify(okx.decode(ACCOUNT_PUSH)) == (DATA, "account:ccy=BTC")
    okx.unsubscribe_message(["account:ccy=BTC"], 2)
    extra = 'account:extraParams={"updateInterval": "0"}'
    okx.subscribe_message([extra], 3)
    assert okx.classify(okx.decode(ACCOUNT_PUSH)) == (DATA, extra)
    okx.unsubscribe_message([extra], 4)
    assert okx.classify(okx.decode(ACCOUNT_PUSH)) == (DATA, "account")


def test_private_push_matching_several_subscriptions_takes_the_most_specific(okx: Okx) -> None:
    okx.subscribe_message(["orders:instType=ANY", "orders:instType=SPOT", "orders:BTC-USDT,instType=SPOT"], 1)
    push = {"arg": {"channel": "orders", "instType": "SPOT", "instId": "BTC-USDT", "uid": "1"}, "data": []}
    assert okx.classify(push) == (DATA, "orders:BTC-USDT,instType=SPOT")
    push = {"arg": {"channel": "orders", "instType": "SPOT", "uid": "1"}, "data": []}
    assert okx.classify(push) == (DATA, "orders:instType=SPOT")
    # Two subscriptions and a push matching neither: its own key (reported unrouted by the client).
    okx.subscribe_message(["account:ccy=BTC", "account:ccy=ETH"], 2)
    assert okx.classify(okx.decode(ACCOUNT_PUSH)) == (DATA, "account")


def test_public_push_keys_are_unchanged_by_private_subscriptions(okx: Okx) -> None:
    okx.subscribe_message(["account", "instruments:instType=SPOT"], 1)
    assert okx.classify(okx.decode(BOOKS_UPDATE)) == (DATA, "books:BTC-USDT")
    push = {"arg": {"channel": "instruments", "instType": "SPOT"}, "data": [{}]}
    assert okx.classify(push) == (DATA, "instruments:instType=SPOT")


def test_op_reply_is_a_reply_by_id(okx: Okx) -> None:
    msg = {"id": "1512", "op": "order", "code": "0", "msg": "", "data": [{"ordId": "12345689"}]}
    assert okx.classify(msg) == (REPLY, 1512)
    assert okx.reply_error(msg) is None
    assert okx.reply_result(msg) == [{"ordId": "12345689"}]
    assert okx.request_message("order", {"instId": "BTC-USDT"}, 1512) == {
        "id": "1512",
        "op": "order",
        "args": [{"instId": "BTC-USDT"}],
    }


# -- keepalive ----------------------------------------------------------------------------------------


def test_text_ping_pong(okx: Okx) -> None:
    # "Connect": "send the String 'ping'" ... "Expect a 'pong' as a response."
    assert okx.encode(okx.heartbeat_message()) == "ping"
    assert okx.heartbeat_interval is not None and okx.heartbeat_interval < 30
    assert okx.decode("pong") == "pong"
    assert okx.decode(b"pong") == "pong"
    assert okx.classify("pong") == (CONTROL, "pong")
    with pytest.raises(DecodeError):
        okx.decode("pongg")


def test_chars_limit_counts_argument_objects(okx: Okx) -> None:
    assert okx.max_chars_per_message == 64 * 1024
    assert okx.topic_chars("books:BTC-USDT") == len('{"channel":"books","instId":"BTC-USDT"}') + 1


# -- bad input ---------------------------------------------------------------------------------------


def test_error_without_code(okx: Okx) -> None:
    msg = {"id": "3", "event": "error", "msg": "no code here"}
    assert okx.classify(msg) == (REPLY, 3)
    error = okx.reply_error(msg)
    assert error is not None and error.code is None and error.message == "no code here"
    assert okx.classify({"event": "error", "msg": "x"}) == (ERROR, None)


@pytest.mark.parametrize("rid", [[1], {"a": 1}, 1.5, True, None])
def test_unknown_id_types_are_not_replies(okx: Okx, rid: Any) -> None:
    assert okx.classify({"id": rid, "op": "order", "code": "0", "data": []}) == (UNKNOWN, None)


def test_non_decimal_ids_stay_strings(okx: Okx) -> None:
    assert okx.classify({"id": "abc1", "op": "order", "code": "0", "data": []}) == (REPLY, "abc1")
    assert okx.classify({"id": "007", "op": "order", "code": "0", "data": []}) == (REPLY, "007")


@pytest.mark.parametrize(
    "msg",
    [
        {"arg": {"instId": "BTC-USDT"}, "data": []},
        {"arg": {"channel": 3}, "data": []},
        {"data": [{"seqId": 1}]},
        {"arg": "books:BTC-USDT", "data": []},
    ],
)
def test_data_without_a_channel_is_unknown(okx: Okx, msg: Any) -> None:
    assert okx.classify(msg) == (UNKNOWN, None)


@pytest.mark.parametrize("value", [[1, 2], 42, "text", None, True, 2.5, [[[[]]]], {}])
def test_valid_json_that_is_not_a_message(okx: Okx, value: Any) -> None:
    assert okx.classify(value) == (UNKNOWN, None)
    assert okx.reply_error(value) is None
    assert okx.sequence(value) is None
    assert okx.rate_limit_signal(value) is None
    assert okx.ack_topics(value) == ()


def test_deep_nesting_and_garbage(okx: Okx) -> None:
    try:
        msg = okx.decode("[" * 10_000 + "]" * 10_000)
    except DecodeError:
        msg = None
    assert okx.classify(msg) == (UNKNOWN, None)
    with pytest.raises(DecodeError):
        okx.decode(b"\xff\xfe\xfd")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["id", "op", "event", "arg", "data", "code", "msg", "channel", "instId", "seqId"])
messages = st.dictionaries(keys, json_values, max_size=6) | json_values


@given(messages)
def test_reading_never_raises(msg: Any) -> None:
    okx = Okx()
    for probe in (msg, {"arg": msg, "data": msg}, {"data": [msg]}, {"event": "subscribe", "arg": msg}):
        okx.classify(probe)
        okx.reply_error(probe)
        okx.reply_result(probe)
        okx.ack_topics(probe)
        okx.sequence(probe)
        okx.rate_limit_signal(probe)
        okx.auto_reply(probe)
