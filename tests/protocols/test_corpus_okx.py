"""The OKX dialect against real OKX traffic (tests/data/okx).

Expected values come from OKX's v5 documentation (https://www.okx.com/docs-v5/en/, read
2026-11-30), computed here from each message's raw fields, never from running rxws:

* "WebSocket > Subscribe": a push is ``{"arg": {...}, "data": [...]}`` whose ``arg`` is the
  subscribed argument; the subscribe ``event`` echoes the argument. rxws names a subscription by
  its argument ("channel:instId", other keys ``key=value`` sorted; rxws.protocols.okx docstring).
* "Account channel" / "Order channel", push data parameters: ``arg > uid`` (User Identifier) is
  added by the venue; a subscription never had it, so a push routes to its argument without uid.
* "Order book channel": ``books`` / ``books-l2-tbt`` pushes carry ``seqId`` and ``prevSeqId``;
  a snapshot has ``prevSeqId`` -1 and starts the chain; an update's ``prevSeqId`` is the previous
  ``seqId`` (equal when nothing changed; lower ``seqId`` after maintenance is still in sequence).
  ``prevSeqId`` is "only applicable to books, books-l2-tbt, books50-l2-tbt": ``bbo-tbt``,
  ``books5``, ``trades`` (whose ``seqId`` may repeat) and ``tickers`` have no chain.
* "Notification": ``{"event":"notice","code":"64008",...}`` — "The connection will soon be closed
  for a service upgrade" — the project contract's NOTICE labelled ``"shutdown"``.
* "Error code": 60014 "Requests too frequent", 50011 "Rate limit reached" are rate limits;
  64003, 60012, 60018, 60032 are not. An op reply's ``code`` other than "0" is an error.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from corpus import messages

from rxws.protocols import Okx
from rxws.protocols.base import MessageKind

K = MessageKind
CHAINED = {"books", "books-l2-tbt", "books50-l2-tbt"}
FILES = [
    "public_capture_2022",
    "bbo_trades_capture_2026",
    "books_chain_capture_2026",
    "fixtures_docs",
    "private_capture_roq",
    "control_roq",
    "sequence_reset_derived",
    "rate_limit_derived",
]


def topic_of(arg: dict[str, Any]) -> str:
    """A subscription's rxws name from its argument, ``uid`` (venue-added) left out."""
    keys = {k: v for k, v in arg.items() if k not in ("channel", "uid")}
    parts = ([keys.pop("instId")] if "instId" in keys else []) + sorted(f"{k}={v}" for k, v in keys.items())
    return f"{arg['channel']}:{','.join(parts)}" if parts else arg["channel"]


def _all() -> list[Any]:
    return [m for name in FILES for m in messages("okx", name)]


def _pushes() -> list[dict[str, Any]]:
    return [m for m in _all() if isinstance(m, dict) and "arg" in m and "data" in m and "event" not in m]


def test_every_push_is_data_keyed_by_its_argument() -> None:
    proto = Okx()
    # A private subscription is named by what the host subscribed (no uid): tell the dialect so,
    # as a client does by subscribing before the pushes arrive.
    proto.subscribe_message(["account", "orders:instType=ANY"], 1)
    pushes = _pushes()
    assert len(pushes) >= 40
    for message in pushes:
        assert proto.classify(message) == (K.DATA, topic_of(message["arg"]))
        assert proto.reply_error(message) is None
        assert proto.rate_limit_signal(message) is None


def test_private_pushes_with_uid_route_to_the_subscribed_topic() -> None:
    proto = Okx()
    proto.subscribe_message(["account", "orders:instType=ANY"], 1)
    private = messages("okx", "private_capture_roq")
    assert all("uid" in m["arg"] for m in private)
    keys = [proto.classify(m) for m in private]
    assert (
        keys == [(K.DATA, "orders:instType=ANY"), (K.DATA, "account")] + [(K.DATA, "orders:instType=ANY")] * 2
    )


def test_subscribe_events_acknowledge_their_argument() -> None:
    proto = Okx()
    acks = [m for m in _all() if isinstance(m, dict) and m.get("event") == "subscribe"]
    assert len(acks) >= 10
    for message in acks:
        assert proto.classify(message) == (K.ACK, topic_of(message["arg"]))
        assert proto.ack_topics(message) == (topic_of(message["arg"]),)
        assert proto.reply_error(message) is None


