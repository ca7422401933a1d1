"""URL validation, the native transport's error translation on real loopback, the memory transport."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import TestScheduler

from rxws import InvalidURL, WebSocketClient
from rxws.exceptions import ConnectFailed, ConnectionLost, HandshakeRejected, MessageTooBig, NotConnected
from rxws.protocols import GenericJson
from rxws.testing import MockVenue
from rxws.transport.base import LinkOptions, validate_url
from rxws.transport.memory import MemoryTransport
from rxws.transport.websockets import WebsocketsTransport, translate_open_error


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("venue.example.com/ws", "no scheme"),
        ("http://venue.example.com/ws", "'http'"),
        ("https://venue.example.com/ws", "'https'"),
        ("ws://", "no host"),
        ("wss:///path", "no host"),
        ("ws://host:0", "port 0"),
        ("ws://host:99999", "invalid URL"),
        ("", "expected a ws://"),
    ],
)
def test_invalid_url_is_refused_at_construction(url: str, says: str) -> None:
    transport = MemoryTransport()
    with pytest.raises(InvalidURL) as info:
        WebSocketClient(url, protocol=GenericJson(), transport=transport, scheduler=TestScheduler())
    assert says in str(info.value)
    assert isinstance(info.value, ValueError)
    assert transport.attempts == 0  # no I/O


@pytest.mark.parametrize("url", ["ws://localhost", "wss://venue.example.com:9443/ws?x=1", "ws://[::1]:8080"])
def test_valid_urls_pass(url: str) -> None:
    assert validate_url(url) == url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def open_link(url: str, **options: Any) -> Any:
    """Open one link with the native transport on the running loop; return the link or the error."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    WebsocketsTransport().open(url, LinkOptions(**options), AsyncIOScheduler(loop=loop)).subscribe(
        on_next=lambda link: future.set_result(link), on_error=lambda exc: future.set_result(exc)
    )
    return await asyncio.wait_for(future, 5.0)


async def test_refused_port_is_connect_failed(no_leaked_tasks: None) -> None:
    error = await open_link(f"ws://127.0.0.1:{free_port()}")
    assert type(error) is ConnectFailed
    assert "cannot connect" in str(error)


async def test_http_429_with_retry_after_is_handshake_rejected(venue: MockVenue) -> None:
    venue.refuse_connections(count=1, status=429, retry_after=3)
    error = await open_link(venue.url)
    assert isinstance(error, HandshakeRejected)
    assert (error.status, error.retry_after) == (429, 3.0)
    assert venue.refused == 1


async def test_frame_over_max_size_is_message_too_big_with_1009(venue: MockVenue) -> None:
    link = await open_link(venue.url, max_size=1000)
    ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    link.inbound.subscribe(on_error=ended.set_result, on_completed=lambda: ended.set_result("completed"))
    link.send('{"op":"echo","id":1,"params":{"blob":"' + "x" * 5000 + '"}}')
    error = await asyncio.wait_for(ended, 5.0)
    assert isinstance(error, MessageTooBig)
    with pytest.raises(NotConnected):
        link.send("{}")
    closed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    link.close().subscribe(on_error=closed.set_result, on_completed=lambda: closed.set_result(None))
    await asyncio.wait_for(closed, 5.0)


def test_translate_open_error_keeps_rxws_errors_and_wraps_os_errors() -> None:
    mine = ConnectionLost("x")
    assert translate_open_error(mine, "ws://h") is mine
    wrapped = translate_open_error(ConnectionRefusedError(111, "Connection refused"), "ws://h")
    assert type(wrapped) is ConnectFailed and "Connection refused" in str(wrapped)
    assert type(translate_open_error(TimeoutError(), "ws://h")) is ConnectFailed


# The memory transport ----------------------------------------------------------------------------


def test_memory_transport_refuses_then_opens_after_its_latency() -> None:
    scheduler = TestScheduler()
    transport = MemoryTransport(latency=0.5)
    transport.refuse(1)
    seen: list[Any] = []
    for _ in range(2):
        transport.open("ws://h", LinkOptions(), scheduler).subscribe(
            lambda link: seen.append(("link", scheduler.clock, link)),
            lambda exc: seen.append(("error", scheduler.clock, exc)),
        )
    scheduler.advance_to(1.0)
    assert [(kind, at) for kind, at, _ in seen] == [("error", 0.5), ("link", 0.5)]
    assert isinstance(seen[0][2], ConnectFailed)
    assert transport.attempts == 2 and len(transport.peers) == 1
    assert transport.peer.link is seen[1][2]


def test_memory_link_round_trip_and_close_codes() -> None:
    scheduler = TestScheduler()
    transport = MemoryTransport(latency=0.25)
    links: list[Any] = []
    transport.open("ws://h", LinkOptions(), scheduler).subscribe(links.append)
    scheduler.advance_to(1.0)
    (link,) = links
    inbound: list[Any] = []
    link.inbound.subscribe(inbound.append, lambda e: inbound.append(e), lambda: inbound.append("completed"))
    link.send("hello")
    transport.peer.push({"a": 1})
    transport.peer.close(4000, "bye")
    scheduler.advance_to(2.0)
    assert transport.peer.sent == ["hello"]
    assert inbound == ['{"a":1}', "completed"]
    assert (link.close_code, link.close_reason, link.closed_by_peer) == (4000, "bye", True)
    with pytest.raises(NotConnected):
        link.send("late")


def test_memory_link_drop_errors_inbound() -> None:
    scheduler = TestScheduler()
    transport = MemoryTransport()
    links: list[Any] = []
    transport.open("ws://h", LinkOptions(), scheduler).subscribe(links.append)
    scheduler.advance_to(0.5)
    errors: list[Any] = []
    links[0].inbound.subscribe(on_error=errors.append)
    transport.peer.drop()
    scheduler.advance_to(1.0)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionLost)
    assert not transport.peer.open
