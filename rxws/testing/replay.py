"""Replaying a recording (:mod:`rxws.testing.recorder`): over a real socket, or in virtual time.

:class:`ReplayVenue` is a WebSocket server on 127.0.0.1 that plays the venue's side of a recording
to each client that connects: the first connection gets the recording's first connection, a
reconnect the next one, and so on. :class:`ReplayTransport` does the same in virtual time, driven
by the client's scheduler (e.g. a ``TestScheduler``), so a recorded session becomes a deterministic
marble-style test.

Both follow the rules of :mod:`rxws.testing._player`: venue frames at the recorded pace scaled by
``speed`` (``None`` or ``"max"``: as fast as possible); a frame the recording shows the client sent
first (a subscribe before its ack and data) is waited for, at most ``client_timeout`` seconds, after
which the connection is closed with 1011 and ``failures`` says which frame never came; heartbeat
pings are answered live; a recorded close by the venue is replayed with the same code and reason,
a recorded drop as an abrupt drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from http import HTTPStatus
from types import TracebackType
from typing import Any, cast

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import ProtocolError as WsProtocolError
from websockets.http11 import Request, Response
from websockets.protocol import State

from rxws._time import clock_of
from rxws.exceptions import ConnectFailed
from rxws.testing._player import Player, Step, build_steps
from rxws.testing._recording import Recording, load_recording
from rxws.testing.dialects import SERVER_DIALECTS, ServerDialect, server_dialect
from rxws.transport.base import Frame, Link, LinkOptions, Transport
from rxws.transport.memory import MemoryPeer

__all__ = ["ReplayTransport", "ReplayVenue"]

log = logging.getLogger("rxws.testing.replay")

Speed = float | str | None


def _speed(speed: Speed) -> float | None:
    if speed is None or speed == "max":
        return None
    if isinstance(speed, str) or not speed > 0:
        raise ValueError(f"speed must be > 0, None or 'max', got {speed!r}")
    return float(speed)


def _recording(source: str | os.PathLike[str] | Recording) -> Recording:
    return source if isinstance(source, Recording) else load_recording(source)


def _dialect(recording: Recording) -> ServerDialect | None:
    name = recording.protocol
    return server_dialect(name) if name is not None and name in SERVER_DIALECTS else None


class _Replay:
    """What both replays share: the recording, the next connection to play, and the outcome."""

    def __init__(
        self, source: str | os.PathLike[str] | Recording, speed: Speed, client_timeout: float
    ) -> None:
        if not client_timeout > 0:
            raise ValueError("client_timeout must be > 0")
        self.recording = _recording(source)
        self.speed = _speed(speed)
        self.client_timeout = client_timeout
        self.dialect = _dialect(self.recording)
        self.players: list[Player] = []
        """One per connection served, in order."""

    @property
    def exhausted(self) -> bool:
        """Every recorded connection has been handed to a client."""
        return len(self.players) >= len(self.recording.connections)

    @property
    def failures(self) -> list[str]:
        """Why a connection's replay gave up (a client frame the recording shows never came)."""
        return [p.failure for p in self.players if p.failure is not None]

    @property
    def mismatches(self) -> list[tuple[int, Frame, Frame]]:
        """(recording line, recorded client frame, live client frame) for each frame that differed."""
        return [m for p in self.players for m in p.mismatches]

    @property
    def finished(self) -> bool:
        """Every recorded connection has been served and played to its end."""
        return self.exhausted and all(p.finished for p in self.players)

    def _next_player(self, now: float) -> Player:
        conn = self.recording.connections[len(self.players)]
        player = Player(
            build_steps(conn, self.dialect),
            opened=conn.opened,
            now=now,
            speed=self.speed,
            client_timeout=self.client_timeout,
            dialect=self.dialect,
        )
        self.players.append(player)
        return player


