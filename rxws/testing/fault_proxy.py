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
import random
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from rxws.testing._proxy_conn import CutKind, Direction, FaultSettings, ProxyStats, _Conn, _Side

__all__ = ["FaultProxy", "FaultSettings", "ProxyStats"]


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
