"""The dialects' login (issue 13): login frames, reply correlation and classification on real
frames (tests/data, see SOURCES.md), private topics, server times, and the safe defaults."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from corpus import messages

from rxws.auth import Credentials
from rxws.exceptions import UsageError
from rxws.protocols import Binance, Bybit, Deribit, GenericJson, JsonRpc, Okx
from rxws.protocols.base import LoginResult

BINANCE = Credentials(
    api_key="vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    secret="NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
)
CREDS = Credentials(api_key="key-abcdefgh", secret="secret-ijklmnop", passphrase="phrase-qrstuv")


def _hmac_hex(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


# Login frames ------------------------------------------------------------------------------------------
def test_binance_session_logon_is_the_documented_request() -> None:
    """binance/binance-spot-api-docs ``web-socket-api.md`` "Log in with API key (SIGNED)" (and
    https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-api-general-info,
    read 2026-11-30): with the documented key pair and timestamp the request is printed in full,
    signature ``1cf54395...`` included."""
    rid = "c174a2b1-3f51-4580-b200-8528bd237cb7"
    [step] = Binance().login_frames(BINANCE, 1649729878532, rid)
    assert step.key == rid
    assert step.frame == {
        "id": rid,
        "method": "session.logon",
        "params": {
            "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            "signature": "1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed",
            "timestamp": 1649729878532,
        },
    }


def test_okx_login_frame_has_the_documented_shape_and_sign() -> None:
    """OKX "WebSocket > Login": ``{"op": "login", "args": [{apiKey, passphrase, timestamp (s),
    sign}]}``; the sign is rebuilt here from the documented recipe with ``hmac``."""
    [step] = Okx().login_frames(CREDS, 1538054050_987, 1)
    assert step.key == "login"
    [arg] = step.frame["args"]
    assert step.frame["op"] == "login" and "id" not in step.frame
    assert arg["apiKey"] == "key-abcdefgh" and arg["passphrase"] == "phrase-qrstuv"
    assert arg["timestamp"] == "1538054050"
    expected = hmac.new(b"secret-ijklmnop", b"1538054050GET/users/self/verify", hashlib.sha256).digest()
    assert arg["sign"] == base64.b64encode(expected).decode()


def test_okx_login_needs_a_passphrase() -> None:
    with pytest.raises(UsageError, match="passphrase"):
        Okx().login_frames(Credentials(api_key="k", secret="s"), 0, 1)


def test_bybit_auth_frame_signs_expires_in_the_window() -> None:
    """Bybit v5 "Connect > Authentication": ``{"op": "auth", "args": [key, expires, signature]}``."""
    protocol = Bybit(category="private")
    [step] = protocol.login_frames(CREDS, 1_700_000_000_000, 7)
    key, expires, signature = step.frame["args"]
    assert (step.key, step.frame["op"], step.frame["req_id"]) == ("auth", "auth", "7")
    assert key == "key-abcdefgh" and expires == 1_700_000_010_000
    assert signature == _hmac_hex("secret-ijklmnop", f"GET/realtime{expires}")


def test_deribit_public_auth_uses_client_signature_and_never_sends_the_secret() -> None:
    """https://docs.deribit.com/api-reference/authentication/public-auth (``client_signature``)."""
    [step] = Deribit().login_frames(CREDS, 1_700_000_000_123, 5)
    frame = step.frame
    params = frame["params"]
    assert (step.key, frame["method"], frame["id"], frame["jsonrpc"]) == (5, "public/auth", 5, "2.0")
    assert params["grant_type"] == "client_signature" and params["client_id"] == "key-abcdefgh"
    nonce = params["nonce"]
    assert params["signature"] == _hmac_hex("secret-ijklmnop", f"1700000000123\n{nonce}\n")
    assert "secret-ijklmnop" not in str(frame)
    other = Deribit().login_frames(CREDS, 1_700_000_000_123, 5)[0].frame["params"]["nonce"]
    assert other != nonce  # a fresh nonce each login
    [refresh] = Deribit().refresh_frames("the-refresh-token", 6)
    assert refresh.frame["params"] == {"grant_type": "refresh_token", "refresh_token": "the-refresh-token"}


def test_generic_login_frame() -> None:
    [step] = GenericJson().login_frames(CREDS, 1234, 3)
    assert step.key == 3 and step.frame["op"] == "login" and step.frame["id"] == 3
    assert step.frame["params"]["signature"] == _hmac_hex("secret-ijklmnop", "key-abcdefgh1234")


def test_a_dialect_without_a_login_says_so() -> None:
    with pytest.raises(UsageError, match="jsonrpc dialect has no login"):
        JsonRpc().login_frames(CREDS, 0, 1)
    assert JsonRpc().refresh_frames("t", 1) == [] and not JsonRpc().is_private("user.orders")


# Replies -------------------------------------------------------------------------------------------------
def _read(protocol: Any, message: Any) -> tuple[Any, LoginResult]:
    return protocol.login_reply_key(message), protocol.login_result(message)


