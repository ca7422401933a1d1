"""The native transport, on ``websockets.asyncio.client``.

Every ``websockets`` exception is translated at this boundary into the rxws tree
(:mod:`rxws.exceptions`) with ``raise ... from``.

No task per message, either way. Inbound data frames are delivered synchronously from the
protocol's ``data_received`` callback, through ``create_connection`` — the documented extension
point of ``connect()`` — with a connection subclass that hands complete messages to the link
instead of queueing them for ``recv()``; control frames (ping, pong, close) are processed by
``websockets`` as usual. Sends are written synchronously; a write that takes the OS transport's
buffer above ``LinkOptions.write_high_water`` returns ``False`` and starts the one drain task,
which reports ``on_drain`` when the buffer is back below its low-water mark (a quarter of the
high one). The client holds its frames meanwhile, so nothing piles up here (see
:class:`~rxws.transport.base.Link`).

Proxies (``WebsocketsTransport(proxy=...)``) go through ``websockets``' own ``proxy=`` support:
HTTP ``CONNECT`` with its own client, SOCKS5 with python-socks (the ``proxy`` extra), the whole
proxy handshake inside ``open_timeout``; the URL is checked, and its credentials registered as
secrets, by :mod:`rxws.transport._proxy`, which also turns every proxy failure into a
:class:`~rxws.exceptions.ProxyError`. Without ``proxy=`` the connection is direct: the
environment's ``HTTPS_PROXY``/``ALL_PROXY`` are *not* read (``websockets`` reads them by default).
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
import types
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.observer.autodetachobserver import AutoDetachObserver
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
)
from websockets.protocol import State

from rxws import _redact
from rxws._subject import FastSubject
from rxws.exceptions import (
    ConnectionLost,
    HeartbeatTimeout,
    MessageTooBig,
    NotConnected,
    ProtocolError,
    TransportError,
    UsageError,
)
from rxws.transport._proxy import ProxyURL, check_proxy_url, set_nodelay
from rxws.transport._ws_connection import _client_frame, _DirectConnection, _observer_failed
from rxws.transport._ws_errors import translate_open_error
from rxws.transport.base import Frame, Link, LinkOptions, Transport, open_on_loop

__all__ = ["WebsocketsLink", "WebsocketsTransport", "translate_open_error"]

log = logging.getLogger("rxws.transport")


class WebsocketsTransport(Transport):
    """Opens links with ``websockets`` (>= 14, the asyncio API), TLS verified by default.

    Args:
        proxy: a forward proxy for every link: ``http://[user:pw@]host:port`` (HTTP ``CONNECT``),
            ``socks5://[user:pw@]host:port`` or ``socks5h://...`` (SOCKS5; python-socks, the
            ``proxy`` extra). ``None`` (the default): connect directly, whatever the
            environment's proxy variables say. The credentials are secrets: masked in this
            object's ``repr``, in logs and in error messages.
        compression: ``None`` (the default) or ``"deflate"`` to offer permessage-deflate
            (RFC 7692; used only if the venue accepts it). Off by default for throughput: market
            data is many small frames, and inflating each one costs CPU on the hot path. Measured
            on loopback (200,000 JSON frames of ~108 bytes from a ``websockets`` server in another
            process, three runs, a loaded 2-core machine): the link's CPU went from 5.1-6.4 to
            7.0-8.6 microseconds per message (about +35%) and the rate fell to about half
            (the server compresses too). Deflate with context takeover shrinks such frames about
            7x on the wire, so turn it on for a slow or metered link, or a venue that sends large
            snapshots.

    Raises:
        InvalidURL: ``proxy`` is not a usable proxy URL.
        UsageError: ``compression`` is neither ``None`` nor ``"deflate"``.
    """

    def __init__(self, *, proxy: str | None = None, compression: str | None = None) -> None:
        if compression not in (None, "deflate"):
            raise UsageError(f"compression must be None or 'deflate', got {compression!r}")
        self._proxy: ProxyURL | None = check_proxy_url(proxy) if proxy is not None else None
        self.compression = compression

    @property
    def proxy(self) -> str | None:
        """The proxy's URL with its credentials masked (``None``: direct connections)."""
        return None if self._proxy is None else self._proxy.redacted

    def __repr__(self) -> str:
        return f"WebsocketsTransport(proxy={self.proxy!r}, compression={self.compression!r})"

    def open(self, url: str, options: LinkOptions, scheduler: abc.SchedulerBase) -> Observable[Link]:
        return open_on_loop(url, lambda loop: _open(url, options, loop, self._proxy, self.compression))


