"""A WebSocketClient against MockVenue over real loopback sockets: one session, its failures, threads."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from rxws import ConnectionState, NotConnected, RequestTimeout, VenueError, WebSocketClient
from rxws.events import DecodeFailed, Disconnected, DisconnectReason, LateReply
from rxws.exceptions import ConnectFailed, ConnectionLost
from rxws.protocols import GenericJson
from rxws.testing import MockVenue

pytestmark = pytest.mark.integration

S = ConnectionState


def make(url: str, **kwargs: Any) -> WebSocketClient:
    kwargs.setdefault("close_timeout", 2.0)
    return WebSocketClient(url, protocol=GenericJson(), **kwargs)


async def test_refused_connection_errors_and_leaves_nothing_running(
    no_leaked_tasks: None, timeline: Callable[..., Any]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make(f"ws://127.0.0.1:{port}")
    tl = timeline(client)
    with pytest.raises(ConnectFailed):
        await asyncio.wait_for(client.connect(), 5.0)
    assert tl.states == [S.DISCONNECTED, S.CONNECTING, S.ERROR]
    (event,) = tl.of(Disconnected)
    assert event.reason is DisconnectReason.NETWORK_ERROR and str(port) in event.detail
    assert client.state_value is S.ERROR
    await client.close()


async def test_async_with_connects_and_closes(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    client = make(venue.url)
    tl = timeline(client)
    async with client as entered:
        assert entered is client and client.state_value is S.CONNECTED
        await venue.wait_connections(1)
    assert tl.states == [S.DISCONNECTED, S.CONNECTING, S.CONNECTED, S.DISCONNECTING, S.DISCONNECTED]
    assert tl.of(Disconnected)[0].reason is DisconnectReason.USER
    assert sorted(tl.completed) == ["events", "state"]
    await venue.wait_for(lambda: not venue.connections)


async def test_session_watch_request_send_close(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    client = make(venue.url)
    tl = timeline(client)
    await client.connect()
    ticks: list[Any] = []
    completed = asyncio.get_running_loop().create_future()
    client.watch("trades.BTC").subscribe(ticks.append, on_completed=lambda: completed.set_result(True))
    await venue.wait_subscribed("trades.BTC")
    assert await client.request("echo", {"x": 1}, timeout=2.0) == {"x": 1}
    with pytest.raises(VenueError) as info:
        await client.request("fail", {"code": 7, "message": "no"}, timeout=2.0)
    assert (info.value.code, info.value.message) == (7, "no")
    await client.send({"op": "note"})
    await venue.publish("trades.BTC", {"px": 1})
    await tl.wait(lambda: any(m["data"] == {"px": 1} for m in ticks))
    close = client.close()
    assert client.close() is close  # idempotent
    await asyncio.wait_for(close, 5.0)
    assert await asyncio.wait_for(completed, 1.0)
    assert client.state_value is S.DISCONNECTED
    with pytest.raises(NotConnected):
        await client.send({"op": "note"})
    await venue.wait_for(lambda: not venue.connections)
    assert any('"op":"note"' in str(frame) for _, frame in venue.received)


async def test_request_timeout_and_late_reply(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    client = make(venue.url)
    tl = timeline(client)
    await client.connect()
    with pytest.raises(RequestTimeout):
        await client.request("sleep", {"seconds": 0.2}, timeout=0.05)
    late = await tl.wait_event(LateReply, timeout=2.0)
    assert "timed out" in late.why
    await client.close()


async def test_requests_in_flight_fail_with_connection_lost_on_a_drop(venue: MockVenue) -> None:
    client = make(venue.url)
    await client.connect()
    slow = client.request("sleep", {"seconds": 5}, timeout=10.0)
    await venue.wait_for(lambda: any("sleep" in str(f) for _, f in venue.received))
    venue.drop_all()
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(slow, 5.0)
    await client.close()


async def test_non_json_frames_are_decode_failures(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    client = make(venue.url)
    tl = timeline(client)
    await client.connect()
    await venue.wait_connections(1)
    ws = venue.connections[0].ws
    await ws.send("garbage")
    await ws.send(b"\xff\xfe\x80")
    await tl.wait_event(DecodeFailed, 2, timeout=2.0)
    assert await client.request("echo", [1], timeout=2.0) == [1]  # the stream goes on
    assert client.state_value is S.CONNECTED
    await client.close()


async def test_frame_over_max_size_closes_with_1009(venue: MockVenue, timeline: Callable[..., Any]) -> None:
    client = make(venue.url, max_size=1000)
    tl = timeline(client)
    await client.connect()
    big = client.request("echo", {"blob": "x" * 5000}, timeout=2.0)
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(big, 5.0)
    event = await tl.wait_event(Disconnected)
    assert (event.reason, event.code) == (DisconnectReason.PROTOCOL_ERROR, 1009)
    assert client.state_value is S.ERROR
    await client.close()


@pytest.mark.parametrize(("code", "state"), [(1001, S.DISCONNECTED), (4000, S.ERROR)])
async def test_peer_close_code_is_reported(
    venue: MockVenue, timeline: Callable[..., Any], code: int, state: ConnectionState
) -> None:
    client = make(venue.url)
    tl = timeline(client)
    await client.connect()
    await venue.wait_connections(1)
    await venue.close_all(code, "bye")
    event = await tl.wait_event(Disconnected)
    assert (event.reason, event.code, event.detail) == (DisconnectReason.REMOTE_CLOSED, code, "bye")
    assert client.state_value is state
    await client.close()


async def test_commands_from_another_thread(venue: MockVenue) -> None:
    client = make(venue.url)
    await client.connect()
    loop_thread = threading.get_ident()
    observed: list[tuple[Any, int]] = []
    handed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

    def worker() -> None:
        sent = client.send({"op": "note", "from": "thread"})
        reply = client.request("echo", {"from": "thread"}, timeout=2.0)
        reply.subscribe(lambda v: observed.append((v, threading.get_ident())))
        loop.call_soon_threadsafe(handed.set_result, (sent, reply))

    thread = threading.Thread(target=worker)
    thread.start()
    sent, reply = await asyncio.wait_for(handed, 2.0)
    assert await asyncio.wait_for(reply, 2.0) == {"from": "thread"}
    await asyncio.wait_for(sent, 2.0)
    thread.join(2.0)
    assert observed == [({"from": "thread"}, loop_thread)]  # observers run on the client's loop
    await client.close()
