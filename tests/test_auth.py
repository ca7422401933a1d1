"""rxws.auth: the signing functions against each venue's documented example, and Credentials kept secret.

Where a venue's documentation prints a worked signature (Binance), the test checks against that
number. Where it prints only the recipe (OKX, Bybit, Deribit), the expected value is built in the
test independently from the documented recipe with ``hmac`` directly (and, for OKX, cross-checked
with a value computed by ``openssl dgst``), as the test says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import pickle
import sys

import pytest
from pydantic import SecretStr

from rxws._redact import MASK, RedactFilter, redact
from rxws.auth import (
    Credentials,
    binance_payload,
    binance_sign,
    bybit_signature,
    deribit_signature,
    generic_signature,
    is_pem_key,
    okx_signature,
)
from rxws.exceptions import UsageError

# Binance's documented example key pair ("SIGNED request example (HMAC)").
BINANCE_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_binance_hmac_matches_the_documented_example() -> None:
    """binance/binance-spot-api-docs, ``web-socket-api.md`` (commit 042f8af630edfeeb7abddcc02daecac29d0ef03f),
    "SIGNED request example (HMAC)": the payload and the signature printed there."""
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "newOrderRespType": "ACK",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": BINANCE_KEY,
        "signature": "------ FILL ME ------",
    }
    payload = binance_payload(params)
    assert payload == (
        "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&newOrderRespType=ACK"
        "&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC"
        "&timestamp=1645423376532&type=LIMIT"
    )
    assert (
        binance_sign(BINANCE_SECRET, payload)
        == "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
    )


def test_binance_payload_writes_booleans_in_lower_case() -> None:
    assert binance_payload({"b": True, "a": False, "signature": "x"}) == "a=false&b=true"


def test_binance_pem_key_without_cryptography_is_a_clear_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hide the package (a None entry in sys.modules makes every import of it fail) so the path a user
    # without the "auth" extra meets is tested in every environment.
    for name in [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
    assert is_pem_key(pem)
    with pytest.raises(UsageError, match="cryptography"):
        binance_sign(pem, "apiKey=k&timestamp=1")


def test_binance_ed25519_signature_verifies_with_the_public_key() -> None:
    """web-socket-api.md "SIGNED Request Example (Ed25519)": base64 of the Ed25519 signature of the
    payload; no fixed key is printed, so the signature is verified with the key's public half."""
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    payload = binance_payload({"apiKey": "k", "timestamp": 1649729878532})
    signature = binance_sign(pem, payload)
    key.public_key().verify(base64.b64decode(signature), payload.encode())  # raises when wrong


def test_okx_signature_follows_the_documented_recipe() -> None:
    """https://www.okx.com/docs-v5/en/ "WebSocket > Login" (and the identical recipe on
    https://web3.okx.com/onchainos/dev-docs-v5/dex-api/dex-websocket-login, read 2026-11-30):
    ``sign = Base64(HmacSHA256(timestamp + 'GET' + '/users/self/verify', secret))``. The docs print
    a sample secret (``22582BD0CFF14C41EDBF1AB98506286D``) and a sample request (timestamp
    ``1538054050``) but no signature for that pair, so the expected value is computed here with
    ``hmac`` and was cross-checked with ``openssl dgst -sha256 -hmac ... -binary | base64``."""
    secret, timestamp = "22582BD0CFF14C41EDBF1AB98506286D", "1538054050"
    message = (timestamp + "GET" + "/users/self/verify").encode()
    expected = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    assert okx_signature(secret, timestamp) == expected == "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M="


def test_bybit_signature_follows_the_documented_recipe() -> None:
    """bybit-exchange docs (v5 "Connect > Authentication"; the recipe as printed in
    sash-mt5/bybit-official-api-docs ``en/websocket.md``): ``signature =
    hex(HMAC_SHA256(secret, 'GET/realtime' + expires))``. No worked numbers are printed: the
    expected value is built here with ``hmac`` from the recipe."""
    secret, expires = "a-bybit-test-secret", 1662350400000
    expected = hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    assert bybit_signature(secret, expires) == expected
    assert bybit_signature(secret, expires + 1) != expected


