"""URL validation, the native transport's error translation, the memory transport's refusals.

What every transport does on a real socket (refused ports, HTTP refusals, max_size, close codes,
resets) is checked once for all of them in ``tests/transport/conformance``."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

from rxws import InvalidURL, WebSocketClient
from rxws.exceptions import ConnectFailed, ConnectionLost
from rxws.protocols import GenericJson
from rxws.transport.base import LinkOptions, validate_url
from rxws.transport.memory import MemoryTransport
from rxws.transport.websockets import translate_open_error


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
