"""FaultProxy: an in-process TCP proxy between a client and a venue that injects network faults.

It listens on 127.0.0.1 (a free port), opens one upstream connection to the target for each
client connection, and forwards bytes both ways. Per direction (``"up"`` = client → venue,
``"down"`` = venue → client) it can:

* ``blackhole``: swallow bytes silently and keep both sockets open (a half-open connection). TCP
  never delivers a stream with a hole in it, so a connection that lost bytes stays black-holed in
  that direction until it closes; :meth:`FaultProxy.clear` lifts the fault for the others and for
  new connections.
* ``stop_reading``: stop reading the sender's socket, so the kernel buffers fill and TCP
  back-pressure reaches the sender's own write buffer; clearing resumes reading.
* ``delay`` / ``jitter``: hold each chunk ``delay + uniform(0, jitter)`` seconds, order kept — a
  chunk is released at ``max(its own due time, the previous chunk's release)``.
* ``bandwidth``: release at most that many bytes per second.
* ``cut_after`` / ``cut``: forward that many more bytes, then cut the connection with a FIN
  (orderly TCP close, no WebSocket close frame) or an RST (``SO_LINGER`` 0, then abort).

:meth:`FaultProxy.reset_all` RSTs every open connection now. ``seed=`` makes the jitter
reproducible. :attr:`FaultProxy.stats` counts connections, bytes each way and faults injected.
``close()`` (or leaving ``async with``) is idempotent and leaves no task and no socket behind.

Usage::

    async with MockVenue() as venue, FaultProxy(venue.url, seed=7) as proxy:
        client = WebSocketClient(proxy.url, protocol=GenericJson(), ping_interval=1.0, ping_timeout=1.0)
        await client.connect()
        proxy.set("down", delay=0.05, jitter=0.02)    # every venue frame 50-70 ms late, in order
        proxy.set("down", blackhole=True)              # half-open: the heartbeat times out
        proxy.clear()
        proxy.set("both", cut_after=10_000, cut="rst")  # an abrupt drop after 10 kB more
        proxy.reset_all()                               # RST every open connection now
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import Counter, deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

__all__ = ["FaultProxy", "FaultSettings", "ProxyStats"]

Direction = Literal["both", "up", "down"]
CutKind = Literal["fin", "rst"]

_HIGH_WATER = 1 << 20
"""Bytes held in a direction's delay queue before the proxy stops reading the sender."""
_LOW_WATER = 1 << 18


@dataclass(frozen=True)
class FaultSettings:
    """The faults applied to one direction (the defaults forward bytes untouched).

    Attributes:
        blackhole: swallow bytes silently, keep the sockets open.
        stop_reading: stop reading the sender's socket (TCP back-pressure on the sender).
        delay: seconds each chunk is held.
        jitter: up to this many extra seconds per chunk, uniform; order is kept.
        bandwidth: bytes per second released at most (None: unlimited).
        cut_after: forward this many more bytes, then cut the connection (None: never).
        cut: ``"fin"`` for an orderly TCP close, ``"rst"`` for a reset.
    """

    blackhole: bool = False
    stop_reading: bool = False
    delay: float = 0.0
    jitter: float = 0.0
    bandwidth: float | None = None
    cut_after: int | None = None
    cut: CutKind = "fin"

    @property
    def timed(self) -> bool:
        """Whether chunks go through the timed queue (delay, jitter or bandwidth)."""
        return self.delay > 0 or self.jitter > 0 or self.bandwidth is not None


@dataclass
class ProxyStats:
    """What the proxy did.

    Attributes:
        connections: client connections accepted.
        open: connections open now.
        upstream_failures: upstream connects that failed (the client was reset).
        bytes_up: bytes forwarded client → venue.
        bytes_down: bytes forwarded venue → client.
        swallowed_up: bytes client → venue not forwarded (blackhole, cut, dropped on close).
        swallowed_down: bytes venue → client not forwarded.
        faults: injections by kind: each :meth:`FaultProxy.set` counts every fault it turns on
            (``blackhole``, ``stop_reading``, ``delay``, ``bandwidth``, ``cut_after``); each
            connection actually cut counts ``cut_fin`` or ``cut_rst``; each connection reset by
            :meth:`FaultProxy.reset_all` counts ``reset``.
    """

    connections: int = 0
    open: int = 0
    upstream_failures: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    swallowed_up: int = 0
    swallowed_down: int = 0
    faults: Counter[str] = field(default_factory=Counter)


