"""The native transport through HTTP CONNECT and SOCKS5 proxies: a whole client session, refusals,
bad credentials, a proxy that dies mid-handshake, and credentials kept out of every output."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import pytest
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxws import ConnectionState, WebSocketClient
from rxws.events import Disconnected
from rxws.exceptions import ConnectFailed, InvalidURL, ProxyAuthFailed, ProxyError, UsageError
from rxws.protocols import GenericJson
from rxws.testing import HttpConnectProxy, MockVenue, Socks5Proxy
from rxws.transport.base import LinkOptions
from rxws.transport.websockets import WebsocketsLink, WebsocketsTransport

pytestmark = pytest.mark.integration

USER, PASSWORD = "desk-42", "Pr0xy-Pa55word"
ProxyClass = type[HttpConnectProxy] | type[Socks5Proxy]
KINDS = [HttpConnectProxy, Socks5Proxy]


def client_through(venue: MockVenue, proxy_url: str) -> WebSocketClient:
    return WebSocketClient(
        venue.url, protocol=GenericJson(), transport=WebsocketsTransport(proxy=proxy_url), open_timeout=5.0
    )


async def connect_error(client: WebSocketClient) -> BaseException:
    """The error ``connect()`` fails with (the test fails if it succeeds)."""
    with pytest.raises(ConnectFailed) as caught:
        await client.connect()
    return caught.value


def outputs(error: BaseException, events: list[object], caplog: pytest.LogCaptureFixture) -> str:
    """Everything a host could print: the error, the client's events, the log."""
    records = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    return "\n".join([str(error), repr(error.args), *map(repr, events), *records])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("credentials", [None, (USER, PASSWORD)])
async def test_a_client_session_through_the_proxy(
    kind: ProxyClass, credentials: tuple[str, str] | None, venue: MockVenue
) -> None:
    async with kind(credentials=credentials) as proxy:
        client = client_through(venue, proxy.url)
        await client.connect()
        try:
            assert await client.request("echo", {"through": kind.scheme}, timeout=5.0) == {
                "through": kind.scheme
            }
        finally:
            await client.close()
        assert proxy.stats.tunnels == 1
        assert proxy.stats.bytes_up > 0 and proxy.stats.bytes_down > 0
    assert client.state_value is ConnectionState.DISCONNECTED


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_credentials_fail_the_connect_without_showing_them(
    kind: ProxyClass, venue: MockVenue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with kind(credentials=(USER, PASSWORD)) as proxy:
        client = client_through(venue, proxy.url_with(USER, "Wr0ng-Passw0rd"))
        events: list[object] = []
        client.events.subscribe(events.append)
        error = await connect_error(client)
        await client.close()
    assert isinstance(error, ProxyAuthFailed)
    assert f"127.0.0.1:{proxy.port}" in str(error)
    if kind is HttpConnectProxy:
        assert error.code == 407
    assert [e.detail for e in events if isinstance(e, Disconnected)] == [str(error)]
    text = outputs(error, events, caplog)
    assert "Wr0ng-Passw0rd" not in text and USER not in text
    assert proxy.stats.auth_failures == 1 and venue.connections == []


@pytest.mark.parametrize(
    ("kind", "code", "says"),
    [(HttpConnectProxy, 403, "HTTP 403 Forbidden"), (Socks5Proxy, 0x02, "0x02"), (Socks5Proxy, 0x05, "0x05")],
)
async def test_a_refusing_proxy(kind: ProxyClass, code: int, says: str, venue: MockVenue) -> None:
    async with kind(credentials=(USER, PASSWORD), refuse=code) as proxy:
        client = client_through(venue, proxy.url)
        error = await connect_error(client)
        await client.close()
    assert type(error) is ProxyError
    assert error.code == code and says in str(error)
    assert PASSWORD not in str(error)
    assert proxy.stats.refusals == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_a_proxy_that_dies_mid_handshake(kind: ProxyClass, venue: MockVenue) -> None:
    async with kind(credentials=(USER, PASSWORD), hang_up=True) as proxy:
        client = client_through(venue, proxy.url)
        error = await connect_error(client)
        await client.close()
    assert type(error) is ProxyError and error.code is None
    assert proxy.stats.hang_ups == 1 and PASSWORD not in str(error)


async def test_an_unreachable_proxy_is_a_proxy_error(venue: MockVenue) -> None:
    async with HttpConnectProxy() as proxy:
        url = proxy.url_with(USER, PASSWORD)
    client = client_through(venue, url)  # the proxy has closed its port
    error = await connect_error(client)
    await client.close()
    assert type(error) is ProxyError and "cannot reach proxy http://***@127.0.0.1" in str(error)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_session_through_the_proxy_logs_no_credentials(
    kind: ProxyClass, venue: MockVenue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with kind(credentials=(USER, PASSWORD)) as proxy:
        client = client_through(venue, proxy.url)
        await client.connect()
        await client.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert any("websockets" in r.name for r in caplog.records)  # the library did log the handshake
    assert PASSWORD not in text and USER not in text


async def test_no_proxy_means_direct_even_with_proxy_variables_set(
    venue: MockVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with HttpConnectProxy() as proxy:
        for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        client = WebSocketClient(venue.url, protocol=GenericJson(), transport=WebsocketsTransport())
        await client.connect()
        await client.close()
    assert proxy.stats.connections == 0


def test_the_transport_repr_masks_the_credentials() -> None:
    transport = WebsocketsTransport(proxy=f"socks5://{USER}:{PASSWORD}@127.0.0.1:1080")
    assert repr(transport) == "WebsocketsTransport(proxy='socks5://***@127.0.0.1:1080', compression=None)"
    assert transport.proxy == "socks5://***@127.0.0.1:1080"
    assert repr(WebsocketsTransport()) == "WebsocketsTransport(proxy=None, compression=None)"


def test_bad_options_are_refused_at_construction() -> None:
    with pytest.raises(InvalidURL, match="scheme"):
        WebsocketsTransport(proxy=f"https://{USER}:{PASSWORD}@proxy.example:443")
    with pytest.raises(UsageError, match="compression"):
        WebsocketsTransport(compression="zstd")


@pytest.mark.parametrize("kind", [None, *KINDS])
async def test_every_link_has_nagle_off(kind: ProxyClass | None, venue: MockVenue) -> None:
    """A small frame must not wait for the peer's delayed ACK (SOCKS tunnels had Nagle on)."""
    async with contextlib.AsyncExitStack() as stack:
        proxy = None if kind is None else await stack.enter_async_context(kind())
        transport = WebsocketsTransport(proxy=None if proxy is None else proxy.url)
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[Any] = loop.create_future()
        transport.open(venue.url, LinkOptions(), AsyncIOScheduler(loop=loop)).subscribe(
            opened.set_result, opened.set_exception
        )
        link = await asyncio.wait_for(opened, 5.0)
        try:
            assert isinstance(link, WebsocketsLink) and link.connection.transport is not None
            sock = link.connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            link.abort()