class ReplayVenue(_Replay):
    """A real WebSocket server on loopback that replays a recording to the clients that connect.

    A client connecting after every recorded connection has been served is refused with HTTP 503.

    Args:
        recording: a path to a recording, or a loaded :class:`~rxws.testing.recorder.Recording`.
        speed: 1.0 for the recorded pace, 2.0 twice as fast; None or ``"max"`` as fast as possible.
        host: the address to listen on (loopback only).
        port: 0 for a free port; ``venue.url`` tells which.
        client_timeout: seconds to wait for a client frame the recording shows before a venue frame.

    Raises:
        RecordingError: the recording is corrupt or truncated (file and line in the message).
    """

    def __init__(
        self,
        recording: str | os.PathLike[str] | Recording,
        *,
        speed: Speed = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        client_timeout: float = 10.0,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("ReplayVenue listens on loopback only")
        super().__init__(recording, speed, client_timeout)
        self.host = host
        self.port = port
        self._server: Server | None = None
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """``ws://host:port`` of the running venue."""
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> ReplayVenue:
        """Listen; returns the venue."""
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            ping_interval=None,
            max_size=None,
            compression=None,
            write_limit=1 << 20,  # a deep send buffer: fewer write/drain round trips at max speed
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        log.info("replay venue on %s: %s", self.url, self.recording.path)
        return self

    async def stop(self) -> None:
        """Close every connection and stop listening; leaves no task behind (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close(close_connections=True)
        await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> ReplayVenue:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait_finished(self, timeout: float = 10.0) -> None:
        """Wait until every recorded connection has been played to its end, at most ``timeout``."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.finished)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.exhausted:
            served = len(self.players)
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, f"the recording has {served} connection(s), all served\n"
            )
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        if self.exhausted:  # a race between two handshakes
            await ws.close(1013, "recording exhausted")
            return
        player = self._next_player(loop.time())
        wake = asyncio.Event()
        reader = loop.create_task(self._read(ws, player, wake))
        self._tasks.add(reader)
        reader.add_done_callback(self._tasks.discard)
        try:
            await self._play(ws, player, wake)
            await self._notify()
            await reader  # the client closes (or the venue's close completes)
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            await self._notify()

    async def _read(self, ws: ServerConnection, player: Player, wake: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for frame in ws:
                pong = player.client_frame(frame, loop.time())
                if pong is not None:
                    await ws.send(pong)
                wake.set()
        except ConnectionClosed:
            pass
        finally:
            wake.set()  # the client went away: the play loop stops waiting

    async def _play(self, ws: ServerConnection, player: Player, wake: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        transport = ws.transport
        while not player.finished:
            wake.clear()
            if ws.protocol.state is not State.OPEN:
                return
            steps, next_at = player.poll(loop.time())
            chunk: list[bytes] = []
            for step in steps:
                if step.kind == "send":
                    frame = step.frame
                    if isinstance(frame, str):
                        chunk.append(_wire(0x81, frame.encode()))
                    else:
                        assert frame is not None
                        chunk.append(_wire(0x82, frame))
                    continue
                if chunk:
                    transport.write(b"".join(chunk))
                    chunk = []
                if player.failure is not None:
                    log.warning("%s", player.failure)
                await self._end(ws, step)
                return
            if chunk:
                transport.write(b"".join(chunk))
                await ws.drain()
            if next_at is None:
                continue
            delay = next_at - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
            else:
                await asyncio.sleep(0)

    async def _end(self, ws: ServerConnection, step: Step) -> None:
        if step.kind == "drop" or step.code in (1006, 1015):
            ws.transport.abort()
            return
        code = step.code
        try:
            if code is None or code == 1005:  # a close frame without a code
                await ws.close(cast(int, None), "")
            else:
                await ws.close(code, step.reason)
        except WsProtocolError:  # a code that may not be sent: end the connection as it ended
            log.warning("replay: close code %s cannot be sent; dropping the connection", code)
            ws.transport.abort()


def _wire(head: int, payload: bytes) -> bytes:
    """One unmasked, unfragmented server frame (RFC 6455 section 5.2); ``head`` is FIN + opcode."""
    size = len(payload)
    if size < 126:
        return bytes((head, size)) + payload
    if size < 1 << 16:
        return _SHORT.pack(head, 126, size) + payload
    return _LONG.pack(head, 127, size) + payload


_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


class ReplayTransport(_Replay, Transport):
    """A transport that replays a recording in the client's scheduler time (virtual time in tests).

    Each ``open`` plays the next recorded connection; once all are served, ``open`` fails with
    :class:`~rxws.exceptions.ConnectFailed`. ``peers`` holds each connection's venue side (what
    the client sent is in ``peer.sent``).

    Args:
        recording: a path to a recording, or a loaded :class:`~rxws.testing.recorder.Recording`.
        speed: 1.0 for the recorded pace, 2.0 twice as fast; None or ``"max"``: no delays at all.
        client_timeout: scheduler seconds to wait for a client frame the recording shows.
        latency: scheduler seconds each frame and each connect takes.

    Raises:
        RecordingError: the recording is corrupt or truncated (file and line in the message).
    """

    def __init__(
        self,
        recording: str | os.PathLike[str] | Recording,
        *,
        speed: Speed = 1.0,
        client_timeout: float = 10.0,
        latency: float = 0.0,
    ) -> None:
        super().__init__(recording, speed, client_timeout)
        self.latency = latency
        self.peers: list[MemoryPeer] = []

    def open(self, url: str, options: LinkOptions, scheduler: abc.SchedulerBase) -> Observable[Link]:
        now = clock_of(scheduler)

        def subscribe(observer: abc.ObserverBase[Link], _: abc.SchedulerBase | None = None) -> Any:
            def accept(_s: abc.SchedulerBase, _st: Any = None) -> None:
                if self.exhausted:
                    served = len(self.players)
                    observer.on_error(ConnectFailed(f"the recording has {served} connection(s), all served"))
                    return
                peer = MemoryPeer(scheduler, self.latency, url=url, options=options)
                self.peers.append(peer)
                _Driver(peer, self._next_player(now()), scheduler, now)
                observer.on_next(peer.link)
                observer.on_completed()

            return scheduler.schedule_relative(self.latency, accept)

        return Observable(subscribe)


_RESOLUTION = 2e-6
"""Seconds: a replay step due within this is played at once (see ``_Driver.pump``)."""


class _Driver:
    """Drives one player on a scheduler, through a MemoryPeer."""

    def __init__(self, peer: MemoryPeer, player: Player, scheduler: abc.SchedulerBase, now: Any) -> None:
        self.peer = peer
        self.player = player
        self.scheduler = scheduler
        self.now = now
        self.timer = SerialDisposable()
        peer.on_receive = self.received
        self.pump()

    def received(self, frame: Frame) -> None:
        pong = self.player.client_frame(frame, self.now())
        if pong is not None:
            self.peer.push(pong)
        self.pump()

    def pump(self, _s: abc.SchedulerBase | None = None, _st: Any = None) -> None:
        peer, player = self.peer, self.player
        now = self.now()
        while peer.open and not player.finished:
            steps, next_at = player.poll(now, limit=1 << 30)
            for step in steps:
                if step.kind == "send":
                    peer.push(step.frame)
                elif step.kind == "drop":
                    peer.drop("replay: the recorded connection dropped here")
                else:
                    peer.close(1005 if step.code is None else step.code, step.reason)
            if next_at is None:
                return
            delay = next_at - now
            if delay > _RESOLUTION:
                self.timer.disposable = self.scheduler.schedule_relative(delay, self.pump)
                return
            # Due within the schedulers' resolution (reactivex rounds relative times to whole
            # microseconds): play it now, or a sub-microsecond wait would be rescheduled forever.
            now = next_at
