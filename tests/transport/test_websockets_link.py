"""WebsocketsLink details: the synchronous send path keeps order, a raising observer is logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reactivex.scheduler.eventloop import AsyncIOScheduler
from websockets.asyncio.server import ServerConnection, serve

from rxws.exceptions import NotConnected
from rxws.transport.base import LinkOptions
from rxws.transport.websockets import WebsocketsLink, WebsocketsTransport

pytestmark = pytest.mark.integration


async def echo(ws: ServerConnection) -> None:
    async for frame in ws:
        await ws.send(frame)


@pytest.fixture
async def link() -> AsyncIterator[WebsocketsLink]:
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[Any] = loop.create_future()
        WebsocketsTransport().open(
            f"ws://127.0.0.1:{port}", LinkOptions(), AsyncIOScheduler(loop=loop)
        ).subscribe(opened.set_result, opened.set_exception)
        link = await asyncio.wait_for(opened, 5.0)
        yield link
        closed: asyncio.Future[None] = loop.create_future()
        link.close().subscribe(on_completed=lambda: closed.set_result(None), on_error=closed.set_exception)
        await asyncio.wait_for(closed, 5.0)


async def test_frames_sent_synchronously_arrive_in_order_text_and_binary(link: WebsocketsLink) -> None:
    got: list[Any] = []
    done = asyncio.Event()

    def on_frame(frame: Any) -> None:
        got.append(frame)
        if len(got) == 200:
            done.set()

    link.inbound.subscribe(on_frame)
    sent: list[str | bytes] = [f"text {i}" if i % 2 else f"bytes {i}".encode() for i in range(200)]
    assert all(link.send(frame) for frame in sent)  # small frames: below the mark, written at once
    assert link.buffered == 0  # handed to the socket, nothing waiting in the OS transport
    await asyncio.wait_for(done.wait(), 5.0)
    assert got == sent


async def test_an_observer_that_raises_is_logged_and_the_others_still_get_frames(
    link: WebsocketsLink, caplog: pytest.LogCaptureFixture
) -> None:
    good: list[Any] = []
    arrived = asyncio.Event()

    def bad(_frame: Any) -> None:
        raise RuntimeError("host bug")

    link.inbound.subscribe(bad)
    link.inbound.subscribe(lambda frame: (good.append(frame), arrived.set()))
    link.send("ping me")
    await asyncio.wait_for(arrived.wait(), 5.0)
    assert good == ["ping me"]
    errors = [r for r in caplog.records if r.name == "rxws.transport" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "observer of inbound frames raised" in errors[0].getMessage()
    assert errors[0].exc_info is not None and "host bug" in str(errors[0].exc_info[1])


async def test_send_after_close_is_not_connected(link: WebsocketsLink) -> None:
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    link.close().subscribe(on_completed=lambda: closed.set_result(None))
    await asyncio.wait_for(closed, 5.0)
    with pytest.raises(NotConnected):
        link.send("late")


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536])
@pytest.mark.parametrize("text", [True, False])
def test_the_send_fast_path_frames_as_websockets_does(
    length: int, text: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link frames a data message itself (no extensions): the same bytes, mask aside, as
    ``websockets``' own serializer, at each length encoding's edges (7-bit, 16-bit, 64-bit)."""
    import secrets

    from websockets.frames import Frame, Opcode

    from rxws.transport import _ws_connection as ws_transport

    payload: str | bytes = "é" * (length // 2) + "a" * (length % 2) if text else bytes(range(256)) * 300
    if not text:
        payload = payload[:length]
    monkeypatch.setattr(ws_transport, "_urandom", lambda n: b"\x01\x02\x03\x04"[:n])
    monkeypatch.setattr(secrets, "token_bytes", lambda n=None: b"\x01\x02\x03\x04")
    data = payload.encode() if isinstance(payload, str) else payload
    expected = Frame(Opcode.TEXT if text else Opcode.BINARY, data).serialize(mask=True, extensions=[])
    assert ws_transport._client_frame(payload) == expected
