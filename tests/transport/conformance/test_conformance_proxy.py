"""Forward proxies, alike on the real-socket transports: a link through HTTP CONNECT and SOCKS5
(with and without credentials), refused credentials, and the credentials kept out of errors."""

from __future__ import annotations

import pytest
from conformance_harness import Harness, make_transport

from rxws.exceptions import ProxyAuthFailed, ProxyError
from rxws.testing import HttpConnectProxy, Socks5Proxy

USER, PASSWORD = "desk-7", "Pr0xy-Secr3t"
PROXIES = [HttpConnectProxy, Socks5Proxy]

pytestmark = pytest.mark.asyncio  # explicit: conftest runs each test on asyncio and uvloop


@pytest.mark.parametrize("kind", PROXIES, ids=["http", "socks5"])
@pytest.mark.parametrize("credentials", [None, (USER, PASSWORD)], ids=["open", "login"])
async def test_a_link_through_the_proxy(
    wire: Harness, kind: type[HttpConnectProxy] | type[Socks5Proxy], credentials: tuple[str, str] | None
) -> None:
    async with kind(credentials=credentials) as proxy:
        wire.transport = make_transport(wire.kind, proxy=proxy.url)
        assert PASSWORD not in repr(wire.transport)
        link, inbox = await wire.open()
        await wire.peer.push("through")
        assert link.send("back") is True
        await wire.until(lambda: inbox.messages == ["through"] and wire.peer.received == ["back"])
        await wire.closed(link)
        assert proxy.stats.tunnels == 1 and proxy.stats.bytes_down > 0


@pytest.mark.parametrize("kind", PROXIES, ids=["http", "socks5"])
async def test_refused_credentials_are_proxy_auth_failed_without_them(
    wire: Harness, kind: type[HttpConnectProxy] | type[Socks5Proxy]
) -> None:
    async with kind(credentials=(USER, PASSWORD)) as proxy:
        wire.transport = make_transport(wire.kind, proxy=proxy.url_with(USER, "Wr0ng-Pa55"))
        with pytest.raises(ProxyAuthFailed) as info:
            await wire.open()
    assert "Wr0ng-Pa55" not in str(info.value) and f"127.0.0.1:{proxy.port}" in str(info.value)
    assert proxy.stats.auth_failures == 1 and not wire.venue.peers  # type: ignore[union-attr]


async def test_a_refusing_proxy_is_a_proxy_error_with_its_answer(wire: Harness) -> None:
    async with HttpConnectProxy(refuse=403) as proxy:
        wire.transport = make_transport(wire.kind, proxy=proxy.url)
        with pytest.raises(ProxyError) as info:
            await wire.open()
    assert info.value.code == 403 and "403" in str(info.value)
