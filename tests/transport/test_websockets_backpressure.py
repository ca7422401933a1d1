"""Honest writes over a real loopback socket: a venue that stops reading.

The server is a ``websockets`` server whose handler never calls ``recv``: once its ``max_queue``
fills it stops reading the socket, the kernel buffers fill, and the client's transport goes above
its write high-water mark. 50,000 sends of 1 KB: the ones reported done are bounded by what the
socket took plus the high-water mark; the rest wait in the bounded outbound queue or fail with a
typed error (and a visible ``MessageDropped``); they complete, in order, once the venue reads
again, or all fail at a drop with one ``OutboundFailed``.
"""

from __future__ import annotations

import asyncio
import fcntl
import struct
import sys
import termios
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from rxws import ConnectionLost, RateLimitExceeded, WebSocketClient
from rxws.events import MessageDropped, OutboundFailed
from rxws.protocols import GenericJson
from rxws.transport.websockets import WebsocketsLink

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the kernel's socket queues")

SENDS = 50_000
HIGH = 64 * 1024
MAX_QUEUE = 1000
BLOB = "x" * 1000


class _Counting(ServerConnection):
    """A server connection that counts the bytes it read off the socket."""

    taken = 0

    def data_received(self, data: bytes) -> None:
        self.taken += len(data)
        super().data_received(data)


class Venue:
    """A websockets server that reads nothing until ``release`` is set, then reads everything."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.received: list[str] = []
        self.conns: list[_Counting] = []
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        assert isinstance(ws, _Counting)
        self.conns.append(ws)
        await self.release.wait()
        async for message in ws:
            self.received.append(str(message))


@pytest.fixture
async def venue(no_leaked_tasks: None) -> AsyncIterator[Venue]:
    v = Venue()
    async with serve(
        v.handler, "127.0.0.1", 0, max_queue=4, ping_interval=None, create_connection=_Counting
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        v.url = f"ws://127.0.0.1:{port}/ws"
        yield v
        v.release.set()


def _queue_bytes(sock: Any, request: int) -> int:
    value: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0]
    return value


class Run:
    def __init__(self, client: WebSocketClient) -> None:
        self.client = client
        self.done: list[int] = []
        self.errors: dict[int, BaseException] = {}
        self.events: list[Any] = []
        client.events.subscribe(self.events.append)

    def fire(self) -> None:
        for i in range(SENDS):
            self.client.send({"n": i, "blob": BLOB}).subscribe(
                on_next=lambda _v, i=i: self.done.append(i),
                on_error=lambda e, i=i: self.errors.__setitem__(i, e),
            )

    async def until(self, predicate: Any, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)


async def _stalled(venue: Venue) -> tuple[WebSocketClient, Run]:
    client = WebSocketClient(
        venue.url,
        protocol=GenericJson(),
        ping_interval=None,
        max_outbound_queue=MAX_QUEUE,
        write_high_water=HIGH,
    )
    await client.connect()
    run = Run(client)
    run.fire()
    await run.until(lambda: bool(venue.conns))
    server = venue.conns[0]
    # the venue stops reading (its queue is full) and the client's link is above its mark
    await run.until(lambda: not server.transport.is_reading() and client._session.blocked)
    return client, run


def _wire(i: int) -> int:
    payload = len(GenericJson().encode({"n": i, "blob": BLOB}).encode())
    return payload + 2 + 2 + 4  # header, 16-bit length, mask


async def test_a_venue_that_stops_reading_bounds_done_sends_memory_and_flushes_in_order(venue: Venue) -> None:
    client, run = await _stalled(venue)
    server = venue.conns[0]
    link = client._session.link
    assert isinstance(link, WebsocketsLink)
    sock = link.connection.transport.get_extra_info("socket")
    server_sock = server.transport.get_extra_info("socket")
    # What the socket took: read by the server, waiting in the server's kernel receive queue,
    # and waiting in the client's kernel send queue.
    took = server.taken + _queue_bytes(server_sock, termios.FIONREAD) + _queue_bytes(sock, termios.TIOCOUTQ)
    done_bytes = sum(_wire(i) for i in run.done)
    assert run.done == list(range(len(run.done)))
    assert done_bytes <= took + HIGH, (done_bytes, took)
    assert len(run.done) < SENDS // 2
    # everything else waits (bounded by max_outbound_queue) or failed at once with a typed error
    waiting = [i for i in range(SENDS) if i not in run.errors and i >= len(run.done)]
    assert len(waiting) <= MAX_QUEUE
    assert client._session.queued + client._session.holding == len(waiting)
    assert len(run.done) + len(waiting) + len(run.errors) == SENDS
    assert all(isinstance(e, RateLimitExceeded) for e in run.errors.values())
    dropped = [e for e in run.events if isinstance(e, MessageDropped)]
    assert len(dropped) == len(run.errors) == SENDS - len(run.done) - len(waiting)
    # memory stays bounded: the transport holds at most the mark plus the frame that crossed it
    assert link.buffered <= HIGH + _wire(0)
    assert link.backlog == 0
    # the venue reads again: every waiting send completes, and the venue got them all, in order
    accepted = len(run.done) + len(waiting)
    venue.release.set()
    await run.until(lambda: len(run.done) == accepted and len(venue.received) == accepted)
    assert run.done == list(range(accepted))
    assert [int(m.split('"n":')[1].split(",")[0]) for m in venue.received] == list(range(accepted))
    assert not client._session.queued and not client._session.holding and not client._session.blocked
    await client.close()


async def test_a_drop_fails_every_unwritten_frame_with_one_event(venue: Venue) -> None:
    client, run = await _stalled(venue)
    server = venue.conns[0]
    unwritten = client._session.queued + client._session.holding
    done_before = len(run.done)
    assert unwritten > 0
    server.transport.abort()  # the venue drops the connection (RST)
    await run.until(lambda: any(isinstance(e, OutboundFailed) for e in run.events))
    failed = [e for e in run.events if isinstance(e, OutboundFailed)]
    assert [f.count for f in failed] == [unwritten]
    lost = {i: e for i, e in run.errors.items() if isinstance(e, ConnectionLost)}
    assert sorted(lost) == list(range(done_before, done_before + unwritten))
    assert len(run.done) == done_before
    assert client.stats.outbound_dropped == unwritten + (SENDS - done_before - unwritten)
    await client.close()
