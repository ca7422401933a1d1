"""The fast transport, on ``picows`` (extra ``fast``): ``WebSocketClient(url, transport=PicowsTransport())``.

The same :class:`~rxws.transport.base.Link` contract as the native transport, checked by the same
conformance suite (``tests/transport/conformance``):

* Inbound messages are delivered synchronously from picows' ``on_ws_frame`` callback, no reader
  task and no queue: a text frame as ``str`` (text that is not valid UTF-8 as ``bytes``, so the
  protocol's decoder reports it and the stream goes on, as on the native transport), a binary
  frame as ``bytes``; fragmented messages are reassembled here. ``max_size`` bounds a frame
  (picows checks the header) and a reassembled message (checked here): over it the link is
  failed with close code 1009 and :class:`~rxws.exceptions.MessageTooBig`.
* Pings are answered here (picows' automatic pong is off) so ``on_control_sent("pong")`` is told;
  ``Link.ping(on_pong)`` sends a numbered ping and calls ``on_pong`` at its pong (a pong answers
  every earlier ping too). ``LinkOptions.ping_interval``/``ping_timeout`` run a keepalive on the
  loop's timers: no pong in time fails the link with :class:`~rxws.exceptions.HeartbeatTimeout`.
* Writes go straight to the socket (picows tries ``send(2)`` first). The OS transport's write
  buffer limits are set to ``write_high_water`` (low water a quarter of it): a ``send`` that takes
  the buffer above the mark returns ``False``; the transport's ``resume_writing`` then reports
  ``on_drain``. A ``send`` while not writable is appended to that same buffer, in order.
* TLS is verified by default (``ssl.create_default_context()`` for ``wss://``); ``LinkOptions.ssl``
  may give another context. Handshake refusals become
  :class:`~rxws.exceptions.HandshakeRejected`; other failures go through the native transport's
  :func:`~rxws.transport.websockets.translate_open_error`, so both transports report alike.
* picows' own log records go to the ``rxws.transport.picows`` logger, whose records are redacted
  like every ``rxws`` logger's (picows logs the upgrade request at its debug level).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as _ssl
import sys
from collections.abc import Callable, Mapping
from typing import Any

from picows import WSCloseCode, WSHandshakeError, WSInvalidURL, WSMsgType, WSTransport, ws_connect
from reactivex import Observable, abc
from reactivex.subject import AsyncSubject

from rxws import _redact
from rxws.exceptions import (
    ConnectFailed,
    ConnectionLost,
    HandshakeRejected,
    HeartbeatTimeout,
    InvalidURL,
    MessageTooBig,
    NotConnected,
    ProtocolError,
    RxwsError,
    TransportError,
    UsageError,
)
from rxws.transport._picows_listener import Inbound, Opening, _Listener, close_code, reason_bytes
from rxws.transport._proxy import ProxyURL, check_proxy_url, open_proxied_socket
from rxws.transport._ws_errors import retry_after_seconds, translate_open_error
from rxws.transport.base import Frame, Link, LinkOptions, Transport, open_on_loop

__all__ = ["PicowsLink", "PicowsTransport"]

log = logging.getLogger("rxws.transport.picows")

_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY


class PicowsTransport(Transport):
    """Opens links with ``picows`` (>= 1.8; the ``fast`` extra), TLS verified by default.

    Args:
        proxy: a forward proxy for every link: ``http://[user:pw@]host:port`` (HTTP ``CONNECT``),
            ``socks5://[user:pw@]host:port`` or ``socks5h://...`` (SOCKS5, python-socks from the
            ``proxy`` extra); the tunnel is opened by
            :func:`rxws.transport._proxy.open_proxied_socket` and TLS, if any, runs inside it.
            ``None`` (the default): connect directly. The credentials are secrets: masked in
            this object's ``repr``, in errors and in logs.

    Raises:
        InvalidURL: ``proxy`` is not a usable proxy URL.
    """

    def __init__(self, *, proxy: str | None = None) -> None:
        self._proxy: ProxyURL | None = check_proxy_url(proxy) if proxy is not None else None

    @property
    def proxy(self) -> str | None:
        """The proxy's URL with its credentials masked (``None``: direct connections)."""
        return None if self._proxy is None else self._proxy.redacted

    def __repr__(self) -> str:
        return f"PicowsTransport(proxy={self.proxy!r})"

    def open(self, url: str, options: LinkOptions, scheduler: abc.SchedulerBase) -> Observable[Link]:
        proxy = self._proxy
        return open_on_loop(url, lambda loop: _open(url, options, proxy, loop))


