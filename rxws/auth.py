"""Credentials and the pure signing functions of each venue's WebSocket login.

:class:`Credentials` holds an API key, its secret and (OKX) a passphrase as pydantic
``SecretStr``: they never appear in ``repr``/``str``, ``model_dump``/``model_dump_json``, events,
exceptions or logs (every value is registered with :mod:`rxws._redact`, so a log line or an error
message that quotes one is masked).

The signing functions take plain values and return the signature the venue documents; the
dialects build their login frames with them (:meth:`rxws.protocols.base.VenueProtocol.login_frames`):

=============  =======================================================================================
venue          documented recipe
=============  =======================================================================================
OKX            ``sign = Base64(HMAC_SHA256(secret, timestamp + "GET" + "/users/self/verify"))``,
               ``timestamp`` in Unix seconds ("WebSocket > Login", https://www.okx.com/docs-v5/en/)
Bybit          ``signature = hex(HMAC_SHA256(secret, "GET/realtime" + expires))``, ``expires`` in
               Unix milliseconds (v5 "Connect > Authentication", bybit-exchange/docs)
Deribit        ``client_signature``: ``hex(HMAC_SHA256(secret, timestamp + "\\n" + nonce + "\\n" +
               data))`` ("public/auth", https://docs.deribit.com/api-reference/authentication/public-auth)
Binance        the WebSocket API's ``SIGNED`` payload: every parameter but ``signature``, sorted by
               name, written ``name=value`` and joined with ``&``; HMAC-SHA256 as hex for an HMAC
               key, Ed25519 or RSASSA-PKCS1-v1_5/SHA-256 as base64 for a PEM private key
               (binance/binance-spot-api-docs ``web-socket-api.md``, "Request security")
=============  =======================================================================================

Ed25519 and RSA need the ``cryptography`` package, which rxws does not depend on: without it a
PEM secret raises :class:`~rxws.exceptions.UsageError` saying so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from rxws._redact import register_secrets
from rxws.exceptions import UsageError

__all__ = [
    "Credentials",
    "binance_payload",
    "binance_sign",
    "bybit_signature",
    "deribit_signature",
    "generic_signature",
    "hmac_sha256_base64",
    "hmac_sha256_hex",
    "is_pem_key",
    "okx_signature",
]

_SECRET_NAME = "x-rxws-credential"  # the pseudo header under which credential values are registered


class Credentials(BaseModel):
    """An API key, its secret and an optional passphrase, kept secret.

    Plain strings are accepted and stored as ``SecretStr``; read a value with
    ``credentials.secret.get_secret_value()``. For Binance Ed25519/RSA keys the secret is the PEM
    text of the private key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    api_key: SecretStr
    secret: SecretStr
    passphrase: SecretStr | None = None

    def model_post_init(self, context: Any, /) -> None:
        """Register every value with :mod:`rxws._redact`, so logs and error texts mask them."""
        values = [self.api_key, self.secret] + ([self.passphrase] if self.passphrase is not None else [])
        for value in values:
            register_secrets({_SECRET_NAME: value.get_secret_value()}, (_SECRET_NAME,))

    def __repr__(self) -> str:
        phrase = ", passphrase=***" if self.passphrase is not None else ""
        return f"Credentials(api_key=***, secret=***{phrase})"

    def __str__(self) -> str:
        return self.__repr__()


def register_secret(value: str) -> None:
    """Mask ``value`` (a signature, a token) in rxws logs and error texts from now on."""
    register_secrets({_SECRET_NAME: value}, (_SECRET_NAME,))


def hmac_sha256_hex(secret: str, payload: str) -> str:
    """``hex(HMAC_SHA256(secret, payload))``, both as UTF-8."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def hmac_sha256_base64(secret: str, payload: str) -> str:
    """``Base64(HMAC_SHA256(secret, payload))``, both as UTF-8."""
    return base64.b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()


def okx_signature(secret: str, timestamp: str) -> str:
    """OKX login ``sign``: ``Base64(HMAC_SHA256(secret, timestamp + "GET" + "/users/self/verify"))``.

    Args:
        secret: the API key's secret.
        timestamp: Unix time in seconds, as the text sent in the login's ``timestamp``.
    """
    return hmac_sha256_base64(secret, f"{timestamp}GET/users/self/verify")


def bybit_signature(secret: str, expires: int) -> str:
    """Bybit ``auth`` signature: ``hex(HMAC_SHA256(secret, "GET/realtime" + expires))``.

    Args:
        secret: the API key's secret.
        expires: Unix time in milliseconds after which the venue refuses the login.
    """
    return hmac_sha256_hex(secret, f"GET/realtime{expires}")


def deribit_signature(secret: str, timestamp: int, nonce: str, data: str = "") -> str:
    """Deribit ``client_signature``: ``hex(HMAC_SHA256(secret, timestamp\\nnonce\\ndata))``.

    Args:
        secret: the client secret.
        timestamp: Unix time in milliseconds.
        nonce: a random string chosen by the client.
        data: optional user data (empty for a WebSocket login).
    """
    return hmac_sha256_hex(secret, f"{timestamp}\n{nonce}\n{data}")


def generic_signature(secret: str, api_key: str, timestamp: int) -> str:
    """The GenericJson (MockVenue) login signature: ``hex(HMAC_SHA256(secret, api_key + timestamp))``."""
    return hmac_sha256_hex(secret, f"{api_key}{timestamp}")


def binance_payload(params: Mapping[str, Any]) -> str:
    """The Binance WebSocket API signature payload: ``params`` but ``signature``, sorted by name,
    as ``name=value`` pairs joined by ``&`` (booleans written ``true``/``false``)."""
    parts = []
    for name in sorted(params):
        if name == "signature":
            continue
        value = params[name]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(f"{name}={text}")
    return "&".join(parts)


def is_pem_key(secret: str) -> bool:
    """Whether ``secret`` is a PEM private key (Binance Ed25519/RSA) rather than an HMAC secret."""
    return secret.lstrip().startswith("-----BEGIN")


def binance_sign(secret: str, payload: str) -> str:
    """Sign a Binance payload: hex HMAC-SHA256 for an HMAC secret; base64 Ed25519 or RSA (PKCS#1
    v1.5, SHA-256) for a PEM private key.

    Raises:
        UsageError: a PEM key without the ``cryptography`` package, or a key type Binance does not
            take.
    """
    if not is_pem_key(secret):
        return hmac_sha256_hex(secret, payload)
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
    except ImportError as exc:
        raise UsageError(
            "Binance Ed25519/RSA keys need the cryptography package (pip install 'rxws[auth]'); "
            "rxws does not install it"
        ) from exc
    key = serialization.load_pem_private_key(secret.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return base64.b64encode(key.sign(payload.encode("ascii"))).decode()
    if isinstance(key, rsa.RSAPrivateKey):
        signed = key.sign(payload.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signed).decode()
    raise UsageError(f"Binance takes HMAC, Ed25519 or RSA keys, not {type(key).__name__}")
