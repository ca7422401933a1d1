"""The transport conformance suite's two sides: a link under test and the venue's side of it.

One :class:`Harness` per transport kind. ``memory`` plays the venue with
:class:`~rxws.transport.memory.MemoryPeer` in virtual time (``until`` advances a TestScheduler);
``websockets`` and ``picows`` open real loopback connections to a ``websockets`` server
(:class:`SocketVenue`) whose every connection the test drives through :class:`SocketPeer`.
Every wait is on a condition, bounded in steps (virtual) or in time (real).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Callable, Sequence
from typing import Any

from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import TestScheduler
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rxws.transport.base import Frame, Link, LinkOptions, Transport
from rxws.transport.memory import MemoryTransport

KINDS = ("memory", "websockets", "picows")
WIRE_KINDS = ("websockets", "picows")


def make_transport(kind: str, proxy: str | None = None) -> Transport:
    """A fresh transport of ``kind`` (picows only where it is installed: the caller skips)."""
    if kind == "websockets":
        from rxws.transport.websockets import WebsocketsTransport

        return WebsocketsTransport(proxy=proxy)
    if kind == "picows":
        from rxws.transport.picows import PicowsTransport

        return PicowsTransport(proxy=proxy)
    return MemoryTransport(latency=0.01)


class Inbox:
    """What a link's ``inbound`` delivered: messages, then at most one end."""

    def __init__(self) -> None:
        self.messages: list[Frame] = []
        self.error: Exception | None = None
        self.completed = False

    @property
    def ended(self) -> bool:
        return self.completed or self.error is not None

    def attach(self, link: Link) -> None:
        link.inbound.subscribe(self.messages.append, self._failed, self._done)

    def _failed(self, error: Exception) -> None:
        self.error = error

    def _done(self) -> None:
        self.completed = True


class SocketPeer:
    """The venue's side of one real connection (a ``websockets`` server connection)."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.received: list[Frame] = []
        self.finished = asyncio.Event()

    @property
    def headers(self) -> Headers:
        return self.ws.request.headers if self.ws.request is not None else Headers()

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    @property
    def client_close(self) -> tuple[int | None, str] | None:
        """The client's close frame (code, reason), once the connection is closed."""
        rcvd = self.ws.protocol.close_rcvd
        return None if rcvd is None else (rcvd.code, rcvd.reason)

    async def push(self, frame: Frame) -> None:
        await self.ws.send(frame)

    async def push_fragments(self, parts: Sequence[Frame]) -> None:
        await self.ws.send(list(parts))

    def push_raw(self, data: bytes) -> None:
        """Write raw bytes (e.g. a hand-built frame) on the socket."""
        assert self.ws.transport is not None
        self.ws.transport.write(data)

    async def ping_client(self) -> None:
        """Ping the client; return once its pong arrived."""
        pong = await self.ws.ping()
        await asyncio.wait_for(pong, 10.0)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)

    def drop(self) -> None:
        """Reset the connection (RST: SO_LINGER 0, then abort), no close frame."""
        transport = self.ws.transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def stop_reading(self) -> None:
        self.ws.transport.pause_reading()

    def resume_reading(self) -> None:
        self.ws.transport.resume_reading()

    def half_open(self) -> None:
        """Read nothing more: the client's pings go unanswered."""
        self.ws.transport.pause_reading()


def _select_subprotocol(_connection: ServerConnection, offered: Sequence[str]) -> Any:
    """The venue speaks subprotocol ``v2``; a client offering none (or only others) gets none."""
    return "v2" if "v2" in offered else None


