"""Deribit on the examples of the Deribit API v2 documentation.

Sources (read 2026-11-25), all under https://docs.deribit.com:

* ``/api-reference/subscription-management/private-subscribe``: request and response examples;
* ``/articles/notifications``: "Example Notification";
* ``/subscriptions/orderbook/bookinstrument_nameinterval``: the ``book.BTC-PERPETUAL.100ms``
  snapshot and change data (``change_id`` 297217 / 297218), wrapped in the notification envelope
  the notifications article documents;
* ``/api-reference/session-management/public-set_heartbeat`` and
  ``/api-reference/supporting/public-test``: request and response examples, and the heartbeat
  ``test_request`` the set_heartbeat page describes;
* "JSON-RPC > Response messages": the error response example (code 11050); the error-code table
  lists 10028 ``too_many_requests``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.core.sequence import SequenceTracker
from rxws.exceptions import DecodeError
from rxws.protocols import Deribit, MessageKind, Seq
from rxws.protocols.deribit import TEST_REQUEST_ID

DATA, REPLY, CONTROL, ERROR, UNKNOWN = (
    MessageKind.DATA,
    MessageKind.REPLY,
    MessageKind.CONTROL,
    MessageKind.ERROR,
    MessageKind.UNKNOWN,
)

SUBSCRIBE_REQUEST = """{
  "jsonrpc": "2.0",
  "id": 4235,
  "method": "private/subscribe",
  "params": {
    "channels": [
      "deribit_price_index.btc_usd"
    ]
  }
}"""
SUBSCRIBE_RESPONSE = """{
  "jsonrpc": "2.0",
  "id": 4235,
  "result": [
    "deribit_price_index.btc_usd"
  ]
}"""
NOTIFICATION = """{
    "jsonrpc": "2.0",
    "method": "subscription",
    "params": {
        "channel": "deribit_price_index.btc_usd",
        "data": {
            "timestamp": 1535098298227,
            "price": 6521.17,
            "index_name": "btc_usd"
        }
    }
}"""
BOOK_SNAPSHOT_DATA = """{
      "type" : "snapshot",
      "timestamp" : 1554373962454,
      "instrument_name" : "BTC-PERPETUAL",
      "change_id" : 297217,
      "bids" : [
        [
          "new",
          5042.34,
          30
        ],
        [
          "new",
          5041.94,
          20
        ]
      ],
      "asks" : [
        [
          "new",
          5042.64,
          40
        ],
        [
          "new",
          5043.3,
          40
        ]
      ]
    }"""
BOOK_CHANGE_DATA = """{
      "type" : "change",
      "timestamp" : 1554373911330,
      "prev_change_id" : 297217,
      "instrument_name" : "BTC-PERPETUAL",
      "change_id" : 297218,
      "bids" : [
        [
          "delete",
          5041.94,
          0
        ],
        [
          "delete",
          5042.34,
          0
        ]
      ],
      "asks" : [

      ]
    }"""
SET_HEARTBEAT_REQUEST = """{
  "jsonrpc": "2.0",
  "id": 9098,
  "method": "public/set_heartbeat",
  "params": {
    "interval": 30
  }
}"""
SET_HEARTBEAT_RESPONSE = '{"jsonrpc": "2.0", "id": 1569, "result": "ok"}'
TEST_REQUEST_EXAMPLE = '{"jsonrpc": "2.0", "id": 8212, "method": "public/test", "params": {}}'
TEST_RESPONSE = '{"jsonrpc": "2.0", "id": 8212, "result": {"version": "1.2.26"}}'
HEARTBEAT_TEST_REQUEST = '{"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}'
ERROR_RESPONSE = """{
    "jsonrpc": "2.0",
    "id": 8163,
    "error": {
        "code": 11050,
        "message": "bad_request"
    },
    "testnet": false,
    "usIn": 1535037392434763,
    "usOut": 1535037392448119,
    "usDiff": 13356
}"""


def book(data: str) -> dict[str, Any]:
    """A book notification with the documented envelope around the documented data."""
    return {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": "book.BTC-PERPETUAL.100ms", "data": json.loads(data)},
    }


@pytest.fixture
def deribit() -> Deribit:
    return Deribit()


def test_subscribe_requests_match_the_docs(deribit: Deribit) -> None:
    private = Deribit(private=True)
    assert private.subscribe_message(["deribit_price_index.btc_usd"], 4235) == json.loads(SUBSCRIBE_REQUEST)
    public = deribit.subscribe_message(["deribit_price_index.btc_usd"], 4235)
    assert public["method"] == "public/subscribe"
    assert deribit.unsubscribe_message(["x"], 1)["method"] == "public/unsubscribe"
    assert deribit.request_message("public/set_heartbeat", {"interval": 30}, 9098) == json.loads(
        SET_HEARTBEAT_REQUEST
    )


def test_subscribe_response_is_a_reply_with_the_channels(deribit: Deribit) -> None:
    msg = deribit.decode(SUBSCRIBE_RESPONSE)
    assert deribit.classify(msg) == (REPLY, 4235)
    assert deribit.reply_error(msg) is None
    assert deribit.reply_result(msg) == ["deribit_price_index.btc_usd"]
    ok = deribit.decode(SET_HEARTBEAT_RESPONSE)
    assert deribit.classify(ok) == (REPLY, 1569)
    assert deribit.reply_result(ok) == "ok"


def test_notification_is_data_keyed_by_channel(deribit: Deribit) -> None:
    msg = deribit.decode(NOTIFICATION)
    assert deribit.classify(msg) == (DATA, "deribit_price_index.btc_usd")
    assert deribit.sequence(msg) is None


def test_book_change_ids(deribit: Deribit) -> None:
    snapshot = book(BOOK_SNAPSHOT_DATA)
    change = book(BOOK_CHANGE_DATA)
    assert deribit.classify(snapshot) == (DATA, "book.BTC-PERPETUAL.100ms")
    assert deribit.sequence(snapshot) == Seq(297217, 297217, None, True)
    assert deribit.sequence(change) == Seq(297218, 297218, 297217)


# "book.{instrument_name}.{group}.{depth}.{interval}" notification data example (read
# 2026-11-30): a whole book each interval, change_id but no prev_change_id.
GROUPED_BOOK_DATA = """{"timestamp": 1554375447971, "instrument_name": "ETH-PERPETUAL", "change_id": 109615,
  "bids": [[160, 40]], "asks": [[161, 20]]}"""


def test_grouped_books_and_other_channels_have_no_chain(deribit: Deribit) -> None:
    grouped = book(GROUPED_BOOK_DATA)
    grouped["params"]["channel"] = "book.ETH-PERPETUAL.100.1.100ms"
    assert deribit.classify(grouped) == (DATA, "book.ETH-PERPETUAL.100.1.100ms")
    assert deribit.sequence(grouped) is None
    tracker = SequenceTracker()
    later = json.loads(json.dumps(grouped))
    later["params"]["data"]["change_id"] = 109700  # the next interval's whole book
    assert [tracker.observe("g", deribit.sequence(m), t) for t, m in ((0.0, grouped), (1.0, later))] == [
        None,
        None,
    ]
    assert deribit.sequence(deribit.decode(NOTIFICATION)) is None
    # A grouped channel whose data would say prev_change_id is still not read as a chain.
    grouped["params"]["data"]["prev_change_id"] = 109614
    assert deribit.sequence(grouped) is None


def test_raw_book_chain_after_a_snapshot(deribit: Deribit) -> None:
    tracker = SequenceTracker()
    topic = "book.BTC-PERPETUAL.100ms"
    assert tracker.observe(topic, deribit.sequence(book(BOOK_SNAPSHOT_DATA)), 0.0) is None
    assert tracker.observe(topic, deribit.sequence(book(BOOK_CHANGE_DATA)), 1.0) is None
    resnapshot = book(BOOK_SNAPSHOT_DATA)  # a new subscription's snapshot: a new chain
    assert tracker.observe(topic, deribit.sequence(resnapshot), 2.0) is None
    assert tracker.mark(topic) == (297217, 2.0)


def test_heartbeat_test_request_is_answered_with_public_test(deribit: Deribit) -> None:
    msg = deribit.decode(HEARTBEAT_TEST_REQUEST)
    assert deribit.classify(msg) == (CONTROL, "test_request")
    answer = deribit.auto_reply(msg)
    example = json.loads(TEST_REQUEST_EXAMPLE)
    assert answer == dict(example, id=TEST_REQUEST_ID)
    plain = {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "heartbeat"}}
    assert deribit.classify(plain) == (CONTROL, "heartbeat")
    assert deribit.auto_reply(plain) is None
    assert deribit.auto_reply(deribit.decode(NOTIFICATION)) is None


def test_reply_to_the_automatic_test_is_control(deribit: Deribit) -> None:
    msg = deribit.decode(TEST_RESPONSE)
    assert deribit.classify(msg) == (REPLY, 8212)
    msg["id"] = TEST_REQUEST_ID
    assert deribit.classify(msg) == (CONTROL, "test")


def test_error_response(deribit: Deribit) -> None:
    msg = deribit.decode(ERROR_RESPONSE)
    assert deribit.classify(msg) == (REPLY, 8163)
    error = deribit.reply_error(msg)
    assert error is not None and (error.code, error.message) == (11050, "bad_request")
    assert deribit.rate_limit_signal(msg) is None


def test_too_many_requests_is_a_rate_limit_signal(deribit: Deribit) -> None:
    # The error response shape above with the error-code table's 10028 "too_many_requests".
    msg = json.loads(ERROR_RESPONSE)
    msg["error"] = {"code": 10028, "message": "too_many_requests"}
    assert deribit.rate_limit_signal(msg) == "deribit_10028"
    error = deribit.reply_error(msg)
    assert error is not None and error.code == 10028


# -- bad input ---------------------------------------------------------------------------------------


def test_error_without_code_and_reply_without_id(deribit: Deribit) -> None:
    msg = {"jsonrpc": "2.0", "id": 3, "error": {"message": "bad_request"}}
    error = deribit.reply_error(msg)
    assert error is not None and error.code is None
    assert deribit.classify({"jsonrpc": "2.0", "result": "ok"}) == (UNKNOWN, None)


@pytest.mark.parametrize("rid", [[1], {"a": 1}, 1.5, True])
def test_unknown_id_types_are_not_replies(deribit: Deribit, rid: Any) -> None:
    assert deribit.classify({"jsonrpc": "2.0", "id": rid, "result": []}) == (UNKNOWN, None)


@pytest.mark.parametrize("params", [None, {"data": {"change_id": 1}}, {"channel": ["x"], "data": {}}])
def test_data_without_a_channel_is_unknown(deribit: Deribit, params: Any) -> None:
    msg = {"jsonrpc": "2.0", "method": "subscription", "params": params}
    assert deribit.classify(msg) == (UNKNOWN, None)


@pytest.mark.parametrize("value", [[1, 2], 42, "text", None, True, 2.5, [[[[]]]], {}])
def test_valid_json_that_is_not_a_message(deribit: Deribit, value: Any) -> None:
    assert deribit.classify(value) == (UNKNOWN, None)
    assert deribit.reply_error(value) is None
    assert deribit.sequence(value) is None
    assert deribit.rate_limit_signal(value) is None
    assert deribit.auto_reply(value) is None


def test_sequence_needs_integer_change_ids(deribit: Deribit) -> None:
    msg = book(BOOK_CHANGE_DATA)
    msg["params"]["data"]["change_id"] = "297218"
    assert deribit.sequence(msg) is None
    msg["params"]["data"] = [1, 2]
    assert deribit.sequence(msg) is None


def test_deep_nesting_and_garbage(deribit: Deribit) -> None:
    try:
        msg = deribit.decode("[" * 10_000 + "]" * 10_000)
    except DecodeError:
        msg = None
    assert deribit.classify(msg) == (UNKNOWN, None)
    with pytest.raises(DecodeError):
        deribit.decode(b"\x80abc")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "channel", "data", "type"])
messages = st.dictionaries(keys, json_values, max_size=6) | json_values


@given(messages)
def test_reading_never_raises(msg: Any) -> None:
    deribit = Deribit()
    probes = (
        msg,
        {"method": "subscription", "params": {"channel": "c", "data": msg}},
        {"method": "heartbeat", "params": msg},
    )
    for probe in probes:
        deribit.classify(probe)
        deribit.reply_error(probe)
        deribit.reply_result(probe)
        deribit.sequence(probe)
        deribit.rate_limit_signal(probe)
        deribit.auto_reply(probe)


def test_platform_state_is_data_for_its_watchers_not_a_notice(deribit: Deribit) -> None:
    # "platform_state" notification data example (https://docs.deribit.com/subscriptions/platform/
    # platform_state, read 2026-11-30) in the documented notification envelope.
    msg = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": "platform_state", "data": {"price_index": "sol_usdc", "locked": True}},
    }
    assert deribit.classify(msg) == (DATA, "platform_state")
    assert deribit.sequence(msg) is None