async def _open(
    url: str, options: LinkOptions, proxy: ProxyURL | None, loop: asyncio.AbstractEventLoop
) -> PicowsLink:
    _redact.install()
    headers = dict(options.headers)
    if options.subprotocols:
        headers["Sec-WebSocket-Protocol"] = ", ".join(options.subprotocols)
    ssl_context: _ssl.SSLContext | None = None
    if url.startswith("wss:"):
        if options.ssl is None or options.ssl is True:
            ssl_context = _ssl.create_default_context()
        elif isinstance(options.ssl, _ssl.SSLContext):
            ssl_context = options.ssl
        else:
            raise UsageError(f"ssl must be an ssl.SSLContext or None, got {options.ssl!r}")
    kwargs: dict[str, Any] = {}
    if proxy is not None:
        kwargs["socket_factory"] = _proxy_factory(proxy, options.open_timeout)
    max_size = options.max_size if options.max_size is not None else sys.maxsize
    opening = Opening()
    try:
        async with asyncio.timeout(options.open_timeout):
            transport, listener = await opening.watch(
                ws_connect(
                    lambda: _Listener(max_size, opening),
                    url,
                    ssl_context=ssl_context,
                    websocket_handshake_timeout=options.open_timeout,
                    enable_auto_pong=False,  # answered in _Listener, so on_control_sent is told
                    disconnect_on_exception=False,
                    max_frame_size=max_size,
                    extra_headers=headers or None,
                    logger_name=logging.LoggerAdapter(log, {}),
                    **kwargs,
                )
            )
    except Exception as exc:
        raise _translate(exc, url, proxy) from exc
    assert isinstance(listener, _Listener)
    chosen = transport.response.headers.get("Sec-WebSocket-Protocol")
    if chosen is not None and chosen not in options.subprotocols:
        transport.disconnect(graceful=False)
        raise ConnectFailed(
            f"handshake with {url} failed: the server chose subprotocol {chosen!r}, not offered"
        )
    return PicowsLink(transport, listener, options, loop, chosen)


def _proxy_factory(proxy: ProxyURL, timeout: float | None) -> Callable[[Any], Any]:
    """picows' ``socket_factory``: the tunnel to the (possibly redirected) target's host and port."""

    async def factory(parsed: Any) -> socket.socket:
        return await open_proxied_socket(proxy.to_url(), parsed.host, parsed.port, timeout=timeout or 10.0)

    return factory


def _translate(exc: BaseException, url: str, proxy: ProxyURL | None) -> RxwsError:
    if isinstance(exc, WSHandshakeError) and exc.response is not None and int(exc.response.status) != 101:
        response = exc.response
        body = bytes(response.body or exc.raw_body or b"").decode(errors="replace")[:200]
        exc = HandshakeRejected(
            int(response.status), retry_after_seconds(response.headers.get("Retry-After")), body
        )
    elif isinstance(exc, WSInvalidURL):
        exc = InvalidURL(f"invalid URL {url!r}: {exc}")
    elif isinstance(exc, WSHandshakeError):
        exc = ConnectFailed(f"handshake with {url} failed: {exc}")
    return translate_open_error(exc, url, proxy)


