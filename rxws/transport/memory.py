"""An in-memory transport driven by a reactivex scheduler, for virtual-time tests.

With :class:`reactivex.testing.TestScheduler`, a whole client scenario — connect, drop, approve,
back off, reconnect, resubscribe — runs in virtual time in milliseconds of real time. The test
plays the venue through :class:`MemoryPeer`: it sees what the client sent (``peer.sent``), pushes
frames (``peer.push``), scripts them as a (marble) observable (``peer.script``), closes with a code
or drops the connection. ``peer.stop_reading()`` makes it a venue that stops reading: what the
client sends then piles up in the link up to ``LinkOptions.write_high_water`` bytes, after which
``send`` reports back-pressure exactly as the native transport does, until ``peer.resume_reading()``. A ``responder`` (e.g. :class:`rxws.testing.Responder`) can answer
automatically, as the mock venue would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable
from reactivex.subject import AsyncSubject

from rxws._subject import FastSubject
from rxws.exceptions import ConnectFailed, ConnectionLost, NotConnected, TransportError
from rxws.protocols.base import json_dumps
from rxws.transport.base import Frame, Link, LinkOptions, Transport

__all__ = ["MemoryLink", "MemoryPeer", "MemoryTransport"]


class MemoryTransport(Transport):
    """Opens :class:`MemoryLink` objects whose venue side is a :class:`MemoryPeer`.

    Args:
        latency: seconds (scheduler time) each frame takes in either direction, and to connect.
        responder: called with each new peer, to script the venue's side (e.g. a Responder).
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        responder: Callable[[MemoryPeer], None] | None = None,
    ) -> None:
        self.latency = latency
        self.responder = responder
        self.peers: list[MemoryPeer] = []
        self.attempts = 0
        self._refusals: deque[TransportError] = deque()

    @property
    def peer(self) -> MemoryPeer:
        """The venue side of the newest connection."""
        if not self.peers:
            raise LookupError("no connection has been opened yet")
        return self.peers[-1]

    def refuse(self, times: int = 1, error: TransportError | None = None) -> None:
        """Refuse the next ``times`` connection attempts with ``error`` (ConnectFailed by default)."""
        for _ in range(times):
            self._refusals.append(error or ConnectFailed("connection refused (memory transport)"))

    def open(self, url: str, options: LinkOptions, scheduler: abc.SchedulerBase) -> Observable[Link]:
        def subscribe(observer: abc.ObserverBase[Link], _: abc.SchedulerBase | None = None) -> Any:
            def accept(_s: abc.SchedulerBase, _st: Any = None) -> None:
                self.attempts += 1
                if self._refusals:
                    observer.on_error(self._refusals.popleft())
                    return
                peer = MemoryPeer(scheduler, self.latency, url=url, options=options)
                self.peers.append(peer)
                if self.responder is not None:
                    self.responder(peer)
                observer.on_next(peer.link)
                observer.on_completed()

            return scheduler.schedule_relative(self.latency, accept)

        return Observable(subscribe)