async def _open(
    url: str,
    options: LinkOptions,
    loop: asyncio.AbstractEventLoop,
    proxy: ProxyURL | None = None,
    compression: str | None = None,
) -> WebsocketsLink:
    _redact.install()
    kwargs: dict[str, Any] = {
        "additional_headers": dict(options.headers) or None,
        "max_size": options.max_size,
        "ping_interval": options.ping_interval,
        "ping_timeout": options.ping_timeout,
        "open_timeout": options.open_timeout,
        "close_timeout": options.close_timeout,
        "compression": compression,
        "write_limit": options.write_high_water,
        "proxy": None if proxy is None else proxy.to_url(),
    }
    if options.subprotocols:
        kwargs["subprotocols"] = list(options.subprotocols)
    if url.startswith("wss:"):
        kwargs["ssl"] = options.ssl if options.ssl is not None else _ssl.create_default_context()
    try:
        ws = await connect(url, create_connection=_DirectConnection, **kwargs)
    except Exception as exc:
        raise translate_open_error(exc, url, proxy) from exc
    assert isinstance(ws, _DirectConnection)
    if ws.transport is not None:
        set_nodelay(ws.transport.get_extra_info("socket"))
    return WebsocketsLink(ws, loop)


_OPEN = State.OPEN


@types.coroutine
def _finish_value(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Drive an already-started coroutine to its end from inside a task; return its value."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def _on_done(waiter: Any, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the pong future ``waiter`` succeeds."""

    def done(fut: Any) -> None:
        if not fut.cancelled() and fut.exception() is None:
            callback()

    waiter.add_done_callback(done)


class WebsocketsLink(Link):
    """A link over one ``websockets`` client connection."""

    def __init__(self, ws: _DirectConnection, loop: asyncio.AbstractEventLoop) -> None:
        self._ws = ws
        self._loop = loop
        self._subject: FastSubject[Frame] = FastSubject(_observer_failed)
        self._backlog: deque[Frame] = deque()
        self._blocked = False
        self._drain_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._closing = False
        self._send_error: BaseException | None = None
        self._ended = False
        self._watcher = loop.create_task(self._watch())

    @property
    def response_headers(self) -> Mapping[str, str]:
        """The handshake response's headers (the last value of a repeated one)."""
        response = self._ws.response
        return {} if response is None else dict(response.headers.raw_items())

    @property
    def inbound(self) -> Observable[Frame]:
        def subscribe(observer: abc.ObserverBase[Frame], scheduler: abc.SchedulerBase | None = None) -> Any:
            # Straight onto the subject: ``subscribe`` would wrap ``observer`` (already wrapped
            # by this Observable) in a second auto-detaching observer, a call more per frame.
            disposable = self._subject._subscribe_core(observer, scheduler)
            ws = self._ws
            if ws.sink is None:  # the first subscriber gets what arrived before it, then the rest
                early, ws.early = ws.early, []
                for frame in early:
                    self._subject.on_next(frame)
            self._set_sink()

            def dispose() -> None:
                disposable.dispose()
                self._set_sink()

            return Disposable(dispose)

        return Observable(subscribe)

    def _set_sink(self) -> None:
        """Point the connection's sink at the observers of :attr:`inbound` (none once ended).

        With one observer, the usual case (the session's ``on_frame``), the sink is that
        observer's own function: two calls less per frame than through the subject and the
        observer's wrapper. It is set again at every (un)subscribe, so a disposed observer gets
        nothing more, as through the wrapper; a frame the function raises on is logged as the
        subject would (:func:`_observer_failed`), the next frames still come.
        """
        if self._ended:
            return
        observers = self._subject._observers
        if len(observers) == 1 and type(observers[0]) is AutoDetachObserver:
            self._ws.sink = observers[0]._on_next
        elif observers or self._ws.sink is not None:  # with none left, frames go nowhere, as before
            self._ws.sink = self._subject.on_next

    @property
    def connection(self) -> ClientConnection:
        """The underlying ``websockets`` connection (for diagnostics)."""
        return self._ws

    # Reading -------------------------------------------------------------------------------
    async def _watch(self) -> None:
        """Wait for the connection to end (messages arrive synchronously meanwhile), then report."""
        ws = self._ws
        error: TransportError | None
        try:
            await ws.wait_closed()
            error = self._closed_error(ws.protocol.close_exc)
        except asyncio.CancelledError:
            error = ConnectionLost("link watcher cancelled")
        except Exception as exc:  # the transport broke in a way websockets did not wrap
            error = ConnectionLost(f"{type(exc).__name__}: {exc}")
        self._ended = True
        ws.sink = None
        self.close_code = ws.close_code
        self.close_reason = ws.close_reason or ""
        if error is None:
            self._subject.on_completed()
        else:
            self._subject.on_error(error)

    def _closed_error(self, exc: ConnectionClosed) -> TransportError | None:
        rcvd, sent = exc.rcvd, exc.sent
        self.closed_by_peer = bool(rcvd is not None and (sent is None or exc.rcvd_then_sent))
        if sent is not None and not self.closed_by_peer and not self._closing:
            # We failed the connection ourselves: say why.
            if sent.code == 1009:
                return MessageTooBig(f"inbound message over max_size: {sent.reason}")
            if sent.code == 1011 and "keepalive" in sent.reason:
                return HeartbeatTimeout("no pong before the ping timeout (half-open connection)")
            if sent.code in (1002, 1007):
                return ProtocolError(f"protocol error {sent.code}: {sent.reason}", sent.code)
        if rcvd is not None or self._closing:
            return None
        cause = exc.__cause__ or getattr(self._ws, "_rxws_lost", None)
        if cause is not None:
            return ConnectionLost(f"connection lost: {cause}")
        return ConnectionLost("connection dropped without a close frame")

    # Writing -------------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        return not self._blocked

    def send(self, frame: Frame) -> bool:
        if self._closing or self._send_error is not None or self._ended:
            raise NotConnected("the link is closed")
        if self._blocked:  # the caller did not wait for on_drain: keep the frame, in order
            self._backlog.append(frame)
            return False
        ws = self._ws
        if ws.protocol.state is not _OPEN or ws.send_in_progress is not None:
            return self._send_slow(frame)  # closing (raises NotConnected) or mid-fragment: rare
        # The fast path: what ``ws.send`` does for one unfragmented message, without the
        # coroutine and its async context manager (about 2 us per frame): frame it, write it.
        protocol = ws.protocol
        try:
            if protocol.extensions or protocol.debug or protocol.writes or protocol.expect_continuation_frame:
                if isinstance(frame, str):  # compression, debug logging, or writes waiting: rare
                    protocol.send_text(frame.encode())
                else:
                    protocol.send_binary(frame)
                ws.send_data()
            else:  # the usual case: the same bytes, framed here (about 1 us less per frame)
                ws.transport.write(_client_frame(frame))
        except Exception as exc:  # as websockets' send_context: an unexpected error fails the link
            ws.set_connection_exc(exc)
            transport = ws.transport
            if transport is not None:
                transport.abort()
            raise NotConnected(f"the link failed while sending: {exc!r}") from exc
        if not ws.paused and not ws.transport.is_closing():
            return True  # handed to the socket, below the high-water mark: the common case
        return self._wait_drain(ws.drain())

    def _send_slow(self, frame: Frame) -> bool:
        """``ws.send`` driven by hand: completes at once unless it has to wait for the drain."""
        return self._wait_drain(self._ws.send(frame))

    def _wait_drain(self, coro: Coroutine[Any, Any, None]) -> bool:
        """The write took the buffer above its mark: report ``False`` and wait for the drain."""
        try:
            yielded = coro.send(None)
        except StopIteration:
            return True
        except ConnectionClosed as exc:
            raise NotConnected(f"the link is closed: {exc}") from exc
        self._blocked = True
        self._drain_task = self._loop.create_task(self._drain(coro, yielded, None))
        return False

    async def _drain(
        self, coro: Coroutine[Any, Any, Any], yielded: Any, on_result: Callable[[Any], None] | None
    ) -> None:
        """Finish the write that went above the mark (and any backlog), then report the drain."""
        try:
            result = await _finish_value(coro, yielded)
            if on_result is not None:
                on_result(result)
            while self._backlog:
                await self._ws.send(self._backlog.popleft())
        except ConnectionClosed as exc:
            self._send_error = exc
            if self._backlog:
                log.warning(
                    "send failed, %d frames sent while not writable not written: %s", len(self._backlog), exc
                )
            return
        finally:
            self._drain_task = None
        transport = self._ws.transport
        if transport is None or transport.is_closing():  # drained because the socket went away
            self._send_error = ConnectionClosed(None, None)
            return
        self._blocked = False
        callback = self.on_drain
        if callback is not None:
            callback()

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the socket (the OS transport's buffer)."""
        transport = self._ws.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    @property
    def backlog(self) -> int:
        """Frames sent while not writable, waiting for the drain (0 when the caller waits)."""
        return len(self._backlog)

    @property
    def on_control_sent(self) -> Callable[[str], None] | None:
        return self._ws.on_control_sent

    @on_control_sent.setter
    def on_control_sent(self, callback: Callable[[str], None] | None) -> None:
        self._ws.on_control_sent = callback

    def ping(self, on_pong: Callable[[], None]) -> bool:
        if self._closing or self._ended:
            raise NotConnected("the link is closed")
        coro = self._ws.ping()
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            _on_done(done.value, on_pong)
            return not self._blocked
        except ConnectionClosed as exc:
            raise NotConnected(f"the link is closed: {exc}") from exc

        def sent(waiter: Any) -> None:
            _on_done(waiter, on_pong)

        if self._blocked:  # already draining: finish this ping's write on its own (rare)
            task = self._loop.create_task(_finish_value(coro, yielded))
            task.add_done_callback(lambda t: None if t.cancelled() or t.exception() else sent(t.result()))
            return False
        # The ping was written and took the transport above its mark: wait for the drain.
        self._blocked = True
        self._drain_task = self._loop.create_task(self._drain(coro, yielded, sent))
        return False

    # Closing -------------------------------------------------------------------------------
    def close(self, code: int = 1000, reason: str = "") -> Observable[None]:
        if self._close_task is None:
            self._closing = True
            self._close_task = self._loop.create_task(self._close(code, reason))
        return reactivex.from_future(self._close_task)

    async def _close(self, code: int, reason: str) -> None:
        drain = self._drain_task
        if drain is not None:
            try:
                await asyncio.wait_for(asyncio.shield(drain), self._ws.close_timeout or 5.0)
            except (TimeoutError, asyncio.CancelledError):
                drain.cancel()
        try:
            await self._ws.close(code, reason)
        except Exception as exc:
            log.debug("close: %s", exc)
        await asyncio.wait({self._watcher})

    def abort(self) -> None:
        self._closing = True
        transport = self._ws.transport
        if transport is not None:
            transport.abort()