class _Eof:
    """Queue marker: half-close the destination (forward a FIN)."""


class _Close:
    """Queue marker: the source closed in order; close the destination after what is held."""


class _Cut:
    """Queue marker: cut the whole connection."""

    def __init__(self, kind: CutKind) -> None:
        self.kind = kind


_Item = bytes | _Eof | _Close | _Cut


def _rst(transport: asyncio.BaseTransport) -> None:
    """Abort ``transport`` with a TCP reset (SO_LINGER 0), not a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


class _Pipe:
    """One direction of one connection: reads ``src``, applies the faults, writes ``dst``."""

    def __init__(
        self, conn: _Conn, up: bool, src: asyncio.Transport, dst: asyncio.Transport, settings: FaultSettings
    ) -> None:
        self.conn = conn
        self.up = up
        self.src = src
        self.dst = dst
        self.settings = FaultSettings()
        self.holed = False  # swallowed bytes: black-holed for the rest of its life
        self.cut_budget: int | None = None
        self.cutting = False
        self.queue: deque[tuple[float, _Item]] = deque()
        self.queued_bytes = 0
        self.last_release = 0.0
        self.next_free = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.reasons: set[str] = set()
        self.paused = False
        self.apply(settings)

    # Settings -------------------------------------------------------------------------------------
    def apply(self, settings: FaultSettings) -> None:
        self.settings = settings
        self.cut_budget = settings.cut_after
        self.set_reason("stop", settings.stop_reading)
        if not settings.timed and self.queue:
            self._schedule()  # release what is held on its own schedule; new chunks queue behind

    def set_reason(self, reason: str, on: bool) -> None:
        if on:
            self.reasons.add(reason)
        else:
            self.reasons.discard(reason)
        want_paused = bool(self.reasons)
        if want_paused == self.paused or self.src.is_closing():
            return
        self.paused = want_paused
        if want_paused:
            self.src.pause_reading()
        else:
            self.src.resume_reading()

    # Input ----------------------------------------------------------------------------------------
    def _swallow(self, n: int) -> None:
        stats = self.conn.proxy.stats
        if self.up:
            stats.swallowed_up += n
        else:
            stats.swallowed_down += n

    def feed(self, data: bytes) -> None:
        if self.cutting or self.conn.done:
            self._swallow(len(data))
            return
        if self.holed or self.settings.blackhole:
            self.holed = True
            self._swallow(len(data))
            return
        if self.cut_budget is not None and len(data) >= self.cut_budget:
            keep, self.cut_budget = self.cut_budget, 0
            self._swallow(len(data) - keep)
            if keep:
                self.enqueue(data[:keep])
            self.cutting = True
            self.enqueue(_Cut(self.settings.cut))
            return
        if self.cut_budget is not None:
            self.cut_budget -= len(data)
        self.enqueue(data)

    def feed_eof(self) -> None:
        if not (self.holed or self.settings.blackhole or self.cutting):
            self.enqueue(_Eof())

    def enqueue(self, item: _Item) -> None:
        settings = self.settings
        if not settings.timed and not self.queue:
            self._do(item)
            return
        loop = self.conn.proxy.loop
        due = loop.time() + settings.delay
        if settings.jitter > 0:
            due += self.conn.proxy.rng.uniform(0.0, settings.jitter)
        if isinstance(item, bytes) and settings.bandwidth is not None:
            step = max(512, int(settings.bandwidth / 50))  # ~20 ms slices keep the rate smooth
            for start in range(0, len(item), step):
                piece = item[start : start + step]
                release = max(due, self.last_release, self.next_free)
                self.next_free = release + len(piece) / settings.bandwidth
                self._push(release, piece)
        else:
            self._push(max(due, self.last_release), item)
        self._schedule()

    def _push(self, release: float, item: _Item) -> None:
        self.last_release = release
        self.queue.append((release, item))
        if isinstance(item, bytes):
            self.queued_bytes += len(item)
            if self.queued_bytes > _HIGH_WATER:
                self.set_reason("queue", True)

    # Output ---------------------------------------------------------------------------------------
    def _schedule(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.queue and not self.conn.done:
            self.timer = self.conn.proxy.loop.call_at(self.queue[0][0], self._release)

    def _release(self) -> None:
        self.timer = None
        now = self.conn.proxy.loop.time()
        while self.queue and self.queue[0][0] <= now and not self.conn.done:
            _, item = self.queue.popleft()
            if isinstance(item, bytes):
                self.queued_bytes -= len(item)
            self._do(item)
        if self.queued_bytes < _LOW_WATER:
            self.set_reason("queue", False)
        self._schedule()

    def _do(self, item: _Item) -> None:
        if isinstance(item, _Cut):
            self.conn.cut(item.kind)
        elif isinstance(item, _Close):
            self.dst.close()
        elif isinstance(item, _Eof):
            if not self.dst.is_closing() and self.dst.can_write_eof():
                self.dst.write_eof()
        elif self.dst.is_closing():
            self._swallow(len(item))
        else:
            self.dst.write(item)
            stats = self.conn.proxy.stats
            if self.up:
                stats.bytes_up += len(item)
            else:
                stats.bytes_down += len(item)

    def drop_queue(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._swallow(self.queued_bytes)
        self.queue.clear()
        self.queued_bytes = 0


class _Side(asyncio.Protocol):
    """The protocol on one socket of a connection (client side or upstream side)."""

    def __init__(self, conn: _Conn, client_side: bool) -> None:
        self.conn = conn
        self.client_side = client_side
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.client_side:
            self.conn.client_made(transport)
        else:
            self.conn.upstream_made(transport)

    def data_received(self, data: bytes) -> None:
        pipe = self.conn.up if self.client_side else self.conn.down
        if pipe is None:  # client bytes before the upstream is open: reading is paused, rare
            self.conn.early.append(data)
        else:
            pipe.feed(data)

    def eof_received(self) -> bool:
        pipe = self.conn.up if self.client_side else self.conn.down
        if pipe is None:
            self.conn.early_eof = True
        else:
            pipe.feed_eof()
        return True  # keep the other half open; the connection closes when both sides do

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.side_lost(self.client_side, exc)

    def pause_writing(self) -> None:
        pipe = self.conn.down if self.client_side else self.conn.up
        if pipe is not None:
            pipe.set_reason("dst", True)

    def resume_writing(self) -> None:
        pipe = self.conn.down if self.client_side else self.conn.up
        if pipe is not None:
            pipe.set_reason("dst", False)


class _Conn:
    """One proxied connection: the client's socket, the upstream socket, a pipe each way."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.up: _Pipe | None = None
        self.down: _Pipe | None = None
        self.early: list[bytes] = []
        self.early_eof = False
        self.client_open = False
        self.upstream_open = False
        self.connecting = False
        self.done = False

    def client_made(self, transport: asyncio.Transport) -> None:
        self.client = transport
        self.client_open = True
        transport.pause_reading()
        self.proxy._accepted(self)

    def upstream_made(self, transport: asyncio.Transport) -> None:
        assert self.client is not None
        self.upstream = transport
        self.upstream_open = True
        if self.done or not self.client_open:
            transport.close()
            return
        self.up = _Pipe(self, True, self.client, transport, self.proxy._settings["up"])
        self.down = _Pipe(self, False, transport, self.client, self.proxy._settings["down"])
        early, self.early = self.early, []
        for data in early:
            self.up.feed(data)
        if self.early_eof:
            self.up.feed_eof()
        if not self.up.paused:
            self.client.resume_reading()

    def cut(self, kind: CutKind) -> None:
        """End both sockets now: an orderly close (FIN) or a reset (RST)."""
        if self.done:
            return
        self.done = True
        self.proxy.stats.faults[f"cut_{kind}"] += 1
        for pipe in (self.up, self.down):
            if pipe is not None:
                pipe.drop_queue()
        for transport in (self.client, self.upstream):
            if transport is not None:
                if kind == "rst":
                    _rst(transport)
                else:
                    transport.close()

    def side_lost(self, client_side: bool, exc: Exception | None) -> None:
        if client_side:
            self.client_open = False
            other = self.upstream
        else:
            self.upstream_open = False
            other = self.client
        if other is not None and not other.is_closing():
            if exc is not None:  # reset or error on one side: pass the abrupt end along
                self.done = True
                for pipe in (self.up, self.down):
                    if pipe is not None:
                        pipe.drop_queue()
                _rst(other)
            else:
                # Orderly end: the other side closes after the bytes still held for it.
                pipe = self.down if client_side else self.up
                if pipe is None or self.done:
                    other.close()
                elif pipe.holed or pipe.settings.blackhole:
                    pass  # half-open: the far end never hears of it; close() or its own end cleans up
                else:
                    pipe.cutting = True
                    pipe.enqueue(_Close())
        self.maybe_finished()

    def maybe_finished(self) -> None:
        """Report the connection finished once both sockets are closed and no connect is pending."""
        if self.client_open or self.upstream_open or self.connecting:
            return
        self.done = True
        for pipe in (self.up, self.down):
            if pipe is not None:
                pipe.drop_queue()
        self.proxy._finished(self)

    def abort(self) -> None:
        self.done = True
        for pipe in (self.up, self.down):
            if pipe is not None:
                pipe.drop_queue()
        for transport in (self.client, self.upstream):
            if transport is not None:
                _rst(transport)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_url`` that injects faults per direction.

    Args:
        target_url: the venue's ``ws://host:port/path?query`` URL.
        seed: seeds the jitter's random numbers (None: unseeded).
        host: the address to listen on (loopback only).

    ``proxy.url`` is the URL for the client: the proxy's port, the target's path and query.
    """

    def __init__(self, target_url: str, *, seed: int | None = None, host: str = "127.0.0.1") -> None:
        parts = urlsplit(target_url)
        if parts.scheme != "ws" or parts.hostname is None:
            raise ValueError(f"FaultProxy forwards plain ws:// URLs, got {target_url!r}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("FaultProxy listens on loopback only")
        self.target_url = target_url
        self.host = host
        self.port = 0
        self.stats = ProxyStats()
        self.rng = random.Random(seed)
        self._target = (parts.hostname, parts.port or 80)
        self._parts = parts
        self._settings: dict[str, FaultSettings] = {"up": FaultSettings(), "down": FaultSettings()}
        self._conns: set[_Conn] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.Event | None = None
        self._closed = False

    # Life cycle -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The ``ws://`` URL the client connects to (same path and query as the target)."""
        return urlunsplit(("ws", f"{self.host}:{self.port}", self._parts.path, self._parts.query, ""))

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the proxy runs on (set by :meth:`start`)."""
        if self._loop is None:
            raise RuntimeError("FaultProxy is not started")
        return self._loop

    @property
    def connections(self) -> int:
        """How many proxied connections are open now."""
        return len(self._conns)

    async def start(self) -> FaultProxy:
        """Listen on a free loopback port (``proxy.url`` tells which)."""
        if self._closed:
            raise RuntimeError("FaultProxy is closed")
        if self._server is not None:
            return self
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self._server = await self._loop.create_server(lambda: _Side(_Conn(self), True), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self, timeout: float = 5.0) -> None:
        """Stop listening, reset every connection, wait until every socket is closed; idempotent."""
        if self._closed:
            return
        self._closed = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connecting):
            task.cancel()
        for conn in list(self._conns):
            conn.abort()
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        if self._idle is not None:
            async with asyncio.timeout(timeout):
                await self._idle.wait()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # Faults ---------------------------------------------------------------------------------------
    def set(
        self,
        direction: Direction = "both",
        *,
        blackhole: bool = False,
        stop_reading: bool = False,
        delay: float = 0.0,
        jitter: float = 0.0,
        bandwidth: float | None = None,
        cut_after: int | None = None,
        cut: CutKind = "fin",
    ) -> None:
        """Apply faults to ``direction`` on open and future connections (replacing earlier ones).

        Args:
            direction: ``"up"`` (client → venue), ``"down"`` (venue → client) or ``"both"``.
            blackhole: swallow bytes silently; the sockets stay open (half-open).
            stop_reading: stop reading the sender's socket, so TCP back-pressure builds on it.
            delay: seconds each chunk is held.
            jitter: up to this many extra seconds per chunk (uniform, seeded); order is kept.
            bandwidth: at most this many bytes per second.
            cut_after: forward this many more bytes on each connection, then cut it.
            cut: ``"fin"`` (orderly TCP close) or ``"rst"`` (reset).

        Raises:
            ValueError: a negative delay or jitter, a bandwidth or cut_after out of range, or an
                unknown direction or cut kind.
        """
        if delay < 0 or jitter < 0:
            raise ValueError("delay and jitter must be >= 0")
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError("bandwidth must be > 0 bytes per second")
        if cut_after is not None and cut_after < 0:
            raise ValueError("cut_after must be >= 0")
        if cut not in ("fin", "rst"):
            raise ValueError(f"cut must be 'fin' or 'rst', got {cut!r}")
        settings = FaultSettings(blackhole, stop_reading, delay, jitter, bandwidth, cut_after, cut)
        for name, on in (
            ("blackhole", blackhole),
            ("stop_reading", stop_reading),
            ("delay", delay > 0 or jitter > 0),
            ("bandwidth", bandwidth is not None),
            ("cut_after", cut_after is not None),
        ):
            if on:
                self.stats.faults[name] += 1
        self._apply(direction, settings)

    def clear(self, direction: Direction = "both") -> None:
        """Lift every fault on ``direction`` (a black-holed connection stays so; see the module)."""
        self._apply(direction, FaultSettings())

    def settings(self, direction: Literal["up", "down"]) -> FaultSettings:
        """The faults in force on ``direction`` now."""
        return self._settings[direction]

    def reset_all(self) -> int:
        """Reset (RST) every open connection now; returns how many."""
        conns = [c for c in self._conns if not c.done]
        for conn in conns:
            conn.abort()
        self.stats.faults["reset"] += len(conns)
        return len(conns)

    def _apply(self, direction: Direction, settings: FaultSettings) -> None:
        if direction not in ("both", "up", "down"):
            raise ValueError(f"direction must be 'both', 'up' or 'down', got {direction!r}")
        for name in ("up", "down") if direction == "both" else (direction,):
            self._settings[name] = settings
            for conn in list(self._conns):
                pipe = conn.up if name == "up" else conn.down
                if pipe is not None and not conn.done:
                    pipe.apply(settings)

    # Connections ----------------------------------------------------------------------------------
    def _accepted(self, conn: _Conn) -> None:
        self.stats.connections += 1
        self._conns.add(conn)
        self.stats.open = len(self._conns)
        assert self._idle is not None
        self._idle.clear()
        if self._closed:
            conn.abort()
            return
        conn.connecting = True
        task = self.loop.create_task(self._connect_upstream(conn))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_upstream(self, conn: _Conn) -> None:
        host, port = self._target
        try:
            await self.loop.create_connection(lambda: _Side(conn, False), host, port)
        except OSError:
            self.stats.upstream_failures += 1
            conn.abort()
        except asyncio.CancelledError:
            conn.abort()
            raise
        finally:
            conn.connecting = False
            conn.maybe_finished()

    def _finished(self, conn: _Conn) -> None:
        self._conns.discard(conn)
        self.stats.open = len(self._conns)
        if not self._conns and self._idle is not None:
            self._idle.set()