class MemoryPeer:
    """The venue's side of one in-memory connection."""

    def __init__(
        self,
        scheduler: abc.SchedulerBase,
        latency: float,
        *,
        url: str = "",
        options: LinkOptions | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.latency = latency
        self.url = url
        self.options = options or LinkOptions()
        self.sent: list[Frame] = []
        """Every frame the client sent on this connection, in order."""
        self.on_receive: Callable[[Frame], None] | None = None
        """Called (after the latency) with each frame the client sent."""
        self.answer_close = True
        """Whether the peer answers the client's close frame (False simulates a silent peer)."""
        self.answer_pings = True
        """Whether the peer answers the client's pings (False simulates a half-open connection)."""
        self.pings = 0
        """Pings the client sent on this connection."""
        self.client_close: tuple[int, str] | None = None
        self.reading = True
        """Whether the peer reads what the client sends (see :meth:`stop_reading`)."""
        self.response_headers: dict[str, str] = {}
        """The handshake response's headers the client's link reports (set by a responder)."""
        self.link = MemoryLink(self)
        self._scripts = CompositeDisposable()

    @property
    def open(self) -> bool:
        return not self.link._ended

    def push(self, message: Frame | Any) -> None:
        """Send one frame (or a JSON-able message, encoded here) to the client."""
        frame: Frame = message if isinstance(message, str | bytes) else json_dumps(message)
        self._later(lambda: self.link._deliver(frame))

    def script(self, frames: Observable[Any]) -> None:
        """Push every item of ``frames`` (e.g. a cold marble observable) as it is emitted."""
        self._scripts.add(frames.subscribe(on_next=self.push, scheduler=self.scheduler))

    def ping_client(self) -> None:
        """Ping the client as a venue does; its transport answers with a pong by itself."""

        def answered() -> None:
            if not self.link._ended and self.link.on_control_sent is not None:
                self.link.on_control_sent("pong")

        self._later(answered)

    def stop_reading(self) -> None:
        """Stop reading: the client's frames (and pings) wait in the link, unread."""
        self.reading = False

    def resume_reading(self) -> None:
        """Read again: every unread frame arrives (in order, after the latency) and the link drains."""
        self.reading = True
        self.link._drain()

    @property
    def unread(self) -> int:
        """Bytes the client wrote that this peer has not read (held while it does not read)."""
        return self.link._unread_bytes

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection from the venue's side with a close frame."""
        self._later(lambda: self.link._end(code, reason, by_peer=True))

    def drop(self, reason: str = "connection reset by peer") -> None:
        """Drop the connection abruptly: no close frame."""
        self._later(lambda: self.link._fail(ConnectionLost(reason)))

    def fail(self, error: TransportError) -> None:
        """End the connection with ``error`` (e.g. HeartbeatTimeout, MessageTooBig)."""
        self._later(lambda: self.link._fail(error))

    def _received(self, frame: Frame) -> None:
        self.sent.append(frame)
        if self.on_receive is not None:
            self.on_receive(frame)

    def _later(self, action: Callable[[], None]) -> None:
        def run(_s: abc.SchedulerBase, _st: Any = None) -> None:
            action()

        self.scheduler.schedule_relative(self.latency, run)


class MemoryLink(Link):
    """The client's side of an in-memory connection."""

    def __init__(self, peer: MemoryPeer) -> None:
        self._peer = peer
        self._subject: FastSubject[Frame] = FastSubject()
        self._closing = False
        self._ended = False
        self._closed: AsyncSubject[None] = AsyncSubject()
        self._high = peer.options.write_high_water
        self._unread: deque[Callable[[], None]] = deque()
        self._unread_bytes = 0
        self._blocked = False

    @property
    def inbound(self) -> Observable[Frame]:
        return self._subject

    @property
    def writable(self) -> bool:
        return not self._blocked

    @property
    def response_headers(self) -> Mapping[str, str]:
        return self._peer.response_headers

    def send(self, frame: Frame) -> bool:
        if self._closing or self._ended:
            raise NotConnected("the link is closed")
        peer = self._peer
        if peer.reading and not self._unread:  # the common case: straight to the peer
            peer._later(lambda: None if self._ended else peer._received(frame))
            return True
        size = len(frame.encode()) if isinstance(frame, str) else len(frame)
        return self._hold(lambda: None if self._ended else peer._received(frame), size)

    def ping(self, on_pong: Callable[[], None]) -> bool:
        if self._closing or self._ended:
            raise NotConnected("the link is closed")
        peer = self._peer
        peer.pings += 1

        def arrived() -> None:
            if not self._ended and peer.answer_pings:
                peer._later(lambda: None if self._ended else on_pong())

        if peer.reading and not self._unread:
            peer._later(arrived)
            return True
        return self._hold(arrived, 6)  # a ping frame with no payload, as sent by a client

    def _hold(self, arrive: Callable[[], None], size: int) -> bool:
        """The peer is not reading: keep the frame unread; report when above the high-water mark."""
        self._unread.append(arrive)
        self._unread_bytes += size
        if self._blocked:
            return False
        if self._unread_bytes > self._high:
            self._blocked = True
            return False
        return True

    def _drain(self) -> None:
        """The peer reads again: deliver what was unread, in order, and tell the writer."""
        unread, self._unread = self._unread, deque()
        self._unread_bytes = 0
        if self._ended:
            return
        for arrive in unread:
            self._peer._later(arrive)
        if self._blocked:
            self._blocked = False
            callback = self.on_drain
            if callback is not None:
                callback()

    def close(self, code: int = 1000, reason: str = "") -> Observable[None]:
        if not self._closing and not self._ended:
            self._closing = True
            self._peer.client_close = (code, reason)
            if self._peer.answer_close:
                self._peer._later(lambda: self._end(code, reason, by_peer=False))
        elif self._ended:
            self._complete_close()
        return self._closed

    def abort(self) -> None:
        self._closing = True
        self._fail(ConnectionLost("aborted by the client"))

    # Called from the peer's side ------------------------------------------------------------
    def _deliver(self, frame: Frame) -> None:
        if not self._ended:
            self._subject.on_next(frame)

    def _end(self, code: int, reason: str, *, by_peer: bool) -> None:
        if self._ended:
            return
        self._ended = True
        self.close_code, self.close_reason, self.closed_by_peer = code, reason, by_peer and not self._closing
        self._peer._scripts.dispose()
        self._subject.on_completed()
        self._complete_close()

    def _fail(self, error: TransportError) -> None:
        if self._ended:
            return
        self._ended = True
        self._peer._scripts.dispose()
        if self._closing:
            self._subject.on_completed()
        else:
            self._subject.on_error(error)
        self._complete_close()

    def _complete_close(self) -> None:
        if not self._closed.is_stopped:
            self._closed.on_next(None)
            self._closed.on_completed()
