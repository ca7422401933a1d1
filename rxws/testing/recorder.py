"""Record a venue session once, replay it in CI forever: the :class:`Recorder` transport.

``Recorder`` wraps any :class:`~rxws.transport.base.Transport` and is one itself::

    recorder = Recorder(WebsocketsTransport(), "session.jsonl", protocol="okx")
    client = WebSocketClient(url, protocol=Okx(), transport=recorder)

Replay the file with :class:`rxws.testing.ReplayVenue` (a real server) or
:class:`rxws.testing.ReplayTransport` (virtual time).

The recording format (version 1) is JSON lines, UTF-8, one record per line, each line flushed as it
is written, so a crash leaves a file whose finished lines are all readable. Readers must ignore keys
they do not know; a new key is not a new version, a changed meaning is.

Line 1, the header::

    {"format": "rxws-recording", "version": 1, "url": "wss://...", "protocol": "okx",
     "started": "2026-11-30T04:30:00.123456+00:00"}

``protocol`` is the client dialect's name (``null`` when unknown); ``started`` is the wall-clock
start, for people. Every other line is a record with these keys first:

* ``t``: seconds since the first connection attempt, read from the clock of the scheduler the link
  runs on (the loop's monotonic clock, or virtual time);
* ``conn``: the connection number, 1 for the first link opened, 2 for the next (a reconnect)...;
* ``kind``, one of:

  - ``open`` (with ``url``): the connection opened;
  - ``in`` / ``out``: a frame from the venue / from the client, as ``text`` (a string) or
    ``binary`` (base64);
  - ``close`` (with ``code``, ``reason``, ``by``: ``"venue"`` or ``"client"``): it ended with a
    close frame; ``code`` is null when the close frame carried none;
  - ``drop`` (with ``error``): it ended without a close frame (reset, heartbeat timeout, ...);
  - ``open_failed`` (``conn`` null, with ``error``): an attempt that never opened.

A connection without a ``close`` or ``drop`` record was still open when the recording stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxws._time import clock_of
from rxws.protocols.base import VenueProtocol
from rxws.testing._recording import Recording, RecordingWriter, load_recording
from rxws.transport.base import Frame, Link, LinkOptions, Transport

__all__ = ["Recorder", "Recording", "RecordingLink", "load_recording"]


class Recorder(Transport):
    """A transport that records every link ``inner`` opens into a JSON-lines file.

    Args:
        inner: the transport that really opens the links (e.g. ``WebsocketsTransport()``).
        target: a path (created or truncated now) or an open text stream (left open).
        protocol: the client's dialect or its name, written in the header so a replay can tell a
            heartbeat ping from a subscribe; None when unknown.
    """

    def __init__(
        self,
        inner: Transport,
        target: str | os.PathLike[str] | IO[str],
        *,
        protocol: VenueProtocol | str | None = None,
    ) -> None:
        self.inner = inner
        if isinstance(target, str | os.PathLike):
            self.path = os.fspath(target)
            stream: IO[str] = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._writer = RecordingWriter(stream, close_stream=True)
        else:
            self.path = str(getattr(target, "name", "<stream>"))
            self._writer = RecordingWriter(target, close_stream=False)
        self.protocol = protocol if protocol is None or isinstance(protocol, str) else protocol.name
        self.connections = 0
        """Links opened so far (the number of the newest one)."""
        self._clock: Callable[[], float] | None = None
        self._t0 = 0.0

    @property
    def lines(self) -> int:
        """Lines written so far, the header included."""
        return self._writer.lines

    @property
    def unwritten(self) -> int:
        """Records that could not be written: after :meth:`close`, or once the file failed."""
        return self._writer.unwritten

    @property
    def error(self) -> OSError | None:
        """The write error that stopped the recording (it is logged; the session goes on)."""
        return self._writer.error

    def open(self, url: str, options: LinkOptions, scheduler: abc.SchedulerBase) -> Observable[Link]:
        if self._clock is None:
            self._clock = clock_of(scheduler)
            self._t0 = self._clock()
            self._writer.header(url, self.protocol, datetime.now(UTC).isoformat())

        def opened(link: Link) -> Link:
            self.connections += 1
            self._writer.record(self._now(), self.connections, "open", url=url)
            return RecordingLink(link, self, self.connections)

        def failed(error: Exception, _source: Observable[Link]) -> Observable[Link]:
            self._writer.record(self._now(), None, "open_failed", error=_describe(error))
            return _raise(error)

        return self.inner.open(url, options, scheduler).pipe(ops.map(opened), ops.catch(failed))

    def load(self) -> Recording:
        """Read back what was recorded so far (the file must be a path)."""
        return load_recording(self.path)

    def close(self) -> None:
        """Close the file if the recorder opened it; later records are not written (idempotent)."""
        self._writer.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # For RecordingLink ----------------------------------------------------------------------------
    def _now(self) -> float:
        return (self._clock() - self._t0) if self._clock is not None else 0.0

    def _frame(self, conn: int, kind: Any, frame: Frame) -> None:
        self._writer.frame(self._now(), conn, kind, frame)

    def _ended(self, conn: int, link: Link, error: Exception | None) -> None:
        if error is None:
            by = "venue" if link.closed_by_peer else "client"
            self._writer.record(
                self._now(), conn, "close", code=link.close_code, reason=link.close_reason, by=by
            )
        else:
            self._writer.record(self._now(), conn, "drop", error=_describe(error))


class RecordingLink(Link):
    """A link that records its frames and its ending through its :class:`Recorder`."""

    def __init__(self, inner: Link, recorder: Recorder, number: int) -> None:
        self._inner = inner
        self._recorder = recorder
        self.number = number
        self._ended = False
        self._watched = False

    # The attributes the client reads and sets, forwarded to the real link.
    @property
    def close_code(self) -> int | None:
        return self._inner.close_code

    @close_code.setter
    def close_code(self, value: int | None) -> None:
        self._inner.close_code = value

    @property
    def close_reason(self) -> str:
        return self._inner.close_reason

    @close_reason.setter
    def close_reason(self, value: str) -> None:
        self._inner.close_reason = value

    @property
    def closed_by_peer(self) -> bool:
        return self._inner.closed_by_peer

    @closed_by_peer.setter
    def closed_by_peer(self, value: bool) -> None:
        self._inner.closed_by_peer = value

    @property
    def on_control_sent(self) -> Callable[[str], None] | None:
        return self._inner.on_control_sent

    @on_control_sent.setter
    def on_control_sent(self, value: Callable[[str], None] | None) -> None:
        self._inner.on_control_sent = value

    @property
    def on_drain(self) -> Callable[[], None] | None:
        return self._inner.on_drain

    @on_drain.setter
    def on_drain(self, value: Callable[[], None] | None) -> None:
        self._inner.on_drain = value

    @property
    def writable(self) -> bool:
        return self._inner.writable

    @property
    def inbound(self) -> Observable[Frame]:
        source = self._inner.inbound

        def subscribe(observer: abc.ObserverBase[Frame], scheduler: abc.SchedulerBase | None = None) -> Any:
            if self._watched:  # only the first subscriber is recorded, so no frame is written twice
                return source.subscribe(observer, scheduler=scheduler)
            self._watched = True
            recorder, number = self._recorder, self.number
            on_next = observer.on_next

            def frame(item: Frame) -> None:
                recorder._frame(number, "in", item)
                on_next(item)

            def completed() -> None:
                self._end(None)
                observer.on_completed()

            def error(exc: Exception) -> None:
                self._end(exc)
                observer.on_error(exc)

            return source.subscribe(frame, error, completed, scheduler=scheduler)

        return Observable(subscribe)

    def send(self, frame: Frame) -> bool:
        below = self._inner.send(frame)
        self._recorder._frame(self.number, "out", frame)
        return below

    def ping(self, on_pong: Callable[[], None]) -> bool:
        return self._inner.ping(on_pong)

    def close(self, code: int = 1000, reason: str = "") -> Observable[None]:
        done = self._inner.close(code, reason)
        return done.pipe(ops.do_action(on_completed=lambda: self._end(None)))

    def abort(self) -> None:
        self._inner.abort()

    def _end(self, error: Exception | None) -> None:
        if not self._ended:
            self._ended = True
            self._recorder._ended(self.number, self._inner, error)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _raise(error: Exception) -> Observable[Link]:
    return reactivex.throw(error)
