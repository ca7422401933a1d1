"""An in-memory transport driven by a reactivex scheduler, for virtual-time tests.

With :class:`reactivex.testing.TestScheduler`, a whole client scenario — connect, drop, approve,
back off, reconnect, resubscribe — runs in virtual time in milliseconds of real time. The test
plays the venue through :class:`MemoryPeer`: it sees what the client sent (``peer.sent``), pushes
frames (``peer.push``), scripts them as a (marble) observable (``peer.script``), closes with a code
or drops the connection. A ``responder`` (e.g. :class:`rxws.testing.Responder`) can answer
automatically, as the mock venue would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
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

    @property
    def inbound(self) -> Observable[Frame]:
        return self._subject

    def send(self, frame: Frame) -> None:
        if self._closing or self._ended:
            raise NotConnected("the link is closed")
        self._peer._later(lambda: None if self._ended else self._peer._received(frame))

    def ping(self, on_pong: Callable[[], None]) -> None:
        if self._closing or self._ended:
            raise NotConnected("the link is closed")
        peer = self._peer
        peer.pings += 1

        def arrived() -> None:
            if not self._ended and peer.answer_pings:
                peer._later(lambda: None if self._ended else on_pong())

        peer._later(arrived)

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
