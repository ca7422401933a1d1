"""permessage-deflate on the native transport: off by default, negotiated on request, frames intact."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reactivex.scheduler.eventloop import AsyncIOScheduler
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.extensions.permessage_deflate import PerMessageDeflate

from rxws import WebSocketClient
from rxws.protocols import GenericJson
from rxws.testing import HttpConnectProxy
from rxws.transport.base import LinkOptions
from rxws.transport.websockets import WebsocketsLink, WebsocketsTransport

pytestmark = pytest.mark.integration


async def echo_requests(ws: ServerConnection) -> None:
    """Answer GenericJson requests with their params (the echo method), any frame type kept."""
    async for frame in ws:
        if isinstance(frame, bytes):
            await ws.send(frame)
            continue
        request = json.loads(frame)
        await ws.send(json.dumps({"id": request["id"], "result": request.get("params")}))


@pytest.fixture
async def deflate_server() -> AsyncIterator[Server]:
    """A ``websockets`` server that accepts permessage-deflate."""
    async with serve(echo_requests, "127.0.0.1", 0, compression="deflate") as server:
        yield server


def url_of(server: Server) -> str:
    return f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"


async def open_link(url: str, transport: WebsocketsTransport) -> WebsocketsLink:
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[Any] = loop.create_future()
    transport.open(url, LinkOptions(), AsyncIOScheduler(loop=loop)).subscribe(
        opened.set_result, opened.set_exception
    )
    link = await asyncio.wait_for(opened, 5.0)
    assert isinstance(link, WebsocketsLink)
    return link


async def close(link: WebsocketsLink) -> None:
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    link.close().subscribe(on_completed=lambda: closed.set_result(None), on_error=closed.set_exception)
    await asyncio.wait_for(closed, 5.0)


async def test_off_by_default_even_when_the_server_offers_it(deflate_server: Server) -> None:
    link = await open_link(url_of(deflate_server), WebsocketsTransport())
    try:
        assert link.connection.request is not None and link.connection.response is not None
        assert "Sec-WebSocket-Extensions" not in link.connection.request.headers
        assert "Sec-WebSocket-Extensions" not in link.connection.response.headers
        assert link.connection.protocol.extensions == []
    finally:
        await close(link)


async def test_deflate_on_request_is_negotiated_and_frames_round_trip(deflate_server: Server) -> None:
    link = await open_link(url_of(deflate_server), WebsocketsTransport(compression="deflate"))
    try:
        assert link.connection.response is not None
        assert "permessage-deflate" in link.connection.response.headers["Sec-WebSocket-Extensions"]
        assert [type(e) for e in link.connection.protocol.extensions] == [PerMessageDeflate]
        received: list[Any] = []
        got_all = asyncio.Event()

        def on_frame(frame: Any) -> None:
            received.append(frame)
            if len(received) == 3:
                got_all.set()

        link.inbound.subscribe(on_frame)
        text = json.dumps({"op": "echo", "id": 1, "params": {"text": "héllo " * 2000}})
        binary = bytes(range(256)) * 64
        assert link.send(text)
        assert link.send(binary)
        assert link.send(json.dumps({"op": "echo", "id": 2, "params": None}))
        await asyncio.wait_for(got_all.wait(), 5.0)
        assert json.loads(received[0]) == {"id": 1, "result": {"text": "héllo " * 2000}}
        assert received[1] == binary
        assert json.loads(received[2]) == {"id": 2, "result": None}
    finally:
        await close(link)


async def test_deflated_frames_are_smaller_on_the_wire_and_a_client_session_works(
    deflate_server: Server,
) -> None:
    payload = {"text": "bid 101.25 ask 101.26 " * 500}  # 11 kB of repetitive text
    sizes: dict[str | None, int] = {}
    for compression in (None, "deflate"):
        async with HttpConnectProxy() as proxy:  # counts the bytes that cross it
            transport = WebsocketsTransport(proxy=proxy.url, compression=compression)
            client = WebSocketClient(url_of(deflate_server), protocol=GenericJson(), transport=transport)
            await client.connect()
            try:
                assert await client.request("echo", payload, timeout=5.0) == payload
            finally:
                await client.close()
            sizes[compression] = proxy.stats.bytes_down
    assert sizes[None] > 11_000
    assert sizes["deflate"] < sizes[None] / 5
