"""The insides of :class:`~rxws.testing.FaultProxy`: per-direction pipes, sockets, connections.

A connection pairs the client's socket with an upstream socket; each direction is a :class:`_Pipe`
that reads one socket, applies that direction's :class:`FaultSettings` and writes the other.
Bytes move in protocol callbacks and loop timers; the only task is the short upstream connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["CutKind", "Direction", "FaultSettings", "ProxyHost", "ProxyStats"]

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

    def __init__(self, proxy: ProxyHost) -> None:
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
        self.up = _Pipe(self, True, self.client, transport, self.proxy.settings("up"))
        self.down = _Pipe(self, False, transport, self.client, self.proxy.settings("down"))
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


class ProxyHost(Protocol):
    """What a connection needs from the proxy that owns it."""

    stats: ProxyStats
    rng: random.Random

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def settings(self, direction: Literal["up", "down"]) -> FaultSettings: ...

    def _accepted(self, conn: _Conn) -> None: ...

    def _finished(self, conn: _Conn) -> None: ...
