"""The Bybit dialect against real Bybit traffic (tests/data/bybit).

Expected values come from Bybit's v5 documentation (bybit-exchange/docs, read 2026-11-30),
computed here from each message's raw fields, never from running rxws:

* ``websocket/public/orderbook.mdx``: a push is ``{"topic", "type": "snapshot"|"delta", "data":
  {..., "u", "seq"}}``. "u: Update ID. Is a sequence. Occasionally, you'll receive "u"=1, which
  is a snapshot data due to the restart of the service. So please overwrite your local
  orderbook"; "If you receive a new snapshot message, you will have to reset your local
  orderbook"; level 1 pushes a snapshot again after 3 s without change. ``seq`` is the cross
  sequence (not consecutive): the chain is ``u``.
* connect page: a subscribe response is ``{"success", "ret_msg", "conn_id", "req_id", "op"}``
  (``req_id`` echoes the request's, empty when the request had none).
* ``websocket/trade/guideline.mdx``: responses carry ``reqId`` (when the request had one),
  ``retCode`` (0 success; 10429 "System level frequency protection") and ``retMsg``; ``auth`` and
  ``pong`` responses have no ``reqId``. 10006 "Too many visits" is Bybit's rate-limit code.
"""

from __future__ import annotations

from typing import Any

from corpus import messages

from rxws.protocols import Bybit
from rxws.protocols.base import MessageKind

K = MessageKind
FILES = ["orderbook1_linear_capture", "orderbook1_spot_capture", "fixtures_and_docs", "derived_from_docs"]


def _all() -> list[dict[str, Any]]:
    return [m for name in FILES for m in messages("bybit", name)]


def _books() -> list[dict[str, Any]]:
    return [m for m in _all() if str(m.get("topic", "")).startswith("orderbook.")]


def test_every_push_is_data_keyed_by_its_topic() -> None:
    proto = Bybit()
    pushes = [m for m in _all() if "topic" in m]
    assert len(pushes) >= 40
    for message in pushes:
        assert proto.classify(message) == (K.DATA, message["topic"])
        assert proto.reply_error(message) is None
        assert proto.rate_limit_signal(message) is None


def test_order_book_sequence_is_u_and_a_snapshot_or_u_1_restarts_the_chain() -> None:
    proto = Bybit()
    for message in _books():
        seq = proto.sequence(message)
        data = message["data"]
        assert seq is not None
        assert (seq.first, seq.last, seq.prev) == (data["u"], data["u"], None)  # seq is not the chain
        assert seq.reset is (message["type"] == "snapshot" or data["u"] == 1)


def test_level_1_pushes_are_all_snapshots_and_their_u_may_repeat() -> None:
    """Why the reset rule matters: the captured level-1 stream re-sends an unchanged ``u``."""
    capture = [m for m in messages("bybit", "orderbook1_linear_capture") if "topic" in m]
    assert {m["type"] for m in capture} == {"snapshot"}
    seen: dict[str, list[int]] = {}
    for message in capture:
        seen.setdefault(message["topic"], []).append(message["data"]["u"])
    repeats = sum(len(us) - len(set(us)) for us in seen.values())
    assert repeats >= 3


def test_subscribe_responses_with_an_id_are_replies_and_without_one_are_acks() -> None:
    proto = Bybit()
    responses = [m for m in _all() if m.get("op") == "subscribe"]
    assert len(responses) == 12
    for message in responses:
        kind, key = proto.classify(message)
        if message.get("req_id"):
            assert (kind, str(key)) == (K.REPLY, message["req_id"])
        elif message["success"]:
            assert kind is K.ACK  # nothing to match it to but the subscribe itself
        else:
            assert kind is K.ERROR  # a refused subscribe the client cannot tie to a request
        error = proto.reply_error(message)
        assert (error is None) is message["success"]


def test_trade_responses_carry_retcode_and_only_rate_limit_codes_signal() -> None:
    proto = Bybit()
    responses = [m for m in _all() if "reqId" in m]
    assert [m["retCode"] for m in responses] == [0, 10429, 10006]
    for message in responses:
        kind, key = proto.classify(message)
        assert (kind, str(key)) == (K.REPLY, message["reqId"])
        error = proto.reply_error(message)
        assert (error is None) is (message["retCode"] == 0)
        if error is not None:
            assert error.code == message["retCode"]
        assert (proto.rate_limit_signal(message) is not None) is (message["retCode"] in (10006, 10429))


def test_auth_and_pong_responses_without_id_are_control() -> None:
    proto = Bybit()
    control = [m for m in _all() if m.get("op") in ("auth", "pong")]
    assert len(control) == 2
    for message in control:
        kind, _ = proto.classify(message)
        assert kind is K.CONTROL
        assert proto.reply_error(message) is None  # retCode 0


def test_every_corpus_message_is_understood() -> None:
    proto = Bybit()
    unknown = [m for m in _all() if proto.classify(m)[0] is K.UNKNOWN]
    assert unknown == []
