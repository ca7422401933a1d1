"""Secrets out of logs, reprs and error messages: header values such as API keys are masked.

Venues authenticate with headers on the WebSocket handshake (or on REST calls whose headers a
host reuses), and the ``websockets`` library prints every handshake header at DEBUG. This module
masks the values of *secret headers* wherever rxws or ``websockets`` could print them:

* :class:`RedactFilter`, a :class:`logging.Filter` that rewrites each record it sees (message,
  arguments and exception text) through :func:`redact`; :func:`install` puts one instance on the
  ``rxws`` and ``websockets`` loggers (a logger's filters only see records logged on that very
  logger, so each one is named: see :data:`LOGGERS`). The transport installs it on every open.
* :func:`redact` masks (1) every value registered as a secret (:func:`register_secrets`; every
  :class:`~rxws.transport.base.LinkOptions` registers the values of its secret headers), wherever
  it appears, and (2) the value after any secret header name written as ``Name: value``,
  ``'Name': 'value'`` or ``Name=value``, even one never registered.
* :func:`redact` also masks (3) the user information of any URL (``socks5://user:pw@host`` becomes
  ``socks5://***@host``): proxy credentials, however short (issue 14).
* :func:`mask_headers` gives a copy of a header mapping with secret values masked (for reprs).

The header name stays visible (``X-MBX-APIKEY: ***``), so a log still shows that a key was sent.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_SECRET_HEADERS",
    "LOGGERS",
    "MASK",
    "RedactFilter",
    "install",
    "mask_headers",
    "redact",
    "register_secrets",
]

MASK = "***"
"""What a secret is replaced with."""

DEFAULT_SECRET_HEADERS: tuple[str, ...] = (
    # Binance: "API-keys are passed into the Rest API via the X-MBX-APIKEY header."
    # https://developers.binance.com/docs/binance-spot-api-docs/rest-api/endpoint-security-type
    "X-MBX-APIKEY",
    # OKX, REST Authentication > Making Requests: OK-ACCESS-KEY, OK-ACCESS-SIGN,
    # OK-ACCESS-TIMESTAMP, OK-ACCESS-PASSPHRASE. https://www.okx.com/docs-v5/en/
    "OK-ACCESS-KEY",
    "OK-ACCESS-SIGN",
    "OK-ACCESS-PASSPHRASE",
    # Bybit v5, Integration Guidance > Authentication: X-BAPI-API-KEY, X-BAPI-TIMESTAMP,
    # X-BAPI-SIGN (+ X-BAPI-RECV-WINDOW). https://bybit-exchange.github.io/docs/v5/guide
    "X-BAPI-API-KEY",
    "X-BAPI-SIGN",
    # Coinbase Exchange REST authentication: CB-ACCESS-KEY, CB-ACCESS-SIGN, CB-ACCESS-TIMESTAMP,
    # CB-ACCESS-PASSPHRASE. https://docs.cdp.coinbase.com/exchange/rest-api/authentication
    "CB-ACCESS-KEY",
    "CB-ACCESS-SIGN",
    "CB-ACCESS-PASSPHRASE",
    # KuCoin: KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, KC-API-PASSPHRASE, KC-API-KEY-VERSION.
    # https://www.kucoin.com/docs/basic-info/connection-method/authentication/creating-a-request
    "KC-API-KEY",
    "KC-API-SIGN",
    "KC-API-PASSPHRASE",
    # Kraken spot REST: API-Key, API-Sign. https://docs.kraken.com/api/docs/guides/spot-rest-auth
    "API-Key",
    "API-Sign",
    # Bitget: ACCESS-KEY, ACCESS-SIGN, ACCESS-TIMESTAMP, ACCESS-PASSPHRASE.
    # https://www.bitget.com/api-doc/common/signature
    "ACCESS-KEY",
    "ACCESS-SIGN",
    "ACCESS-PASSPHRASE",
    # HTTP itself: credentials (RFC 9110 sections 11.6.2 and 11.7.2) and cookies (RFC 6265).
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "Set-Cookie",
)
"""Header names masked by default (case-insensitive), with the documentation each comes from.
(Gate's bare ``KEY``/``SIGN`` headers are left out: names that generic would mask ordinary log
text; pass them through ``secret_headers`` when you use Gate.)"""

LOGGERS: tuple[str, ...] = (
    "rxws",
    "rxws.client",
    "rxws.transport",
    "rxws.aio",
    "rxws.cli",
    "rxws.pool",
    "rxws.testing.venue",
    "websockets",
    "websockets.client",
    "websockets.server",
)
"""Loggers :func:`install` filters, plus any other ``rxws.*``/``websockets.*`` logger existing
when it runs."""

_MIN_SECRET = 4  # shorter "secrets" would mask ordinary text everywhere
_lock = threading.Lock()
_values: frozenset[str] = frozenset()
_names: frozenset[str] = frozenset(n.lower() for n in DEFAULT_SECRET_HEADERS)
_pattern: re.Pattern[str] | None = None


def _compile(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    # name, then the separator (optionally closing the name's quote), then an optional quote, then
    # the value up to the end of the line or a closing quote
    return re.compile(
        rf"(?<![\w-])({alternatives})(['\"]?\s*[:=]\s*)(b?['\"]?)([^\r\n'\"]*)",
        re.IGNORECASE,
    )


def register_secrets(headers: Mapping[str, str], names: Iterable[str] = DEFAULT_SECRET_HEADERS) -> None:
    """Remember the values of ``headers`` whose name is in ``names`` (and the names), to mask them."""
    global _values, _names, _pattern
    wanted = {n.lower() for n in names}
    found = {
        str(value)
        for key, value in headers.items()
        if str(key).lower() in wanted and len(str(value)) >= _MIN_SECRET
    }
    if found:
        install()  # a secret is known: from now on every rxws/websockets record is filtered
    if found <= _values and wanted <= _names:
        return
    with _lock:
        _values = _values | found
        if not wanted <= _names:
            _names = _names | wanted
            _pattern = None


def redact(text: str) -> str:
    """``text`` with every registered secret, every secret header's value and the credentials in
    every URL masked."""
    for value in _values:
        if value in text:
            text = text.replace(value, MASK)
    if "@" in text and "://" in text:
        text = _USERINFO.sub(MASK + "@", text)
    pattern = _pattern
    if pattern is None:
        pattern = _set_pattern()
    if pattern.search(text) is None:
        return text
    return pattern.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{MASK}" if m[4] else m[0], text)


# scheme://user[:password]@ — the user information of a URL (RFC 3986 section 3.2.1)
_USERINFO = re.compile(r"(?<=://)[^\s/?#@'\"]+@")


def _set_pattern() -> re.Pattern[str]:
    global _pattern
    with _lock:
        pattern = _pattern = _compile(_names)
    return pattern


def mask_headers(headers: Mapping[str, str], names: Iterable[str] = DEFAULT_SECRET_HEADERS) -> dict[str, str]:
    """A copy of ``headers`` with the value of every header named in ``names`` masked."""
    wanted = {n.lower() for n in names}
    return {k: (MASK if str(k).lower() in wanted else v) for k, v in headers.items()}


class RedactFilter(logging.Filter):
    """Masks secrets in every record it sees (never drops one): message, arguments, exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place through :func:`redact`; always keep it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactFilter()
_installed: set[str] = set()


def install(names: Iterable[str] = LOGGERS) -> None:
    """Put the shared :class:`RedactFilter` on each named logger and on every existing ``rxws.*``
    and ``websockets.*`` logger (idempotent, cheap to call again)."""
    targets = set(names)
    manager: Any = logging.Logger.manager
    for name in list(manager.loggerDict):
        if name.startswith(("rxws.", "websockets.")):
            targets.add(name)
    for name in targets - _installed:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        _installed.add(name)
