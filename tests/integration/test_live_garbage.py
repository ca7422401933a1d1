"""A venue that writes bytes that are not WebSocket frames: a visible event and a defined state."""

from __future__ import annotations

import asyncio

from rxws import ConnectionState, Disconnected, DisconnectReason, WebSocketClient
from rxws.events import Event
from rxws.protocols import GenericJson
from rxws.testing import MockVenue


async def test_garbage_on_the_wire_is_a_protocol_error(no_leaked_tasks: None) -> None:
    async with MockVenue(rate=0) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
        dropped: asyncio.Future[Disconnected] = asyncio.get_running_loop().create_future()

        def on_event(event: Event) -> None:
            if isinstance(event, Disconnected) and not dropped.done():
                dropped.set_result(event)

        client.events.subscribe(on_event)
        await client.connect()
        await venue.wait_connections(1)
        # a frame header with reserved bits set and a bogus opcode: not WebSocket
        venue.connections[0].write_raw(b"\xff\xff\x00\x01garbage")
        event = await asyncio.wait_for(dropped, 5)
        assert event.reason is DisconnectReason.PROTOCOL_ERROR
        assert event.code == 1002  # the close code the client failed the connection with
        assert client.state_value is ConnectionState.ERROR
        await client.close()
