"""The native transport's open errors: every ``websockets`` (and proxy) failure to open a link
translated into the rxws tree (:mod:`rxws.exceptions`), secrets masked."""

from __future__ import annotations

import ssl as _ssl
from urllib.parse import urlsplit

from websockets.exceptions import (
    InvalidHandshake,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.exceptions import ProxyError as WsProxyError

from rxws import _redact
from rxws.exceptions import (
    ConnectFailed,
    HandshakeRejected,
    InvalidURL,
    ProxyAuthFailed,
    ProxyError,
    RxwsError,
)
from rxws.transport._proxy import ProxyURL, proxy_error

__all__ = ["retry_after_seconds", "translate_open_error"]


def translate_open_error(exc: BaseException, url: str, proxy: ProxyURL | None = None) -> RxwsError:
    """The rxws error for a failure to open ``url`` (through ``proxy``, if given), with any secret
    (see :mod:`rxws._redact`) masked in its message."""
    failure = _proxy_failure(exc, url, proxy) if proxy is not None else None
    error = failure if failure is not None else _translate(exc, url)
    text = str(error)
    if _redact.redact(text) != text:
        error.args = tuple(_redact.redact(a) if isinstance(a, str) else a for a in error.args)
    return error


def retry_after_seconds(raw: str | None) -> float | None:
    """A refused handshake's ``Retry-After`` header in seconds; ``None`` when absent or not a number
    (an HTTP date is not read)."""
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _proxy_failure(exc: BaseException, url: str, proxy: ProxyURL) -> ProxyError | None:
    """The proxy's failure behind ``exc``, or ``None`` when the proxy is not to blame."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "wss" else 80)
    where = f"proxy {proxy.redacted} (tunnel to {host}:{port})"
    if isinstance(exc, InvalidProxyStatus):
        status, phrase = exc.response.status_code, exc.response.reason_phrase
        if status == 407:
            return ProxyAuthFailed(
                f"{where} refused the credentials: HTTP {status} {phrase}".rstrip(), status
            )
        return ProxyError(f"{where} refused the tunnel: HTTP {status} {phrase}".rstrip(), status)
    if isinstance(exc, InvalidProxyMessage):
        return ProxyError(f"{where}: closed the connection or gave no valid answer to CONNECT")
    if isinstance(exc, WsProxyError):  # the SOCKS path: python-socks' error is the cause
        return proxy_error(exc.__cause__ or exc, proxy, host, port)
    if type(exc).__module__.startswith("python_socks"):
        return proxy_error(exc, proxy, host, port)
    if isinstance(exc, ConnectionRefusedError):  # refusals past the proxy come back as its answer
        return ProxyError(f"cannot reach {where}: {exc.strerror or exc}")
    return None


def _translate(exc: BaseException, url: str) -> RxwsError:
    if isinstance(exc, RxwsError):
        return exc
    if isinstance(exc, InvalidURI):
        return InvalidURL(f"invalid URL {url!r}: {exc}")
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body = response.body.decode(errors="replace")[:200] if response.body else ""
        return HandshakeRejected(
            response.status_code, retry_after_seconds(response.headers.get("Retry-After")), body
        )
    if isinstance(exc, InvalidHandshake):
        return ConnectFailed(f"handshake with {url} failed: {exc}")
    if isinstance(exc, TimeoutError):
        return ConnectFailed(f"timed out opening {url}")
    if isinstance(exc, _ssl.SSLError):
        return ConnectFailed(f"TLS error opening {url}: {exc}")
    if isinstance(exc, OSError):
        return ConnectFailed(f"cannot connect to {url}: {exc.strerror or exc}")
    if isinstance(exc, WebSocketException):
        return ConnectFailed(f"cannot connect to {url}: {exc}")
    return ConnectFailed(f"cannot connect to {url}: {type(exc).__name__}: {exc}")
