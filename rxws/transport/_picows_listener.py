"""picows' callbacks for one connection (:mod:`rxws.transport.picows`): the inbound hot path,
fragment reassembly, ping answers and the closing handshake's replies; the link's ``inbound``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxws.exceptions import MessageTooBig, ProtocolError, TransportError
from rxws.transport.base import Frame

if TYPE_CHECKING:
    from rxws.transport.picows import PicowsLink

__all__ = ["Inbound", "Opening"]

_T = TypeVar("_T")

log = logging.getLogger("rxws.transport.picows")

_TEXT, _BINARY, _CONT = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
_PING, _PONG, _CLOSE = WSMsgType.PING, WSMsgType.PONG, WSMsgType.CLOSE


def close_code(code: WSCloseCode) -> int:
    """A close code as an int; a close frame without a code is 1005, as RFC 6455 reports it."""
    value = code.value
    return 1005 if value == 0 else value


class Opening:
    """One ``ws_connect`` in progress: when the opener gives up (cancelled, timed out) the
    connection is dropped, even if its handshake completes after that (picows would keep it)."""

    def __init__(self) -> None:
        self.abandoned = False
        self.transport: WSTransport | None = None

    async def watch(self, connecting: Awaitable[_T]) -> _T:
        """Await ``connecting``; on any failure (cancellation included), abandon the connection."""
        try:
            return await connecting
        except BaseException:
            self.abandoned = True
            if self.transport is not None:
                self.transport.disconnect(False)
            raise

    def connected(self, transport: WSTransport) -> None:
        """The handshake completed (picows' ``on_ws_connected``)."""
        if self.abandoned:
            transport.disconnect(False)
        else:
            self.transport = transport


class _Listener(WSListener):
    """picows' callbacks for one connection: the inbound hot path and the protocol's details.

    Until the link's ``inbound`` has a subscriber, messages wait in ``early`` (picows may deliver
    frames that came with the upgrade response before ``ws_connect`` returns), and so does the end.
    """

    __slots__ = (  # attribute reads on the hot path are cheaper from slots (measured: ~10% of the callback)
        "disconnected",
        "early",
        "error",
        "frag",
        "frag_size",
        "frag_text",
        "gate",
        "link",
        "max_size",
        "opening",
        "paused",
        "sink",
    )

    def __init__(self, max_size: int, opening: Opening | None = None) -> None:
        super().__init__()
        self.opening = opening
        self.sink: Callable[[Frame], None] | None = None
        self.early: list[Frame] = []
        self.link: PicowsLink | None = None
        self.paused = False
        self.max_size = max_size
        self.frag: list[bytes] | None = None
        self.gate = max_size
        self.frag_text = False
        self.frag_size = 0
        self.error: TransportError | None = None
        self.disconnected = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        opening = self.opening
        if opening is not None:
            opening.connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # One comparison keeps the fast path to whole messages within max_size: ``gate`` is
        # max_size, or -1 while a fragmented message is open or after the link failed. (picows
        # checks max_size at a frame's header, but after failing the connection it may still
        # hand over that frame: the size is checked here too.)
        if not (frame.fin and frame.payload_size <= self.gate):
            self._other(transport, frame, frame.msg_type)
            return
        kind = frame.msg_type
        if kind is _TEXT:
            try:
                message: Frame = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                message = frame.get_payload_as_bytes()
        elif kind is _BINARY:
            message = frame.get_payload_as_bytes()
        else:
            self._other(transport, frame, kind)
            return
        sink = self.sink
        if sink is None:
            self.early.append(message)
            return
        try:
            sink(message)
        except Exception:  # a bug above must not stop the rest of the buffer's frames
            log.exception("inbound message handler raised; message skipped")

    def _other(self, transport: WSTransport, frame: WSFrame, kind: WSMsgType) -> None:
        if self.error is not None:  # failed by us: nothing more is delivered or answered
            return
        if kind is _CONT or kind is _TEXT or kind is _BINARY:
            self._fragment(transport, frame, kind)
        elif kind is _PING:
            transport.send_pong(frame.get_payload_as_bytes())
            link = self.link
            if link is not None and link.on_control_sent is not None:
                link.on_control_sent("pong")
        elif kind is _PONG:
            if self.link is not None:
                self.link._pong(frame.get_payload_as_bytes())
        elif kind is _CLOSE:
            if not transport.is_close_frame_sent:  # the peer started it: answer with its code
                code = frame.get_close_code()
                if code.value == 0:
                    transport.send(_CLOSE, b"")
                else:
                    transport.send_close(code, frame.get_close_message())
            transport.disconnect()

    def _fragment(self, transport: WSTransport, frame: WSFrame, kind: WSMsgType) -> None:
        if kind is _CONT:
            if self.frag is None:
                self.fail(transport, ProtocolError("continuation frame without a message", 1002), 1002)
                return
        elif self.frag is not None:
            self.fail(transport, ProtocolError("new message before the fragmented one ended", 1002), 1002)
            return
        else:
            self.frag, self.frag_text, self.frag_size = [], kind is _TEXT, 0
            self.gate = -1
        self.frag_size += frame.payload_size
        if self.frag_size > self.max_size:
            error = MessageTooBig(f"inbound message over max_size: {self.frag_size} > {self.max_size}", 1009)
            self.fail(transport, error, 1009)
            return
        self.frag.append(frame.get_payload_as_bytes())
        if not frame.fin:
            return
        data, self.frag, self.gate = b"".join(self.frag), None, self.max_size
        message: Frame = data
        if self.frag_text:
            try:
                message = data.decode()
            except UnicodeDecodeError:
                message = data
        sink = self.sink
        if sink is None:
            self.early.append(message)
            return
        try:
            sink(message)
        except Exception:
            log.exception("inbound message handler raised; message skipped")

    def fail(self, transport: WSTransport, error: TransportError, code: int, reason: str = "") -> None:
        """End the connection ourselves because of ``error``: a close frame, then the socket."""
        if self.error is None:
            self.error = error
        self.frag, self.gate = [], -1  # every later frame takes the slow path, which drops it
        transport.send_close(WSCloseCode(code), reason_bytes(reason or str(error)))
        transport.disconnect()
        asyncio.get_running_loop().call_later(ABORT_AFTER, transport.disconnect, False)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.link is not None:
            self.link._resumed()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected = True
        if self.link is not None:
            self.link._end()


ABORT_AFTER = 1.0  # seconds a failed connection may take to flush its close frame


def reason_bytes(reason: str) -> bytes:
    """A close reason as UTF-8, cut to the 123 bytes a close frame holds (on a character boundary)."""
    data = reason.encode()
    if len(data) <= 123:
        return data
    return data[:123].decode(errors="ignore").encode()


_Tap = tuple[Callable[[Frame], None], Callable[[Exception], None], Callable[[], None]]


class Inbound(Observable[Frame]):
    """A link's ``inbound``: the listener hands each message straight to the subscriber's
    ``on_next`` function (no subject, no observer wrapper: the client's one subscription is the
    hot path). Several subscribers each get every message, isolated from each other.

    The first subscriber gets the messages that arrived before it, then the end if it came
    already; a later one gets only what comes after it (and the end). Without subscribers,
    messages are dropped once there has been one (nothing piles up).
    """

    def __init__(self, listener: _Listener) -> None:
        super().__init__()
        self._listener = listener
        self._taps: tuple[_Tap, ...] = ()
        self._subscribed = False
        self._end: tuple[Exception | None] | None = None  # (error or None) once the link ended
        self._reported = False

    def subscribe(
        self,
        on_next: abc.ObserverBase[Frame] | Callable[[Frame], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        """Subscribe an observer, or ``on_next``/``on_error``/``on_completed`` functions."""
        if isinstance(on_next, abc.ObserverBase):
            tap: _Tap = (on_next.on_next, on_next.on_error, on_next.on_completed)
        else:
            tap = (on_next or _ignore, on_error or _unhandled, on_completed or _nothing)
        if self._reported:  # ended: like a stopped subject, say how at once
            self._tell_end(tap)
            return Disposable()
        self._taps = (*self._taps, tap)
        listener = self._listener
        if not self._subscribed:
            self._subscribed = True
            early, listener.early = listener.early, []
            for message in early:
                self._deliver(tap, message)
        self._rewire()
        if self._end is not None:
            self._report()
        return Disposable(lambda: self._remove(tap))

    def end(self, error: Exception | None) -> None:
        """The link ended (``error`` None: with a close frame); reported once there is a subscriber."""
        if self._end is None:
            self._end = (error,)
            if self._subscribed:
                self._report()

    def _report(self) -> None:
        if self._reported or self._end is None:
            return
        self._reported = True
        self._listener.sink = _ignore
        taps, self._taps = self._taps, ()
        for tap in taps:
            self._tell_end(tap)

    def _tell_end(self, tap: _Tap) -> None:
        assert self._end is not None
        error = self._end[0]
        try:
            tap[2]() if error is None else tap[1](error)
        except Exception:
            log.exception("inbound observer raised at the end of the link")

    def _remove(self, tap: _Tap) -> None:
        taps = list(self._taps)
        if tap in taps:
            taps.remove(tap)
            self._taps = tuple(taps)
            self._rewire()

    def _rewire(self) -> None:
        taps = self._taps
        if self._reported:
            return
        if len(taps) == 1:
            self._listener.sink = taps[0][0]
        elif taps:
            self._listener.sink = self._fan_out
        else:
            self._listener.sink = _ignore

    def _fan_out(self, message: Frame) -> None:
        for tap in self._taps:
            self._deliver(tap, message)

    @staticmethod
    def _deliver(tap: _Tap, message: Frame) -> None:
        try:
            tap[0](message)
        except Exception:
            log.exception("inbound message handler raised; message skipped")


def _ignore(_message: Frame) -> None:
    pass


def _nothing() -> None:
    pass


def _unhandled(error: Exception) -> None:
    log.warning("link ended with %r and its subscriber has no on_error", error)
