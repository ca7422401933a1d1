"""Forward proxies for transports: parse and check a proxy URL, open a tunnel, translate failures.

Two kinds of proxy, each with optional credentials in the URL's user information:

* ``http://user:pw@host:port`` — an HTTP proxy, tunnel opened with ``CONNECT host:port``
  (RFC 9110 section 9.3.6) and ``Proxy-Authorization: Basic`` (RFC 7617);
* ``socks5://user:pw@host:port`` — a SOCKS5 proxy (RFC 1928) with username/password
  authentication (RFC 1929); the target's name is resolved here. ``socks5h://`` lets the proxy
  resolve it instead.

:func:`open_proxied_socket` opens the tunnel with python-socks (the ``proxy`` extra) and returns
the connected socket, ready for ``loop.create_connection(sock=...)`` (TLS, if any, runs inside
the tunnel). Every failure becomes a :class:`~rxws.exceptions.ProxyError` (or
:class:`~rxws.exceptions.ProxyAuthFailed`) whose message carries the proxy's own answer (HTTP
status, SOCKS5 reply code) and names the proxy by scheme, host and port only. The credentials
are secrets: :func:`check_proxy_url` registers them with :mod:`rxws._redact`, so logs, reprs and
error messages show ``socks5://***@host:port``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from rxws import _redact
from rxws.exceptions import InvalidURL, ProxyAuthFailed, ProxyError

__all__ = [
    "ProxyURL",
    "check_proxy_url",
    "open_proxied_socket",
    "proxy_error",
    "redact_proxy_url",
    "set_nodelay",
]

_DEFAULT_PORTS = {"http": 80, "socks5": 1080, "socks5h": 1080}


@dataclass(frozen=True, slots=True, repr=False)
class ProxyURL:
    """A checked proxy URL, split into its parts (credentials decoded, ``None`` when absent)."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def redacted(self) -> str:
        """The URL with any credentials masked: ``socks5://***@127.0.0.1:1080``."""
        auth = f"{_redact.MASK}@" if self.username is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}"

    def to_url(self) -> str:
        """The normalised URL *with* its credentials (explicit port; a secret: never log it)."""
        auth = ""
        if self.username is not None and self.password is not None:
            auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}"

    def __repr__(self) -> str:
        return f"ProxyURL({self.redacted!r})"


