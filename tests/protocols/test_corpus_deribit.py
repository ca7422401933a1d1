"""The Deribit dialect against real Deribit traffic (tests/data/deribit).

Expected values come from Deribit's API v2 documentation (https://docs.deribit.com, read
2026-11-30), computed here from each message's raw fields, never from running rxws:

* JSON-RPC 2.0: a notification ``{"method": "subscription", "params": {"channel", "data"}}``
  carries data for ``channel``; a response carries the request's ``id`` and ``result`` or
  ``error`` {code, message}.
* "book.{instrument_name}.{interval}": the first notification is a snapshot (``type``
  "snapshot", ``change_id``); each later one is a change whose ``prev_change_id`` is the previous
  notification's ``change_id``.
* "book.{instrument_name}.{group}.{depth}.{interval}" (grouped): every notification is the whole
  top-N book with a ``change_id`` and no ``prev_change_id`` — no chain to follow.
* "ticker.{instrument_name}.{interval}": no chain.
* error 10028 ``too_many_requests`` is the rate limit; "public/set_heartbeat": a ``heartbeat``
  with ``type`` "test_request" must be answered with ``public/test``.
"""

from __future__ import annotations

import re
from typing import Any

from corpus import messages

from rxws.protocols import Deribit
from rxws.protocols.base import MessageKind

K = MessageKind
FILES = ["book_raw_capture", "fixtures_nautilus"]
UNGROUPED_BOOK = re.compile(r"^book\.[^.]+\.(raw|100ms|agg2)$")
GROUPED_BOOK = re.compile(r"^book\.[^.]+\.[^.]+\.\d+\.[^.]+$")


def _all() -> list[dict[str, Any]]:
    return [m for name in FILES for m in messages("deribit", name)]


def _notifications() -> list[dict[str, Any]]:
    return [m for m in _all() if m.get("method") == "subscription"]


def test_notifications_are_data_keyed_by_channel() -> None:
    proto = Deribit()
    notes = _notifications()
    assert len(notes) >= 15
    for message in notes:
        assert proto.classify(message) == (K.DATA, message["params"]["channel"])
        assert proto.reply_error(message) is None
        assert proto.rate_limit_signal(message) is None


def test_book_sequence_is_change_id_linked_by_prev_change_id() -> None:
    proto = Deribit()
    books = 0
    for message in _notifications():
        channel, data = message["params"]["channel"], message["params"]["data"]
        seq = proto.sequence(message)
        if UNGROUPED_BOOK.match(channel):
            assert seq is not None
            assert (seq.first, seq.last) == (data["change_id"], data["change_id"])
            if data["type"] == "snapshot":  # the first notification: a new chain starts
                assert "prev_change_id" not in data and seq.reset is True
            else:
                assert (seq.prev, seq.reset) == (data["prev_change_id"], False)
            books += 1
        else:
            assert GROUPED_BOOK.match(channel) or channel.startswith("ticker."), channel
            assert seq is None, channel  # grouped books and tickers have no chain
    assert books == 18


def test_the_captured_chain_follows_the_documented_rule() -> None:
    last: dict[str, int] = {}
    links = 0
    for message in _notifications():
        channel, data = message["params"]["channel"], message["params"]["data"]
        if not UNGROUPED_BOOK.match(channel):
            continue
        if data["type"] == "change":
            assert data["prev_change_id"] == last[channel]
            links += 1
        last[channel] = data["change_id"]
    assert links == 10


def test_the_subscribe_reply_is_a_reply_with_the_subscribed_channels() -> None:
    proto = Deribit()
    reply = messages("deribit", "book_raw_capture")[0]
    assert proto.classify(reply) == (K.REPLY, reply["id"])
    assert proto.reply_error(reply) is None
    assert proto.reply_result(reply) == reply["result"]


def test_too_many_requests_is_a_reply_error_and_a_rate_limit() -> None:
    proto = Deribit()
    [error_reply] = [m for m in _all() if "error" in m]
    assert proto.classify(error_reply) == (K.REPLY, error_reply["id"])
    error = proto.reply_error(error_reply)
    assert error is not None and error.code == 10028 == error_reply["error"]["code"]
    assert proto.rate_limit_signal(error_reply) is not None


def test_a_test_request_heartbeat_is_control_and_answered_with_public_test() -> None:
    proto = Deribit()
    [heartbeat] = [m for m in _all() if m.get("method") == "heartbeat"]
    kind, _ = proto.classify(heartbeat)
    assert kind is K.CONTROL
    answer = proto.auto_reply(heartbeat)
    assert answer is not None and answer["method"] == "public/test"


def test_every_corpus_message_is_understood() -> None:
    proto = Deribit()
    unknown = [m for m in _all() if proto.classify(m)[0] is K.UNKNOWN]
    assert unknown == []
