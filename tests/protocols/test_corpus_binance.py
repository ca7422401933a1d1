"""The Binance dialect against real Binance traffic (tests/data/binance_spot, binance_usdm).

Expected values come from Binance's documentation, computed here from each message's raw fields,
never from running rxws:

* spot ``web-socket-streams.md`` (binance/binance-spot-api-docs): "Combined stream events are
  wrapped as follows: {"stream":"<streamName>","data":<rawPayload>}"; "Diff. Depth Stream" and
  "How to manage a local order book correctly": each event's ``U`` is the previous event's
  ``u`` + 1 (first and final update id in the event); partial depth (``lastUpdateId``) and book
  ticker payloads carry no update chain; "Live Subscribing/Unsubscribing": a response to a request
  carries its ``id`` ("result": null = success); "Error Messages": ``{"code": c, "msg": m}``.
* USDⓈ-M futures "Diff. Book Depth Streams" / "How to manage a local order book correctly"
  (developers.binance.com): ``pu`` is the previous event's final update id ``u``.
* spot ``web-socket-api.md``: responses carry ``id``, ``status`` and ``error`` {code, msg};
  "IP limits": -1003 (status 418/429) is the request-weight rate limit.
* "Server Shutdown" / WebSocket API "Connection events": a ``serverShutdown`` event is "sent when
  the server is about to shut down"; the project contract reads it as a NOTICE labelled
  ``"shutdown"``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from corpus import messages

from rxws.protocols import Binance
from rxws.protocols.base import MessageKind

K = MessageKind
DIFF_DEPTH = re.compile(r"^[a-z0-9]+@depth(@\d+ms)?$")  # <symbol>@depth or <symbol>@depth@100ms
CAPTURES = [("binance_spot", "combined_depth_capture"), ("binance_usdm", "combined_depth_capture")]


def _combined(venue: str, name: str) -> list[dict[str, Any]]:
    return [m for m in messages(venue, name) if isinstance(m, dict) and "stream" in m]


@pytest.mark.parametrize(("venue", "name"), CAPTURES)
def test_combined_stream_data_is_keyed_by_its_stream_name(venue: str, name: str) -> None:
    proto = Binance()
    pushes = _combined(venue, name)
    assert len(pushes) == len(messages(venue, name))  # a combined connection wraps every event
    for message in pushes:
        assert proto.classify(message) == (K.DATA, message["stream"])
        assert proto.reply_error(message) is None
        assert proto.rate_limit_signal(message) is None


@pytest.mark.parametrize(("venue", "name"), CAPTURES)
def test_diff_depth_sequence_is_U_to_u_and_futures_state_pu(venue: str, name: str) -> None:
    proto = Binance()
    futures = venue == "binance_usdm"
    checked = 0
    for message in _combined(venue, name):
        seq = proto.sequence(message)
        data = message["data"]
        if DIFF_DEPTH.match(message["stream"]):
            assert seq is not None, message["stream"]
            # first = U, last = u; futures state the previous final id pu, spot states none.
            assert (seq.first, seq.last, seq.prev) == (data["U"], data["u"], data["pu"] if futures else None)
            assert seq.reset is False  # a diff event never starts a chain by itself
            checked += 1
        else:
            # bookTicker (its u is the book's update id, not a chain), aggTrade, kline: no chain.
            assert seq is None, message["stream"]
    assert checked >= 40


@pytest.mark.parametrize(("venue", "name"), CAPTURES)
def test_the_captured_chains_follow_the_documented_rule(venue: str, name: str) -> None:
    """The data itself obeys the documented rule, so the chain tests built on it are sound."""
    last: dict[str, int] = {}
    links = 0
    for message in _combined(venue, name):
        if not DIFF_DEPTH.match(message["stream"]):
            continue
        data = message["data"]
        if message["stream"] in last:
            if venue == "binance_usdm":
                assert data["pu"] == last[message["stream"]]
            else:
                assert data["U"] == last[message["stream"]] + 1
            links += 1
        last[message["stream"]] = data["u"]
    assert links >= 30


def test_stream_replies_are_keyed_by_their_id() -> None:
    proto = Binance()
    replies = [m for m in messages("binance_spot", "docs_examples") if "id" in m and "result" in m]
    assert [m["id"] for m in replies] == [1, 312, 3, 2, "7069b743-f477-4ae3-81db-db9b8df085d2"]
    for message in replies:
        assert proto.classify(message) == (K.REPLY, message["id"])
        assert proto.reply_error(message) is None  # "result": null (or a value) is a success
        assert proto.reply_result(message) == message["result"]
        assert proto.rate_limit_signal(message) is None


def test_stream_error_messages_without_id_are_errors_keyed_by_code() -> None:
    proto = Binance()
    errors = [m for m in messages("binance_spot", "docs_examples") if "code" in m and "id" not in m]
    assert [m["code"] for m in errors] == [2, 1]
    for message in errors:
        assert proto.classify(message) == (K.ERROR, message["code"])
        error = proto.reply_error(message)
        assert error is not None and (error.code, error.message) == (message["code"], message["msg"])
        assert proto.rate_limit_signal(message) is None


def test_websocket_api_failures_carry_their_code_and_only_minus_1003_is_a_rate_limit() -> None:
    proto = Binance()
    failures = [m for m in messages("binance_spot", "docs_examples") if "error" in m]
    assert [m["error"]["code"] for m in failures] == [-2010, -1003]
    for message in failures:
        assert proto.classify(message) == (K.REPLY, message["id"])
        error = proto.reply_error(message)
        assert error is not None and error.code == message["error"]["code"]
        is_rate_limit = message["error"]["code"] == -1003  # "IP limits": request weight exceeded
        assert (proto.rate_limit_signal(message) is not None) is is_rate_limit


def test_raw_payloads_without_a_stream_name_carry_no_chain() -> None:
    """The documented partial-depth and book-ticker payloads name no stream and have no chain."""
    proto = Binance()
    payloads = [m for m in messages("binance_spot", "docs_examples") if "lastUpdateId" in m or "A" in m]
    assert len(payloads) == 2
    for message in payloads:
        assert proto.sequence(message) is None
        kind, _ = proto.classify(message)
        # Neither payload has an event type or a stream: no topic can be derived from it.
        assert kind is K.UNKNOWN


def test_server_shutdown_is_a_shutdown_notice_in_every_documented_form() -> None:
    proto = Binance()
    forms = messages("binance_spot", "server_shutdown")
    assert len(forms) == 3  # WebSocket API {"event": ...}, raw stream payload, combined stream
    for message in forms:
        assert proto.classify(message) == (K.NOTICE, "shutdown")
        assert proto.sequence(message) is None
        assert proto.rate_limit_signal(message) is None
        _code, detail = proto.notice_detail(message)
        assert "serverShutdown" in detail


def test_every_corpus_message_but_the_unnamed_raw_payloads_is_understood() -> None:
    proto = Binance()
    corpus = [
        m
        for venue, name in [*CAPTURES, ("binance_spot", "docs_examples"), ("binance_spot", "server_shutdown")]
        for m in messages(venue, name)
    ]
    unknown = [m for m in corpus if proto.classify(m)[0] is K.UNKNOWN]
    assert len(corpus) >= 140
    assert unknown == [m for m in corpus if "lastUpdateId" in m or set(m) == {"u", "s", "b", "B", "a", "A"}]