def test_okx_login_replies_from_the_docs_and_roq() -> None:
    ok, refused = messages("okx", "login_docs")
    protocol = Okx()
    key, result = _read(protocol, ok)
    assert key == "login" and result.ok
    key, result = _read(protocol, refused)
    assert key == "login" and (result.ok, result.code, result.detail) == (False, 60009, "Login failed.")
    no_key = messages("okx", "control_roq")[1]  # error 60032 "API key doesn't exist" (roq-okx)
    assert _read(protocol, no_key)[0] == "login" and protocol.login_result(no_key).code == 60032
    not_login = messages("okx", "fixtures_docs")[4]  # error 64003: a channel refusal
    assert protocol.login_reply_key(not_login) is None
    assert protocol.login_reply_key(messages("okx", "fixtures_docs")[5]) == "login"  # FastMM's login


def test_bybit_auth_replies_from_live_captures() -> None:
    refused, ok, refused_again = messages("bybit", "auth_issues")
    protocol = Bybit(category="private")
    assert _read(protocol, ok)[0] == "auth" and protocol.login_result(ok).ok
    for message in (refused, refused_again):
        key, result = _read(protocol, message)
        assert key == "auth" and (result.ok, result.code, result.detail) == (False, None, "Params Error")
    trade_auth = messages("bybit", "fixtures_and_docs")[3]  # order-entry endpoint: retCode 0
    assert protocol.login_result(trade_auth).ok and protocol.login_reply_key(trade_auth) == "auth"
    assert protocol.login_reply_key(messages("bybit", "fixtures_and_docs")[0]) is None  # a subscribe ack


def test_binance_session_logon_replies_from_the_docs() -> None:
    ok, revoked = messages("binance_spot", "session_logon_docs")
    protocol = Binance()
    assert protocol.login_reply_key(ok) == "c174a2b1-3f51-4580-b200-8528bd237cb7"
    assert protocol.login_result(ok).ok and protocol.server_time_ms(ok) == 1649729878630.0
    result = protocol.login_result(revoked)
    assert (result.ok, result.code) == (False, -2015)
    assert protocol.login_reply_key(revoked) is None  # "id": null: not a reply to our login


def test_deribit_auth_replies_from_the_docs() -> None:
    ok, expired = messages("deribit", "auth_docs")
    protocol = Deribit()
    key, result = _read(protocol, ok)
    assert key == 9929 and result.ok and result.expires_in == 31536000.0
    assert result.refresh_token is not None
    assert result.refresh_token.get_secret_value().startswith("1582628593469.1GP4rQd0")
    assert "1GP4rQd0" not in repr(result)
    key, result = _read(protocol, expired)
    assert key == 42 and (result.ok, result.code, result.detail) == (False, 13009, "invalid_token")
    assert protocol.server_time_ms(expired) == pytest.approx(1704153600001.234)
    assert protocol.login_result({"jsonrpc": "2.0", "id": 1, "result": None}).ok is False


def test_bybit_pong_states_the_venue_time() -> None:
    pong = messages("bybit", "fixtures_and_docs")[5]  # {"op":"pong","data":["1711002002529"],...}
    assert Bybit().server_time_ms(pong) == 1711002002529.0
    assert Bybit().server_time_ms({"op": "pong", "args": ["1675418560633"]}) == 1675418560633.0
    assert Bybit().server_time_ms({"op": "ping", "args": ["1"]}) is None


def test_generic_reply_time() -> None:
    protocol = GenericJson()
    assert protocol.server_time_ms({"id": 1, "result": {"authenticated": True, "time": 5}}) == 5.0
    assert protocol.server_time_ms({"id": 1, "result": None}) is None
    assert protocol.login_result(
        {"id": 1, "error": {"code": 401, "message": "invalid signature"}}
    ) == LoginResult(False, 401, "invalid signature")


# Private topics and windows --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("protocol", "private", "public"),
    [
        (
            Okx(),
            ["orders:instType=ANY", "account", "positions:instType=SWAP", "fills"],
            ["books:BTC-USDT", "tickers"],
        ),
        (
            Bybit(category="private"),
            ["order", "execution.spot", "wallet", "position.linear"],
            ["orderbook.50.BTCUSDT"],
        ),
        (Deribit(), ["user.orders.BTC-PERPETUAL.raw", "user.portfolio.btc"], ["book.BTC-PERPETUAL.100ms"]),
        (
            Binance(),
            ["pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"],
            ["btcusdt@depth", "!miniTicker@arr"],
        ),
        (GenericJson(), ["private.orders"], ["trades.x"]),
    ],
    ids=["okx", "bybit", "deribit", "binance", "generic"],
)
def test_private_topics(protocol: Any, private: list[str], public: list[str]) -> None:
    assert all(protocol.is_private(t) for t in private)
    assert not any(protocol.is_private(t) for t in public)


def test_auth_windows() -> None:
    assert (Okx().auth_window, Bybit().auth_window, Binance().auth_window) == (30.0, 10.0, 1.0)
    assert Deribit().auth_window is None and JsonRpc().auth_window is None