class PicowsLink(Link):
    """A link over one picows connection (made by :class:`PicowsTransport`)."""

    def __init__(
        self,
        transport: WSTransport,
        listener: _Listener,
        options: LinkOptions,
        loop: asyncio.AbstractEventLoop,
        subprotocol: str | None = None,
    ) -> None:
        self._ws = transport
        self._listener = listener
        self._loop = loop
        self._options = options
        self.subprotocol = subprotocol
        """The subprotocol the server chose among ``LinkOptions.subprotocols`` (None: none)."""
        self._inbound = Inbound(listener)
        self._closing = False
        self._ended = False
        self._end_error: TransportError | None = None
        self._closed: AsyncSubject[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._owe_drain = False
        self._pongs: dict[bytes, Callable[[], None]] = {}
        self._ping_seq = 0
        self._ka_timer: asyncio.TimerHandle | None = None
        self._ka_deadline: asyncio.TimerHandle | None = None
        underlying = transport.underlying_transport
        high = options.write_high_water
        underlying.set_write_buffer_limits(high=high, low=high // 4)
        self._write = transport.send
        listener.link = self
        if listener.disconnected:  # gone before ws_connect returned
            self._end()
        elif options.ping_interval is not None:
            self._ka_timer = loop.call_later(options.ping_interval, self._keepalive)

    @property
    def response_headers(self) -> Mapping[str, str]:
        """The handshake response's headers (the last value of a repeated one)."""
        response = getattr(self._ws, "response", None)
        return {} if response is None else {str(k): str(v) for k, v in response.headers.items()}

    @property
    def inbound(self) -> Observable[Frame]:
        return self._inbound

    @property
    def connection(self) -> WSTransport:
        """The underlying ``picows`` transport (for diagnostics)."""
        return self._ws

    # Writing -------------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        return not self._listener.paused

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the socket (the OS transport's buffer)."""
        size: int = self._ws.underlying_transport.get_write_buffer_size()
        return size

    @property
    def backlog(self) -> int:
        """Frames held by the link itself: always 0 (frames past the mark wait in the OS transport's
        buffer, in order; the client holds the rest)."""
        return 0

    def send(self, frame: Frame) -> bool:
        ws = self._ws
        if self._closing or self._ended or ws.is_close_frame_sent or ws.is_disconnected:
            raise NotConnected("the link is closed")
        self._write(_TEXT if isinstance(frame, str) else _BINARY, frame)
        if self._listener.paused:
            self._owe_drain = True
            return False
        return True

    def ping(self, on_pong: Callable[[], None]) -> bool:
        ws = self._ws
        if self._closing or self._ended or ws.is_close_frame_sent or ws.is_disconnected:
            raise NotConnected("the link is closed")
        self._ping_seq += 1
        payload = self._ping_seq.to_bytes(4, "big")
        self._pongs[payload] = on_pong
        ws.send_ping(payload)
        if self._listener.paused:
            self._owe_drain = True
            return False
        return True

    def _pong(self, payload: bytes) -> None:
        """A pong: it answers its ping and every earlier one (RFC 6455 5.5.3)."""
        if payload not in self._pongs:
            return  # unsolicited, or for a ping already answered
        answered = []
        for key in self._pongs:
            answered.append(key)
            if key == payload:
                break
        for key in answered:
            callback = self._pongs.pop(key)
            try:
                callback()
            except Exception:
                log.exception("on_pong raised")

    def _resumed(self) -> None:
        if self._owe_drain and not self._ended:
            self._owe_drain = False
            callback = self.on_drain
            if callback is not None:
                callback()

    # Keepalive (LinkOptions.ping_interval / ping_timeout) ----------------------------------
    def _keepalive(self) -> None:
        self._ka_timer = None
        interval, timeout = self._options.ping_interval, self._options.ping_timeout
        if self._closing or self._ended or interval is None:
            return
        try:
            self.ping(self._keepalive_pong)
        except NotConnected:
            return
        if timeout is not None and self._ka_deadline is None:  # never push back an earlier deadline
            self._ka_deadline = self._loop.call_later(timeout, self._keepalive_expired)
        self._ka_timer = self._loop.call_later(interval, self._keepalive)

    def _keepalive_pong(self) -> None:
        if self._ka_deadline is not None:
            self._ka_deadline.cancel()
            self._ka_deadline = None

    def _keepalive_expired(self) -> None:
        self._ka_deadline = None
        if self._closing or self._ended:
            return
        error = HeartbeatTimeout("no pong before the ping timeout (half-open connection)")
        self._listener.fail(self._ws, error, 1011, "keepalive ping timeout")
        self._ws.disconnect(graceful=False)  # a half-open peer reads nothing: do not wait for it

    def _stop_keepalive(self) -> None:
        for handle in (self._ka_timer, self._ka_deadline):
            if handle is not None:
                handle.cancel()
        self._ka_timer = self._ka_deadline = None

    # Closing -------------------------------------------------------------------------------
    def close(self, code: int = 1000, reason: str = "") -> Observable[None]:
        if self._closed is None:
            self._closed = AsyncSubject()
            if self._ended:
                self._complete_close()
            else:
                self._closing = True
                self._stop_keepalive()
                ws = self._ws
                if not ws.is_close_frame_sent and not ws.is_disconnected:
                    ws.send_close(WSCloseCode(code), reason_bytes(reason))
                self._close_timer = self._loop.call_later(self._options.close_timeout, self._force)
        return self._closed

    def _force(self) -> None:
        """The peer did not finish the closing handshake in time: drop the socket."""
        self._close_timer = None
        self._ws.disconnect(graceful=False)

    def abort(self) -> None:
        self._closing = True
        self._stop_keepalive()
        self._ws.disconnect(graceful=False)

    def _end(self) -> None:
        """The connection is gone: say how, once, after every message it delivered."""
        if self._ended:
            return
        self._ended = True
        self._stop_keepalive()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._pongs.clear()
        self._end_error = self._outcome(self._listener.error)
        self._complete_close()
        self._inbound.end(self._end_error)

    def _outcome(self, error: TransportError | None) -> TransportError | None:
        """Record the close code and who closed; the error to end ``inbound`` with, or None."""
        handshake = self._ws.close_handshake
        rcvd = handshake.recv if handshake is not None else None
        sent = handshake.sent if handshake is not None else None
        self.closed_by_peer = rcvd is not None and (sent is None or handshake.recv_then_sent)
        if rcvd is not None:
            self.close_code, self.close_reason = close_code(rcvd.code), rcvd.reason or ""
        else:
            self.close_code, self.close_reason = 1006, ""
        if error is not None and not self.closed_by_peer:
            return error
        if sent is not None and not self.closed_by_peer and not self._closing:
            code = sent.code.value  # picows failed the connection itself (its parser): say why
            if code == 1009:
                return MessageTooBig(f"inbound message over max_size: {sent.reason}", 1009)
            return ProtocolError(f"protocol error {code}: {sent.reason}", code)
        if rcvd is not None or self._closing:
            return None
        return ConnectionLost("connection dropped without a close frame")

    def _complete_close(self) -> None:
        closed = self._closed
        if closed is not None and not closed.is_stopped:
            closed.on_next(None)
            closed.on_completed()
