"""MockVenue: a real WebSocket server on 127.0.0.1 that speaks a venue dialect.

It acks subscriptions, publishes data on subscribed topics with sequence numbers rising by one per
topic, answers requests (``echo``, ``sleep``, ``fail``), records what it received, and injects
faults on demand: abrupt drops, closes with a chosen code, half-open connections (no pongs),
paused publishing, skipped sequence numbers, refused connections, restarts, and a 1008 close above
a message rate. Benchmarks write pre-built frames (:meth:`MockVenue.blast`) so the server is never
the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from http import HTTPStatus
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request, Response

from rxws.auth import Credentials
from rxws.testing._auth import VenueAuth
from rxws.testing._venue_core import Close, SessionCore, VenueCore
from rxws.testing.dialects import ServerDialect

__all__ = ["MockVenue", "VenueConnection"]

log = logging.getLogger("rxws.testing.venue")


class VenueConnection:
    """One client connection to the mock venue."""

    def __init__(self, ws: ServerConnection, session: SessionCore) -> None:
        self.ws = ws
        self.session = session
        self.half_open = False
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def number(self) -> int:
        return self.session.number

    @property
    def topics(self) -> list[str]:
        return list(self.session.topics)

    def write_raw(self, data: bytes) -> None:
        transport = self.ws.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)


class MockVenue:
    """A mock venue over real loopback sockets.

    Args:
        host: the address to listen on (loopback only).
        port: 0 for a free port; ``venue.url`` tells which.
        dialect: server dialect name (``generic``, ``binance``, ``okx``, ...) or instance.
        rate: data messages per second per subscribed topic (0 publishes nothing by itself).
        refuse_topics: topics whose subscribe the venue refuses.
        max_messages_per_second: close with 1008 above this client message rate (None: no check).
        ping_interval: the server's own protocol pings (None: the server sends none).
        credentials: the account the venue knows: logins are verified the venue's way and private
            topics are refused before a login (:class:`rxws.testing._auth.VenueAuth`, ``venue.auth``).
        clock_offset: seconds the venue's clock runs ahead of this host's (for login timestamps).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        dialect: str | ServerDialect = "generic",
        rate: float = 10.0,
        refuse_topics: Iterable[str] = (),
        max_messages_per_second: int | None = None,
        ping_interval: float | None = None,
        record: bool = True,
        max_size: int | None = 2**24,
        credentials: Credentials | None = None,
        clock_offset: float = 0.0,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("MockVenue listens on loopback only")
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self.host = host
        self.port = port
        self.rate = rate
        self.core = VenueCore(
            dialect=dialect,
            refuse_topics=set(refuse_topics),
            max_messages_per_second=max_messages_per_second,
            record=record,
        )
        if credentials is not None:
            self.core.auth = VenueAuth(credentials, self.core.server.name, clock_offset=clock_offset)
        self.connections: list[VenueConnection] = []
        self.accepted = 0
        self.refused = 0
        self._ping_interval = ping_interval
        self._max_size = max_size
        self._server: Server | None = None
        self._publishing = asyncio.Event()
        self._publishing.set()
        self._skip: dict[str, int] = {}
        self._refuse_count = 0
        self._refuse_until = 0.0
        self._refuse_status = HTTPStatus.SERVICE_UNAVAILABLE
        self._retry_after: float | None = None
        self._changed = asyncio.Condition()

    # Life cycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``ws://host:port`` of the running venue."""
        return f"ws://{self.host}:{self.port}"

    @property
    def received(self) -> list[tuple[int, str | bytes]]:
        """Every frame clients sent, as (connection number, frame)."""
        return self.core.received

    async def start(self) -> MockVenue:
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            ping_interval=self._ping_interval,
            max_size=self._max_size,
            max_queue=1024,
            compression=None,
        )
        sockets = list(self._server.sockets)
        self.port = sockets[0].getsockname()[1]
        log.info("mock venue listening on %s (%s dialect)", self.url, self.core.server.name)
        return self

    async def stop(self, code: int = 1001, reason: str = "going away") -> None:
        """Close every connection with ``code`` and stop listening; leaves no task behind."""
        server, self._server = self._server, None
        if server is None:
            return
        for conn in list(self.connections):
            if conn.half_open:
                conn.ws.transport.abort()
        server.close(close_connections=True)
        await server.wait_closed()
        for conn in list(self.connections):
            await self._cancel_tasks(conn)

    async def restart(self) -> None:
        """Stop (closing connections with 1012 "service restart") and listen again on the same port."""
        await self.stop(1012, "service restart")
        await self.start()

    async def __aenter__(self) -> MockVenue:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # Waiting without guessing ---------------------------------------------------------------------
    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (checked on every venue change), at most ``timeout``."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def wait_connections(self, n: int, timeout: float = 5.0) -> None:
        """Wait until ``n`` connections are open."""
        await self.wait_for(lambda: len(self.connections) >= n, timeout)

    async def wait_subscribed(self, *topics: str, timeout: float = 5.0) -> None:
        """Wait until some open connection is subscribed to every one of ``topics``."""
        await self.wait_for(lambda: any(set(topics) <= set(c.topics) for c in self.connections), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # Publishing -----------------------------------------------------------------------------------
    async def publish(self, topic: str, payload: Any = None) -> int:
        """Send one data message on ``topic`` to every subscriber now; returns how many got it."""
        frame = self.core.data_frame(topic, payload, self._skip.pop(topic, 0))
        sent = 0
        for conn in list(self.connections):
            if topic in conn.session.topics and not conn.half_open:
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(frame)
                    sent += 1
        return sent

    def prebuild(self, topic: str, count: int, payload: Any = None) -> bytes:
        """``count`` data frames on ``topic``, serialized as server WebSocket frames, concatenated."""
        chunks = []
        for _ in range(count):
            text = self.core.data_frame(topic, payload).encode()
            chunks.append(WsFrame(Opcode.TEXT, text).serialize(mask=False))
        return b"".join(chunks)

    async def blast(self, data: bytes, conn: VenueConnection | None = None, chunk: int = 1 << 16) -> None:
        """Write pre-built frames to one connection (the newest by default) as fast as it drains."""
        target = conn or self.connections[-1]
        transport = target.ws.transport
        for start in range(0, len(data), chunk):
            target.write_raw(data[start : start + chunk])
            while transport.get_write_buffer_size() > (1 << 20) and not transport.is_closing():
                await asyncio.sleep(0.0005)

    def pause_publishing(self) -> None:
        """Stop the periodic publisher (connections stay open)."""
        self._publishing.clear()

    def resume_publishing(self) -> None:
        self._publishing.set()

    def skip_sequence(self, topic: str, count: int = 1) -> None:
        """Leave ``count`` sequence numbers out before the next message on ``topic``."""
        self._skip[topic] = self._skip.get(topic, 0) + count

    # Faults -----------------------------------------------------------------------------------------
    def drop_all(self) -> None:
        """Drop every connection abruptly (TCP abort, no close frame)."""
        for conn in list(self.connections):
            transport = conn.ws.transport
            if transport is not None:
                transport.abort()

    async def close_all(self, code: int = 1000, reason: str = "") -> None:
        """Close every connection with a close frame carrying ``code`` and ``reason``."""
        for conn in list(self.connections):
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.close(code, reason)

    def half_open(self) -> None:
        """Stop reading from and writing to every connection: no pongs, no data (a half-open link)."""
        for conn in list(self.connections):
            conn.half_open = True
            transport = conn.ws.transport
            if transport is not None:
                transport.pause_reading()

    def refuse_connections(
        self,
        *,
        count: int = 0,
        seconds: float = 0.0,
        status: int = HTTPStatus.SERVICE_UNAVAILABLE,
        retry_after: float | None = None,
    ) -> None:
        """Refuse the next ``count`` connection attempts and/or all attempts for ``seconds``,
        answering the upgrade with HTTP ``status`` (and ``Retry-After`` when given)."""
        self._refuse_count = count
        self._refuse_until = asyncio.get_running_loop().time() + seconds if seconds else 0.0
        self._refuse_status = HTTPStatus(status)
        self._retry_after = retry_after

    # Server internals -----------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        now = asyncio.get_running_loop().time()
        if self._refuse_count > 0 or now < self._refuse_until:
            self._refuse_count = max(0, self._refuse_count - 1)
            self.refused += 1
            response = connection.respond(self._refuse_status, "refusing connections\n")
            if self._retry_after is not None:
                response.headers["Retry-After"] = f"{self._retry_after:g}"
            return response
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        self.accepted += 1
        conn = VenueConnection(ws, SessionCore(self.core, self.accepted))
        self.connections.append(conn)
        loop = asyncio.get_running_loop()
        publisher = loop.create_task(self._publish_loop(conn))
        conn.tasks.add(publisher)
        await self._notify()
        closing = False
        try:
            async for frame in ws:
                if closing:
                    continue  # drain what the client sent before our close frame reached it
                for action in conn.session.receive(frame, loop.time()):
                    if isinstance(action, Close):
                        # Close in the background and keep reading: a handler blocked in close()
                        # stops draining, reading pauses, and the client's close frame is never read.
                        closing = True
                        task = loop.create_task(ws.close(action.code, action.reason))
                        conn.tasks.add(task)
                        task.add_done_callback(conn.tasks.discard)
                        break
                    if action.delay > 0:
                        task = loop.create_task(self._send_later(ws, action.frame, action.delay))
                        conn.tasks.add(task)
                        task.add_done_callback(conn.tasks.discard)
                    else:
                        await ws.send(action.frame)
                await self._notify()
        except ConnectionClosed:
            pass
        finally:
            await self._cancel_tasks(conn)
            if conn in self.connections:
                self.connections.remove(conn)
            await self._notify()

    async def _cancel_tasks(self, conn: VenueConnection) -> None:
        tasks = [t for t in conn.tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        conn.tasks.clear()

    @staticmethod
    async def _send_later(ws: ServerConnection, frame: str, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)

    async def _publish_loop(self, conn: VenueConnection) -> None:
        if self.rate <= 0:
            return
        period = 1.0 / self.rate
        tick = 0
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(period)
                await self._publishing.wait()
                if conn.half_open:
                    continue
                tick += 1
                for topic in list(conn.session.topics):
                    seq_skip = self._skip.pop(topic, 0)
                    payload = {"px": round(100 + (tick % 50) * 0.25, 2), "qty": 1 + tick % 7}
                    await conn.ws.send(self.core.data_frame(topic, payload, seq_skip))
