"""Proxy faults, alike on the real-socket transports: SOCKS5 refusal codes, a proxy that dies
mid-handshake, an unreachable proxy, and TLS (verified) inside the tunnel to a wss:// venue."""

from __future__ import annotations

import socket
import ssl

import pytest
from conformance_harness import Harness, SocketVenue, make_transport

from rxws.exceptions import ConnectFailed, ProxyAuthFailed, ProxyError
from rxws.testing import HttpConnectProxy, Socks5Proxy

USER, PASSWORD = "desk-9", "Tunn3l-Secr3t"
PROXIES = [HttpConnectProxy, Socks5Proxy]
ProxyClass = type[HttpConnectProxy] | type[Socks5Proxy]


@pytest.mark.parametrize("code", [0x02, 0x05], ids=["not-allowed", "refused"])
async def test_a_socks5_refusal_is_a_proxy_error_with_its_reply_code(wire: Harness, code: int) -> None:
    async with Socks5Proxy(credentials=(USER, PASSWORD), refuse=code) as proxy:
        wire.transport = make_transport(wire.kind, proxy=proxy.url)
        with pytest.raises(ProxyError) as info:
            await wire.open()
    assert type(info.value) is ProxyError
    assert info.value.code == code and f"SOCKS5 reply 0x{code:02X}" in str(info.value)
    assert PASSWORD not in str(info.value) and proxy.stats.refusals == 1
    assert not wire.venue.peers  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", PROXIES, ids=["http", "socks5"])
async def test_a_proxy_that_dies_mid_handshake(wire: Harness, kind: ProxyClass) -> None:
    async with kind(credentials=(USER, PASSWORD), hang_up=True) as proxy:
        wire.transport = make_transport(wire.kind, proxy=proxy.url)
        with pytest.raises(ProxyError) as info:
            await wire.open()
    assert not isinstance(info.value, ProxyAuthFailed) and info.value.code is None
    assert PASSWORD not in str(info.value) and proxy.stats.hang_ups == 1


async def test_an_unreachable_proxy(wire: Harness) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wire.transport = make_transport(wire.kind, proxy=f"socks5://{USER}:{PASSWORD}@127.0.0.1:{port}")
    with pytest.raises(ProxyError, match=r"cannot reach proxy socks5://\*\*\*@127\.0\.0\.1") as info:
        await wire.open()
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("kind", PROXIES, ids=["http", "socks5"])
async def test_tls_runs_inside_the_tunnel_and_still_verifies(
    wire: Harness, kind: ProxyClass, tls_venue: tuple[SocketVenue, ssl.SSLContext]
) -> None:
    venue, trusting = tls_venue
    async with kind(credentials=(USER, PASSWORD)) as proxy:
        wire.transport = make_transport(wire.kind, proxy=proxy.url)
        with pytest.raises(ConnectFailed) as refused:  # an untrusted certificate, tunnel or not
            await wire.open(url=venue.url)
        assert "certificate" in str(refused.value).lower()
        link, inbox = await wire.open(url=venue.url, ssl=trusting)
        await venue.peers[-1].push("over TLS, through the proxy")
        await wire.until(lambda: inbox.messages == ["over TLS, through the proxy"])
        await wire.closed(link)
        assert proxy.stats.tunnels == 2
        assert proxy.stats.bytes_up > 0 and proxy.stats.bytes_down > 0