class SocketVenue:
    """A loopback ``websockets`` server for the suite: records connections, can refuse or greet."""

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.peers: list[SocketPeer] = []
        self.greeting: list[Frame] = []
        self.refuse: tuple[int, float | None] | None = None
        self.hold: asyncio.Event | None = None
        """When set, each upgrade request waits for this event before it is answered."""
        self.upgrading: list[ServerConnection] = []
        """Every connection whose upgrade request arrived, in order."""
        self.url = ""
        self._server: Server | None = None

    async def start(self) -> SocketVenue:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            ssl=self.tls,
            select_subprotocol=_select_subprotocol,
            process_request=self._process_request,
            ping_interval=None,
            max_size=None,
            compression=None,
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"{'wss' if self.tls else 'ws'}://127.0.0.1:{port}/ws"
        return self

    async def stop(self) -> None:
        for peer in self.peers:  # a paused (half-open) connection would hold the close for its timeout
            if peer.ws.transport is not None:
                peer.ws.transport.abort()
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), 10.0)

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.upgrading.append(connection)
        if self.hold is not None:
            await self.hold.wait()
        if self.refuse is None:
            return None
        status, retry_after = self.refuse
        response = connection.respond(status, "refused by the conformance venue\n")
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    async def _handler(self, ws: ServerConnection) -> None:
        peer = SocketPeer(ws)
        self.peers.append(peer)
        try:
            for frame in self.greeting:
                await ws.send(frame)
            async for message in ws:
                peer.received.append(message)
        except ConnectionClosed:
            pass
        finally:
            peer.finished.set()


class Harness:
    """Opens links of one transport kind to one venue and waits on conditions."""

    def __init__(self, kind: str, venue: SocketVenue | None = None) -> None:
        self.kind = kind
        self.transport = make_transport(kind)
        self.venue = venue
        self.scheduler = TestScheduler() if kind == "memory" else None
        self.links: list[Link] = []
        self._opened = 0  # links opened to self.venue

    @property
    def real(self) -> bool:
        return self.kind != "memory"

    @property
    def url(self) -> str:
        return self.venue.url if self.venue is not None else "ws://venue.test/ws"

    @property
    def peer(self) -> Any:
        """The venue's side of the newest connection (SocketPeer or MemoryPeer)."""
        if isinstance(self.transport, MemoryTransport):
            return self.transport.peer
        assert self.venue is not None
        return self.venue.peers[-1]

    async def open(
        self, *, subscribe: bool = True, url: str | None = None, **options: Any
    ) -> tuple[Link, Inbox]:
        """Open a link (raising what the transport's open reported); ``inbox`` records its inbound."""
        result: list[Any] = []
        scheduler = self.scheduler or AsyncIOScheduler(loop=asyncio.get_running_loop())
        self.transport.open(url or self.url, LinkOptions(**options), scheduler).subscribe(
            on_next=result.append, on_error=result.append
        )
        await self.until(lambda: bool(result))
        if isinstance(result[0], Exception):
            raise result[0]
        link: Link = result[0]
        self.links.append(link)
        self._opened += url is None
        inbox = Inbox()
        if subscribe:
            inbox.attach(link)
        if self.venue is not None and url is None:  # the server has registered this connection
            await self.until(lambda: len(self.venue.peers) >= self._opened)
        return link, inbox

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds: virtual time advanced in 10 ms steps, or real time polled."""
        if self.scheduler is not None:
            for _ in range(int(timeout / 0.01)):
                if predicate():
                    return
                self.scheduler.advance_by(0.01)
            assert predicate(), "condition not met in virtual time"
            return
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.002)

    async def closed(self, link: Link, code: int = 1000, reason: str = "") -> None:
        """``link.close(code, reason)`` and wait for its completion."""
        done: list[object] = []
        link.close(code, reason).subscribe(on_completed=lambda: done.append(1), on_error=done.append)
        await self.until(lambda: bool(done))
        assert done == [1], done

    async def teardown(self) -> None:
        for link in self.links:
            with contextlib.suppress(Exception):
                link.abort()
        if self.real:
            await asyncio.sleep(0)  # let the aborted transports' connection_lost run
        if self.venue is not None:
            await self.venue.stop()
