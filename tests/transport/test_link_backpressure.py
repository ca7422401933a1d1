"""The Link write contract (rxws.transport.base), on both transports: ``send`` reports whether the
link is still below its high-water mark, ``writable`` says so, ``on_drain`` fires once when a
back-pressured link is below its low-water mark again; nothing piles up in the link meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import TestScheduler
from websockets.asyncio.server import ServerConnection, serve

from rxws.transport.base import LinkOptions
from rxws.transport.memory import MemoryTransport
from rxws.transport.websockets import WebsocketsLink, WebsocketsTransport

FRAME = "y" * 1000


def test_memory_link_reports_back_pressure_and_drains_in_order() -> None:
    scheduler = TestScheduler()
    transport = MemoryTransport(latency=0.5)
    links: list[Any] = []
    transport.open("ws://venue.test/ws", LinkOptions(write_high_water=4000), scheduler).subscribe(
        links.append
    )
    scheduler.advance_to(1.0)
    link, peer = links[0], transport.peer
    drains: list[float] = []
    link.on_drain = lambda: drains.append(scheduler.clock)
    assert link.send("a") is True and link.writable  # a reading peer: straight through
    peer.stop_reading()
    results = [link.send(f"{i}{FRAME}") for i in range(5)]
    # 1001-byte frames: 3 fit under 4000 bytes, the 4th crosses the mark, the 5th is kept too
    assert results == [True, True, True, False, False]
    assert not link.writable and peer.unread == 5 * 1001
    pongs: list[float] = []
    assert link.ping(lambda: pongs.append(scheduler.clock)) is False  # a ping waits its turn
    scheduler.advance_to(5.0)
    assert peer.sent == ["a"] and not drains and not pongs
    scheduler.schedule_absolute(6.0, lambda _s, _st: peer.resume_reading())
    scheduler.advance_to(8.0)
    assert drains == [6.0] and link.writable and peer.unread == 0
    assert peer.sent == ["a"] + [f"{i}{FRAME}" for i in range(5)]
    assert pongs == [7.0]  # arrives at 6.5, answered at 7.0


class _Paused:
    """A websockets server that reads nothing until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.received = 0
        self.conns: list[ServerConnection] = []

    async def handler(self, ws: ServerConnection) -> None:
        self.conns.append(ws)
        await self.release.wait()
        async for _message in ws:
            self.received += 1


@pytest.fixture
async def paused(no_leaked_tasks: None) -> AsyncIterator[tuple[_Paused, str]]:
    server_side = _Paused()
    async with serve(server_side.handler, "127.0.0.1", 0, max_queue=2, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield server_side, f"ws://127.0.0.1:{port}/ws"
        server_side.release.set()


async def test_websockets_link_reports_back_pressure_and_drains(paused: tuple[_Paused, str]) -> None:
    server_side, url = paused
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[Any] = loop.create_future()
    options = LinkOptions(write_high_water=16 * 1024, ping_interval=None, ping_timeout=None)
    WebsocketsTransport().open(url, options, AsyncIOScheduler(loop=loop)).subscribe(
        on_next=opened.set_result, on_error=opened.set_exception
    )
    link = await asyncio.wait_for(opened, 5.0)
    assert isinstance(link, WebsocketsLink)
    drained = asyncio.Event()
    link.on_drain = drained.set
    sent = 0
    async with asyncio.timeout(20.0):  # fill the socket until the link reports the mark (bounded)
        while link.send(FRAME):
            sent += 1
            if sent % 256 == 0:
                await asyncio.sleep(0)  # let the kernel and the server take what they take
            assert sent < 200_000, "the link never reported back-pressure"
    assert not link.writable
    assert 16 * 1024 < link.buffered <= 16 * 1024 + len(FRAME) + 8
    assert link.backlog == 0 and not drained.is_set()
    server_side.release.set()
    await asyncio.wait_for(drained.wait(), 10.0)
    assert link.writable and link.buffered <= 16 * 1024 // 4
    assert link.send("after") is True
    async with asyncio.timeout(10.0):  # everything written arrives, the crossing frame too
        while server_side.received < sent + 2:
            await asyncio.sleep(0.01)
    assert server_side.received == sent + 2
    await asyncio.wait_for(_closed(link), 10.0)


async def _closed(link: WebsocketsLink) -> None:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    link.close(1000, "").subscribe(
        on_completed=lambda: done.done() or done.set_result(None),
        on_error=lambda e: done.done() or done.set_exception(e),
    )
    await done