def test_deribit_signature_follows_the_documented_recipe() -> None:
    """https://docs.deribit.com/api-reference/authentication/public-auth (``client_signature``) and
    the deribit-api gem's ``Deribit.signature`` (rubydoc.info/gems/deribit-api):
    ``StringToSign = Timestamp + "\\n" + Nonce + "\\n" + Data``, ``Signature =
    HEX_STRING(HMAC-SHA256(ClientSecret, StringToSign))``. No worked numbers for the WebSocket form
    were found, so the expected value is built here with ``hmac``."""
    secret, timestamp, nonce = "W0H6FJW4IRPZ1MOQ8FP6KMC5RZDUUKXS", 1576074319000, "1iqt2wls"
    string_to_sign = f"{timestamp}\n{nonce}\n"
    expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    assert deribit_signature(secret, timestamp, nonce) == expected
    assert deribit_signature(secret, timestamp, nonce, "x") != expected


def test_generic_signature_is_hmac_of_key_and_timestamp() -> None:
    expected = hmac.new(b"s3cret-value", b"key-1234567", hashlib.sha256).hexdigest()
    assert generic_signature("s3cret-value", "key-1234", 567) == expected


# Credentials ----------------------------------------------------------------------------------------
KEY, SECRET, PHRASE = "my-api-key-1234", "my-very-secret-5678", "pass-phrase-9012"


def _creds() -> Credentials:
    return Credentials(api_key=KEY, secret=SECRET, passphrase=PHRASE)


def _leaks(text: str) -> list[str]:
    return [v for v in (KEY, SECRET, PHRASE) if v in text]


def test_credentials_accept_plain_strings_and_secretstr() -> None:
    a = _creds()
    b = Credentials(api_key=SecretStr(KEY), secret=SecretStr(SECRET), passphrase=SecretStr(PHRASE))
    assert a.secret.get_secret_value() == SECRET
    assert b.passphrase is not None and b.passphrase.get_secret_value() == PHRASE
    assert Credentials(api_key=KEY, secret=SECRET).passphrase is None


def test_credentials_never_show_in_repr_str_dump_or_json() -> None:
    creds = _creds()
    for text in (repr(creds), str(creds), str(creds.model_dump()), creds.model_dump_json(), f"{creds!r}"):
        assert _leaks(text) == [], text
    assert "passphrase=***" in repr(creds)


def test_credentials_are_frozen_and_strict() -> None:
    creds = _creds()
    with pytest.raises(ValueError):
        creds.api_key = SecretStr("other")  # type: ignore[misc]
    with pytest.raises(ValueError):
        Credentials(api_key=KEY, secret=SECRET, extra="x")  # type: ignore[call-arg]


def test_credential_values_are_masked_in_logs_and_error_texts(caplog: pytest.LogCaptureFixture) -> None:
    _creds()
    assert redact(f"sent key {KEY} with {SECRET} and {PHRASE}") == f"sent key {MASK} with {MASK} and {MASK}"
    logger = logging.getLogger("rxws.test_auth")
    logger.addFilter(RedactFilter())
    with caplog.at_level(logging.INFO, logger="rxws.test_auth"):
        logger.info("login frame %s", {"apiKey": KEY, "sign": SECRET})
    assert caplog.records and _leaks(caplog.text) == []


def test_a_validation_error_never_shows_the_input() -> None:
    with pytest.raises(ValueError) as caught:
        Credentials(api_key=KEY, secret=987654321987)  # type: ignore[arg-type]
    assert "987654321987" not in str(caught.value) and "secret" in str(caught.value)


def test_credentials_pickle_keeps_values_hidden_in_repr() -> None:
    clone = pickle.loads(pickle.dumps(_creds()))
    assert clone.secret.get_secret_value() == SECRET
    assert _leaks(repr(clone)) == []