def check_proxy_url(url: str) -> ProxyURL:
    """Check that ``url`` is an ``http://``, ``socks5://`` or ``socks5h://`` proxy URL with a host
    and no path; register its credentials as secrets; return its parts.

    Raises:
        InvalidURL: with a message saying what is wrong (the credentials masked).
    """
    if not isinstance(url, str) or not url:
        raise InvalidURL(f"expected a proxy URL (http://, socks5:// or socks5h://), got {url!r}")
    shown = _redact.redact(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid proxy URL {shown!r}: {_redact.redact(str(exc))}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(
            f"invalid proxy URL {shown!r}: scheme {parts.scheme!r}; expected http, socks5 or socks5h"
        )
    if not parts.hostname:
        raise InvalidURL(f"invalid proxy URL {shown!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidURL(f"invalid proxy URL {shown!r}: a proxy URL has no path, query or fragment")
    if port == 0:
        raise InvalidURL(f"invalid proxy URL {shown!r}: port 0")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        raise InvalidURL(f"invalid proxy URL {shown!r}: a user name without a password")
    if username is not None and password is not None:
        _register(scheme, username, password)
    return ProxyURL(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], username, password)


def _register(scheme: str, username: str, password: str) -> None:
    if scheme == "socks5" or scheme == "socks5h":
        for name, value in (("username", username), ("password", password)):
            if len(value.encode()) > 255:  # RFC 1929: one length byte each
                raise InvalidURL(f"the SOCKS5 proxy's {name} is over 255 bytes")
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    secrets = {
        "Proxy-Authorization": f"Basic {token}",
        "proxy-username": username,
        "proxy-password": password,
    }
    _redact.register_secrets(secrets, tuple(secrets))


def redact_proxy_url(url: str) -> str:
    """``url`` with its credentials masked (for reprs and messages); works on invalid URLs too."""
    return _redact.redact(url)


async def open_proxied_socket(proxy_url: str, host: str, port: int, *, timeout: float) -> socket.socket:
    """Open a TCP tunnel to ``host:port`` through the proxy at ``proxy_url``.

    Args:
        proxy_url: ``http://[user:pw@]host:port``, ``socks5://...`` or ``socks5h://...``.
        host: the target's host name or address (as the WebSocket URL gives it).
        port: the target's port.
        timeout: seconds for reaching the proxy and its whole handshake.

    Returns:
        The connected socket (non-blocking, ``TCP_NODELAY`` set); the caller owns it from now on.

    Raises:
        InvalidURL: ``proxy_url`` is not a usable proxy URL.
        ProxyAuthFailed: the proxy refused the credentials.
        ProxyError: the proxy was unreachable, refused the tunnel (its status or reply code in
            the message and in ``code``), timed out, or closed the connection mid-handshake.
    """
    proxy = check_proxy_url(proxy_url)
    try:
        from python_socks import ProxyType
        from python_socks.async_.asyncio import Proxy
    except ImportError as exc:  # pragma: no cover - the extra is declared, so rarely missing
        raise ProxyError("connecting through a proxy needs python-socks: pip install 'rxws[proxy]'") from exc
    kind = ProxyType.HTTP if proxy.scheme == "http" else ProxyType.SOCKS5
    client = Proxy(
        kind,
        proxy.host,
        proxy.port,
        proxy.username,
        proxy.password,
        rdns=proxy.scheme == "socks5h",
        loop=asyncio.get_running_loop(),
    )
    try:
        sock = await client.connect(host, port, timeout=timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise proxy_error(exc, proxy, host, port) from exc
    set_nodelay(sock)
    return sock


def set_nodelay(sock: socket.socket | None) -> None:
    """Turn Nagle's algorithm off on a TCP socket (no-op for anything else).

    asyncio does it for the sockets it opens, but only for those created with
    ``proto=IPPROTO_TCP``; python-socks creates its sockets with ``proto=0``, so a tunnel through
    a SOCKS proxy kept Nagle on: a small frame written while an earlier one is unacknowledged then
    waits for the peer's delayed ACK (up to 40 ms on Linux) before it leaves.
    """
    if (
        sock is None
        or sock.family not in (socket.AF_INET, socket.AF_INET6)
        or sock.type != socket.SOCK_STREAM
    ):
        return
    with contextlib.suppress(OSError):  # a socket closed meanwhile: the open fails anyway
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def proxy_error(exc: BaseException, proxy: ProxyURL, host: str, port: int) -> ProxyError:
    """The rxws error for a failure to tunnel to ``host:port`` through ``proxy``.

    Understands python-socks' errors (and anything else, as a plain :class:`ProxyError`). The
    message names the proxy as :attr:`ProxyURL.redacted` does and carries the proxy's answer.
    """
    where = f"proxy {proxy.redacted} (tunnel to {host}:{port})"
    if isinstance(exc, ProxyError):
        return exc
    if isinstance(exc, TimeoutError):  # python-socks' ProxyTimeoutError is one
        return ProxyError(f"{where}: timed out")
    try:
        from python_socks import ProxyConnectionError
        from python_socks import ProxyError as SocksError
    except ImportError:  # pragma: no cover - without the extra, no python-socks error to read
        pass
    else:
        if isinstance(exc, ProxyConnectionError):
            return ProxyError(f"cannot reach {where}: {exc.strerror or exc}")
        if isinstance(exc, SocksError):
            return _answer_error(where, proxy.scheme == "http", str(exc), exc.error_code)
    if isinstance(exc, OSError):
        return ProxyError(f"{where}: connection failed: {exc.strerror or exc}")
    return ProxyError(f"{where}: {type(exc).__name__}: {_redact.redact(str(exc))}")


_SOCKS_AUTH_WORDS = ("authentication", "acceptable")


def _answer_error(where: str, http: bool, text: str, code: int | None) -> ProxyError:
    """The error for a proxy's refusal or broken answer (``code``: HTTP status / SOCKS5 reply)."""
    text = _redact.redact(text)
    if http:
        if code is None:
            return ProxyError(f"{where}: closed the connection or gave no valid answer to CONNECT ({text})")
        if code == 407:
            return ProxyAuthFailed(f"{where} refused the credentials: HTTP {text}", code)
        return ProxyError(f"{where} refused the tunnel: HTTP {text}", code)
    if code is not None:
        return ProxyError(f"{where} refused the tunnel: SOCKS5 reply 0x{code:02X} ({text})", code)
    if any(word in text.lower() for word in _SOCKS_AUTH_WORDS):
        return ProxyAuthFailed(f"{where} refused the credentials: {text}")
    return ProxyError(f"{where}: broke off its SOCKS5 handshake ({text or 'connection closed'})")
