"""Server twins: client dialect encodes → server dialect parses → server renders → client reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.protocols import Binance, Bybit, Deribit, GenericJson, JsonRpc, MessageKind, Okx, VenueProtocol
from rxws.protocols.deribit import TEST_REQUEST_ID
from rxws.testing.dialects import (
    SERVER_DIALECTS,
    DeribitServerDialect,
    GenericServerDialect,
    ServerDialect,
    server_dialect,
)

DATA, REPLY, ACK, CONTROL = MessageKind.DATA, MessageKind.REPLY, MessageKind.ACK, MessageKind.CONTROL

# name, client dialect, two topics of that venue, whether each topic's data carries an update
# chain (by the venue's documentation: books do, trades/tickers/indexes do not), whether the venue
# has a "too many requests" message
CASES: list[tuple[str, VenueProtocol, list[str], tuple[bool, bool], bool]] = [
    ("generic", GenericJson(), ["trades.BTC", "trades.ETH"], (True, True), False),
    ("jsonrpc", JsonRpc(), ["ticks.a", "ticks.b"], (False, False), False),
    ("binance", Binance(), ["btcusdt@depth", "ethusdt@trade"], (True, False), True),
    ("okx", Okx(), ["books:BTC-USDT", "instruments:instType=SPOT"], (True, False), True),
    ("bybit", Bybit(), ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"], (True, False), True),
    ("deribit", Deribit(), ["book.BTC-PERPETUAL.100ms", "deribit_price_index.btc_usd"], (True, False), True),
]
# Venues whose first book message is a snapshot that starts a chain (Seq.reset).
SNAPSHOT_FIRST = {"okx", "bybit", "deribit"}
IDS = [c[0] for c in CASES]
RATE_LIMIT_CODES = {"binance": -1003, "okx": 60014, "bybit": 10006, "deribit": 10028}


def wire(client: VenueProtocol, message: Any) -> str | bytes:
    return client.encode(message)


def read(client: VenueProtocol, frame: str) -> Any:
    return client.decode(frame)


def test_every_dialect_is_registered() -> None:
    assert set(SERVER_DIALECTS) == {"generic", "jsonrpc", "binance", "okx", "bybit", "deribit"}
    for name in SERVER_DIALECTS:
        dialect = server_dialect(name)
        assert isinstance(dialect, ServerDialect) and dialect.name == name
    with pytest.raises(ValueError, match="unknown dialect"):
        server_dialect("nope")


@pytest.mark.parametrize("name, client, topics, sequenced, limited", CASES, ids=IDS)
def test_subscribe_round_trip(
    name: str, client: VenueProtocol, topics: list[str], sequenced: tuple[bool, bool], limited: bool
) -> None:
    server = server_dialect(name)
    op = server.parse(wire(client, client.subscribe_message(topics, 7)))
    assert op.op == "subscribe" and op.topics == topics
    acked: list[str] = []
    replied = []
    for frame in server.ack(op):
        msg = read(client, frame)
        kind, key = client.classify(msg)
        assert client.reply_error(msg) is None
        if kind is ACK:
            acked.extend(client.ack_topics(msg))
        else:
            assert kind is REPLY
            replied.append(key)
    assert replied == [7] or acked == topics


@pytest.mark.parametrize("name, client, topics, sequenced, limited", CASES, ids=IDS)
def test_unsubscribe_round_trip(
    name: str, client: VenueProtocol, topics: list[str], sequenced: tuple[bool, bool], limited: bool
) -> None:
    server = server_dialect(name)
    op = server.parse(wire(client, client.unsubscribe_message(topics[:1], 8)))
    assert op.op == "unsubscribe" and op.topics == topics[:1]
    for frame in server.ack(op):
        msg = read(client, frame)
        kind, key = client.classify(msg)
        # acked by id, or (OKX) per topic
        assert (kind, key) == (REPLY, 8) or (kind is MessageKind.UNACK and client.ack_topics(msg) == (key,))
        assert client.reply_error(msg) is None


@pytest.mark.parametrize("name, client, topics, sequenced, limited", CASES, ids=IDS)
@pytest.mark.parametrize("params", [{"x": 1, "y": [1, 2]}, None])
def test_request_reply_round_trip(
    name: str,
    client: VenueProtocol,
    topics: list[str],
    sequenced: tuple[bool, bool],
    limited: bool,
    params: Any,
) -> None:
    server = server_dialect(name)
    op = server.parse(wire(client, client.request_message("echo", params, 9)))
    assert op.op == "request" and op.method == "echo" and op.params == params
    msg = read(client, server.reply(op.id, op.params))
    assert client.classify(msg) == (REPLY, 9)
    assert client.reply_error(msg) is None
    assert client.reply_result(msg) == params


@pytest.mark.parametrize("name, client, topics, sequenced, limited", CASES, ids=IDS)
def test_error_round_trip(
    name: str, client: VenueProtocol, topics: list[str], sequenced: tuple[bool, bool], limited: bool
) -> None:
    server = server_dialect(name)
    op = server.parse(wire(client, client.request_message("fail", {"code": 404}, 10)))
    msg = read(client, server.error(op.id, 404, "unknown topic(s): x"))
    assert client.classify(msg) == (REPLY, 10)
    error = client.reply_error(msg)
    assert error is not None and error.code == 404 and error.message == "unknown topic(s): x"
    assert client.rate_limit_signal(msg) is None


@pytest.mark.parametrize("name, client, topics, sequenced, limited", CASES, ids=IDS)
@pytest.mark.parametrize("payload", [{"p": "1.5", "q": 2}, [1, 2], "text", None])
def test_data_round_trip_with_consistent_sequence(
    name: str,
    client: VenueProtocol,
    topics: list[str],
    sequenced: tuple[bool, bool],
    limited: bool,
    payload: Any,
) -> None:
    server = server_dialect(name)
    for topic, chained in zip(topics, sequenced, strict=True):
        for seq in (1, 2, 3):
            msg = read(client, server.data(topic, seq, payload))
            assert client.classify(msg) == (DATA, topic)
            found = client.sequence(msg)
            if not chained:
                assert found is None
                continue
            assert found is not None and found.first == found.last == seq
            assert found.reset == (seq == 1 and name in SNAPSHOT_FIRST)
            assert found.prev in (None, seq - 1)
            if seq > 1 and name in {"okx", "deribit"}:
                assert found.prev == seq - 1


@pytest.mark.parametrize("name, client, topics, sequenced, limited", CASES, ids=IDS)
def test_rate_limited_round_trip(
    name: str, client: VenueProtocol, topics: list[str], sequenced: tuple[bool, bool], limited: bool
) -> None:
    server = server_dialect(name)
    op = server.parse(wire(client, client.request_message("echo", None, 11)))
    frame = server.rate_limited(op.id)
    if not limited:
        assert frame is None
        return
    assert frame is not None
    msg = read(client, frame)
    assert client.classify(msg) == (REPLY, 11)
    assert client.rate_limit_signal(msg) == f"{name}_{RATE_LIMIT_CODES[name]}"
    assert client.reply_error(msg) is not None


@pytest.mark.parametrize("name, client, topics, sequenced, limited", CASES, ids=IDS)
def test_heartbeat_round_trip(
    name: str, client: VenueProtocol, topics: list[str], sequenced: tuple[bool, bool], limited: bool
) -> None:
    ping = client.heartbeat_message()
    if ping is None:
        return
    server = server_dialect(name)
    op = server.parse(wire(client, ping))
    assert op.op == "ping"
    assert client.classify(read(client, server.pong(op))) == (CONTROL, "pong")


def test_deribit_test_request_round_trip() -> None:
    client, server = Deribit(), DeribitServerDialect()
    heartbeat = client.decode(server.test_request())
    assert client.classify(heartbeat) == (CONTROL, "test_request")
    answer = client.auto_reply(heartbeat)
    op = server.parse(client.encode(answer))
    assert op.op == "ping" and op.id == TEST_REQUEST_ID
    assert client.classify(client.decode(server.pong(op))) == (CONTROL, "test")


@pytest.mark.parametrize(
    "name, client, listing",
    [
        ("binance", Binance(), {"method": "LIST_SUBSCRIPTIONS", "id": 3}),
        ("generic", GenericJson(), {"op": "list_subscriptions", "id": 3}),
        ("jsonrpc", JsonRpc(), {"jsonrpc": "2.0", "method": "list_subscriptions", "id": 3}),
        ("deribit", Deribit(), {"jsonrpc": "2.0", "method": "public/get_subscriptions", "id": 3}),
    ],
)
def test_list_subscriptions_round_trip(name: str, client: VenueProtocol, listing: Any) -> None:
    server = server_dialect(name)
    op = server.parse(client.encode(listing))
    assert op.op == "list"
    msg = client.decode(server.reply(op.id, ["a", "b"]))
    assert client.classify(msg) == (REPLY, 3)
    assert client.reply_result(msg) == ["a", "b"]


def test_okx_acks_once_per_argument_and_errors_without_id() -> None:
    client, server = Okx(), server_dialect("okx")
    op = server.parse(client.encode(client.subscribe_message(["books:BTC-USDT", "trades:ETH-USDT"], 4)))
    frames = server.ack(op)
    assert [client.classify(client.decode(f)) for f in frames] == [
        (ACK, "books:BTC-USDT"),
        (ACK, "trades:ETH-USDT"),
    ]
    anonymous = client.decode(server.error(None, 60012, "Invalid request"))
    assert client.classify(anonymous) == (MessageKind.ERROR, 60012)


# -- bad input to the server side ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVER_DIALECTS))
@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        "42",
        '"text"',
        "null",
        "{}",
        '{"op": 5}',
        '{"method": ["x"]}',
        '{"op": "subscribe", "args": "x"}',
        '{"method": "SUBSCRIBE", "params": [1], "id": 1}',
        '{"jsonrpc": "2.0", "method": "subscribe", "params": {"channels": [1]}, "id": 1}',
        '{"op": "subscribe", "args": [{"instId": "BTC-USDT"}]}',
        "[" * 10_000 + "]" * 10_000,
    ],
)
def test_parse_turns_bad_input_into_invalid(name: str, frame: str | bytes) -> None:
    op = server_dialect(name).parse(frame)
    assert op.op in ("invalid", "request", "ping")  # never raises; "{}" is a request for some venues
    if op.op == "invalid":
        assert op.detail


def test_generic_twin_is_unchanged() -> None:
    server = GenericServerDialect()
    op = server.parse('{"op": "subscribe", "id": 1, "args": ["a"]}')
    assert (op.op, op.id, op.topics) == ("subscribe", 1, ["a"])
    assert server.ack(op) == ['{"id":1,"result":null}']
    assert server.data("a", 3, {"x": 1}) == '{"topic":"a","seq":3,"data":{"x":1}}'


keys = st.sampled_from(["op", "id", "req_id", "method", "params", "args", "channels", "channel"])
json_text = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=16,
)


@given(json_text)
def test_parse_never_raises(value: Any) -> None:
    frame = json.dumps(value)
    for name in SERVER_DIALECTS:
        server_dialect(name).parse(frame)


def test_binance_twin_sends_server_shutdown_in_both_stream_forms() -> None:
    # web-socket-streams.md "Server Shutdown" (read 2026-11-30): raw and combined forms.
    server, client = server_dialect("binance"), Binance()
    combined = server.shutdown_notice()
    raw = server.shutdown_notice(raw=True)
    assert combined is not None and raw is not None
    assert json.loads(combined) == {
        "stream": "!serverShutdown",
        "data": {"e": "serverShutdown", "E": 1770123456789},
    }
    assert json.loads(raw) == {"e": "serverShutdown", "E": 1770123456789}
    for frame in (combined, raw):
        assert client.classify(read(client, frame)) == (MessageKind.NOTICE, "shutdown")


def test_okx_twin_sends_the_64008_notice_and_private_pushes_with_uid() -> None:
    server, client = server_dialect("okx"), Okx()
    notice = server.shutdown_notice()
    assert notice is not None
    assert client.classify(read(client, notice)) == (MessageKind.NOTICE, "shutdown")
    client.subscribe_message(["account", "orders:instType=ANY"], 1)
    account = read(client, server.data("account", 1, {"totalEq": "1"}))
    assert account["arg"] == {"channel": "account", "uid": "44*********584"}
    assert client.classify(account) == (DATA, "account")
    orders = read(client, server.data("orders:instType=ANY", 1, {"ordId": "1"}))
    assert orders["arg"] == {"channel": "orders", "instType": "ANY", "uid": "44*********584"}
    assert client.classify(orders) == (DATA, "orders:instType=ANY")
    assert client.sequence(account) is None and client.sequence(orders) is None


@pytest.mark.parametrize("name", ["generic", "jsonrpc", "bybit", "deribit"])
def test_venues_without_a_documented_shutdown_notice_have_none(name: str) -> None:
    assert server_dialect(name).shutdown_notice() is None
    assert server_dialect(name).shutdown_notice(raw=True) is None
