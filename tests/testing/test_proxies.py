"""The test proxies speak their protocols: raw HTTP CONNECT and SOCKS5 exchanges on loopback."""

from __future__ import annotations

import asyncio
import base64
import struct

import pytest

from rxws.testing import HttpConnectProxy, Socks5Proxy

pytestmark = pytest.mark.integration


async def exchange(
    port: int, request: bytes, *, until: bytes | None = None, size: int | None = None
) -> bytes:
    """Send ``request`` raw; read the answer up to ``until`` (or ``size`` bytes, or the end)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5.0):
            if until is not None:
                return await reader.readuntil(until)
            if size is not None:
                return await reader.readexactly(size)
            return await reader.read()
    finally:
        writer.close()


async def test_http_proxy_answers_other_methods_405_and_bad_targets_400() -> None:
    async with HttpConnectProxy() as proxy:
        got = await exchange(
            proxy.port, b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n", until=b"\r\n\r\n"
        )
        assert got.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n") and b"Allow: CONNECT\r\n" in got
        got = await exchange(proxy.port, b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", until=b"\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 400 ")
        got = await exchange(proxy.port, b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n", until=b"\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 400 ")
    assert proxy.stats.refusals == 3 and proxy.stats.tunnels == 0


async def test_http_proxy_asks_for_basic_credentials_with_407() -> None:
    async with HttpConnectProxy(credentials=("alice", "s3cret")) as proxy:
        request = b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n"
        got = await exchange(proxy.port, request, until=b"\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
        assert b'Proxy-Authenticate: Basic realm="rxws test proxy"\r\n' in got
        good = base64.b64encode(b"alice:s3cret")
        request = b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nproxy-authorization: basic %s\r\n\r\n" % (
            proxy.port,
            good,
        )
        got = await exchange(proxy.port, request, until=b"\r\n\r\n")
        assert got == b"HTTP/1.1 200 Connection established\r\n\r\n"  # a tunnel to the proxy itself
    assert (proxy.stats.auth_failures, proxy.stats.tunnels) == (1, 1)
    assert "s3cret" not in repr(proxy) and "alice" not in repr(proxy)


def socks_connect(command: int, address_type: int, address: bytes, port: int) -> bytes:
    return bytes((5, command, 0, address_type)) + address + struct.pack("!H", port)


async def test_socks5_selects_no_acceptable_method_when_credentials_are_required() -> None:
    async with Socks5Proxy(credentials=("alice", "s3cret")) as proxy:
        assert await exchange(proxy.port, b"\x05\x01\x00") == b"\x05\xff"
    assert proxy.stats.auth_failures == 1


async def test_socks5_username_password_subnegotiation() -> None:
    async with Socks5Proxy(credentials=("alice", "s3cret")) as proxy:
        bad = b"\x05\x01\x02" + b"\x01\x05alice\x05wrong"
        assert await exchange(proxy.port, bad) == b"\x05\x02\x01\x01"
        good = (
            b"\x05\x01\x02"
            + b"\x01\x05alice\x06s3cret"
            + socks_connect(1, 1, bytes((127, 0, 0, 1)), proxy.port)
        )
        reply = await exchange(proxy.port, good, size=2 + 2 + 10)
        assert reply[:4] == b"\x05\x02\x01\x00"  # method 0x02, then sub-negotiation success
        assert reply[4:8] == b"\x05\x00\x00\x01"  # succeeded, IPv4 bound address follows
    assert (proxy.stats.auth_failures, proxy.stats.tunnels) == (1, 1)


@pytest.mark.parametrize(
    ("request_bytes", "reply_code"),
    [
        (socks_connect(2, 1, bytes((127, 0, 0, 1)), 80), 0x07),  # BIND: command not supported
        (socks_connect(1, 9, b"", 80), 0x08),  # unknown address type
        (socks_connect(1, 3, b"\x0bexample.com", 80), 0x02),  # not loopback: not allowed by ruleset
    ],
)
async def test_socks5_reply_codes(request_bytes: bytes, reply_code: int) -> None:
    async with Socks5Proxy() as proxy:
        reply = await exchange(proxy.port, b"\x05\x01\x00" + request_bytes, size=2 + 10)
    assert reply[:2] == b"\x05\x00"
    assert reply[2:4] == bytes((5, reply_code))
    assert proxy.stats.refusals == 1


async def test_close_is_idempotent_and_ends_open_tunnels() -> None:
    proxy = Socks5Proxy()
    await proxy.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"\x05\x01\x00" + socks_connect(1, 1, bytes((127, 0, 0, 1)), proxy.port))
    async with asyncio.timeout(5.0):
        assert (await reader.readexactly(12))[2:4] == b"\x05\x00"
        await proxy.close()
        await proxy.close()
        assert await reader.read() == b""  # the proxy ended the tunnel
    writer.close()
    assert proxy.stats.tunnels == 1
    assert not proxy._handlers


async def test_an_ipv6_loopback_proxy_url_is_bracketed() -> None:
    async with HttpConnectProxy(host="::1", credentials=("alice", "s3cret")) as proxy:
        assert proxy.url == f"http://alice:s3cret@[::1]:{proxy.port}"
        assert repr(proxy) == f"HttpConnectProxy(http://***@[::1]:{proxy.port})"