def test_book_sequence_follows_seqid_and_prevseqid_and_other_channels_have_none() -> None:
    proto = Okx()
    chained = 0
    for message in _pushes():
        seq = proto.sequence(message)
        item = message["data"][0]
        if message["arg"]["channel"] in CHAINED and "seqId" in item:
            assert seq is not None
            assert (seq.first, seq.last) == (item["seqId"], item["seqId"])
            if message.get("action") == "snapshot":  # prevSeqId -1: a new chain starts here
                assert item["prevSeqId"] == -1 and seq.reset is True
            else:
                assert (seq.prev, seq.reset) == (item["prevSeqId"], False)
            chained += 1
        else:
            # books-l2-tbt recorded before seqId existed, bbo-tbt, books5, trades, tickers, private.
            assert seq is None, (message["arg"], item.get("seqId"))
    assert chained == 11


def test_trade_seqids_repeat_in_the_capture_so_trades_cannot_be_a_chain() -> None:
    trades = [m for m in messages("okx", "bbo_trades_capture_2026") if m["arg"]["channel"] == "trades"]
    seq_ids = [m["data"][0]["seqId"] for m in trades]
    assert len(seq_ids) - len(set(seq_ids)) >= 10  # eleven trades share one seqId
    assert all(Okx().sequence(m) is None for m in trades)


def test_the_captured_books_updates_are_one_chain_by_prevseqid() -> None:
    items = [m["data"][0] for m in messages("okx", "books_chain_capture_2026")]
    assert len(items) == 5
    for before, after in pairwise(items):
        assert after["prevSeqId"] == before["seqId"]


def test_the_documented_reset_example_is_one_chain_by_prevseqid() -> None:
    chain = messages("okx", "sequence_reset_derived")
    items = [m["data"][0] for m in chain]
    assert [(i["prevSeqId"], i["seqId"]) for i in items] == [(-1, 10), (10, 15), (15, 15), (15, 3), (3, 5)]
    for before, after in pairwise(items):
        assert after["prevSeqId"] == before["seqId"]


def test_notice_64008_is_a_shutdown_notice() -> None:
    proto = Okx()
    notices = [m for m in _all() if isinstance(m, dict) and m.get("event") == "notice"]
    assert len(notices) == 2
    for message in notices:
        assert message["code"] == "64008"
        assert proto.classify(message) == (K.NOTICE, "shutdown")
        code, detail = proto.notice_detail(message)
        assert (str(code), detail) == ("64008", message["msg"])
        assert proto.rate_limit_signal(message) is None


def test_pong_and_connection_events_are_control() -> None:
    proto = Okx()
    control = [
        m
        for m in _all()
        if m == "pong" or (isinstance(m, dict) and m.get("event") in ("login", "channel-conn-count"))
    ]
    assert len(control) == 3
    for message in control:
        kind, _ = proto.classify(message)
        assert kind is K.CONTROL
        assert proto.reply_error(message) is None


def test_error_events_carry_their_code_and_only_rate_limit_codes_signal() -> None:
    proto = Okx()
    errors = [m for m in _all() if isinstance(m, dict) and m.get("event") == "error"]
    assert sorted(m["code"] for m in errors) == ["60014", "60018", "60032", "64003"]
    for message in errors:
        kind, key = proto.classify(message)
        assert (kind, str(key)) == (K.ERROR, message["code"])  # no id: not tied to a request
        error = proto.reply_error(message)
        assert error is not None and str(error.code) == message["code"]
        assert (proto.rate_limit_signal(message) is not None) is (message["code"] == "60014")


@pytest.mark.parametrize("index", [1, 2])
def test_failed_op_replies_are_replies_with_an_error_and_50011_is_a_rate_limit(index: int) -> None:
    proto = Okx()
    message = messages("okx", "rate_limit_derived")[index]
    kind, key = proto.classify(message)
    assert (kind, str(key)) == (K.REPLY, message["id"])
    assert message["code"] != "0" and proto.reply_error(message) is not None
    item_codes = [item.get("sCode") for item in message["data"]]
    assert "50011" in [message["code"], *item_codes]
    assert proto.rate_limit_signal(message) is not None


def test_every_corpus_message_is_understood() -> None:
    """No OKX frame in the corpus is left UNKNOWN: each is one of the documented kinds above."""
    proto = Okx()
    proto.subscribe_message(["account", "orders:instType=ANY"], 1)
    unknown = [m for m in _all() if proto.classify(m)[0] is K.UNKNOWN]
    assert unknown == []
