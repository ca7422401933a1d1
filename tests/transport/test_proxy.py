"""open_proxied_socket through the in-process HTTP CONNECT and SOCKS5 proxies, on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest

from rxws import _redact
from rxws.exceptions import ConnectFailed, InvalidURL, ProxyAuthFailed, ProxyError
from rxws.testing import HttpConnectProxy, Socks5Proxy
from rxws.transport._proxy import check_proxy_url, open_proxied_socket, redact_proxy_url

pytestmark = pytest.mark.integration

USER, PASSWORD = "trader7", "pw-Secret-123"
ProxyClass = type[HttpConnectProxy] | type[Socks5Proxy]
KINDS = [HttpConnectProxy, Socks5Proxy]


class Echo:
    """A loopback TCP server that echoes each chunk back."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Echo:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(4096):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    async with Echo() as server:
        yield server


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def round_trip(sock: socket.socket, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 5.0)
    finally:
        writer.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("credentials", [None, (USER, PASSWORD)])
async def test_tunnel_carries_bytes_both_ways(
    kind: ProxyClass, credentials: tuple[str, str] | None, echo: Echo
) -> None:
    async with kind(credentials=credentials) as proxy:
        sock = await open_proxied_socket(proxy.url, "127.0.0.1", echo.port, timeout=5.0)
        assert await round_trip(sock, b"hello through the tunnel") == b"hello through the tunnel"
        assert proxy.stats.tunnels == 1
        assert proxy.stats.refusals == 0
        assert proxy.stats.bytes_up == proxy.stats.bytes_down == len(b"hello through the tunnel")


async def test_socks5h_lets_the_proxy_resolve_the_name(echo: Echo) -> None:
    async with Socks5Proxy(credentials=(USER, PASSWORD)) as proxy:
        url = proxy.url.replace("socks5://", "socks5h://")
        sock = await open_proxied_socket(url, "localhost", echo.port, timeout=5.0)
        assert await round_trip(sock, b"x" * 10) == b"x" * 10
        assert proxy.stats.tunnels == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("offered", ["wrong", "none"])
async def test_bad_or_missing_credentials_fail_with_proxy_auth_failed(
    kind: ProxyClass, offered: str, echo: Echo
) -> None:
    async with kind(credentials=(USER, PASSWORD)) as proxy:
        url = (
            proxy.url_with(USER, "not-the-password")
            if offered == "wrong"
            else f"{kind.scheme}://127.0.0.1:{proxy.port}"
        )
        with pytest.raises(ProxyAuthFailed) as caught:
            await open_proxied_socket(url, "127.0.0.1", echo.port, timeout=5.0)
        message = str(caught.value)
        assert f"127.0.0.1:{proxy.port}" in message
        assert "not-the-password" not in message and USER not in message
        if kind is HttpConnectProxy:
            assert caught.value.code == 407 and "407" in message
        assert isinstance(caught.value, ConnectFailed)
        assert (proxy.stats.auth_failures, proxy.stats.refusals, proxy.stats.tunnels) == (1, 1, 0)


@pytest.mark.parametrize(
    ("kind", "code", "words"),
    [
        (HttpConnectProxy, 403, "HTTP 403 Forbidden"),
        (Socks5Proxy, 0x02, "SOCKS5 reply 0x02"),
        (Socks5Proxy, 0x05, "SOCKS5 reply 0x05"),
    ],
)
async def test_a_refusing_proxy_gives_its_answer(kind: ProxyClass, code: int, words: str, echo: Echo) -> None:
    async with kind(credentials=(USER, PASSWORD), refuse=code) as proxy:
        with pytest.raises(ProxyError) as caught:
            await open_proxied_socket(proxy.url, "127.0.0.1", echo.port, timeout=5.0)
    assert not isinstance(caught.value, ProxyAuthFailed)
    assert caught.value.code == code
    assert words in str(caught.value)
    assert PASSWORD not in str(caught.value) and USER not in str(caught.value)
    assert proxy.stats.refusals == 1 and proxy.stats.tunnels == 0


@pytest.mark.parametrize(("kind", "code"), [(HttpConnectProxy, 502), (Socks5Proxy, 0x05)])
async def test_a_target_that_refuses_is_reported_by_the_proxy(kind: ProxyClass, code: int) -> None:
    async with kind() as proxy:
        with pytest.raises(ProxyError) as caught:
            await open_proxied_socket(proxy.url, "127.0.0.1", free_port(), timeout=5.0)
    assert caught.value.code == code


@pytest.mark.parametrize(("kind", "code"), [(HttpConnectProxy, 403), (Socks5Proxy, 0x02)])
async def test_test_proxies_tunnel_only_to_loopback(kind: ProxyClass, code: int) -> None:
    async with kind() as proxy:
        with pytest.raises(ProxyError) as caught:
            await open_proxied_socket(proxy.url, "192.0.2.1", 443, timeout=5.0)  # TEST-NET-1, never dialled
    assert caught.value.code == code


@pytest.mark.parametrize("kind", KINDS)
async def test_a_proxy_that_dies_mid_handshake(kind: ProxyClass, echo: Echo) -> None:
    async with kind(credentials=(USER, PASSWORD), hang_up=True) as proxy:
        with pytest.raises(ProxyError) as caught:
            await open_proxied_socket(proxy.url, "127.0.0.1", echo.port, timeout=5.0)
    assert caught.value.code is None
    assert not isinstance(caught.value, ProxyAuthFailed)
    assert "closed" in str(caught.value) or "broke off" in str(caught.value)
    assert proxy.stats.hang_ups == 1


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_an_unreachable_proxy(scheme: str) -> None:
    port = free_port()
    with pytest.raises(ProxyError, match=f"cannot reach proxy {scheme}://\\*\\*\\*@127.0.0.1:{port}"):
        await open_proxied_socket(
            f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{port}", "127.0.0.1", 80, timeout=5.0
        )


async def test_a_silent_proxy_times_out() -> None:
    accepted = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # never answers; returns when the client gives up
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ProxyError, match="timed out"):
            await open_proxied_socket(f"socks5://127.0.0.1:{port}", "127.0.0.1", 80, timeout=0.3)
        assert accepted.is_set()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1:21", "scheme"),
        ("http://127.0.0.1:8080/path", "no path"),
        ("socks5://:1080", "no host"),
        (f"http://{USER}@127.0.0.1:8080", "without a password"),
        (f"socks5://{USER}:{PASSWORD}@127.0.0.1:0", "port 0"),
        ("", "expected a proxy URL"),
    ],
)
def test_check_proxy_url_rejects_unusable_urls_without_showing_credentials(url: str, problem: str) -> None:
    with pytest.raises(InvalidURL, match=problem) as caught:
        check_proxy_url(url)
    assert PASSWORD not in str(caught.value)


def test_credentials_are_registered_as_secrets() -> None:
    proxy = check_proxy_url(f"socks5://{USER}:{PASSWORD}@127.0.0.1:1080")
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == ("127.0.0.1", 1080, USER, PASSWORD)
    assert PASSWORD not in repr(proxy) and USER not in repr(proxy)
    assert _redact.redact(f"login {USER} with {PASSWORD}") == "login *** with ***"
    # short credentials cannot be masked everywhere, but never inside a URL
    assert redact_proxy_url("socks5://u:p@127.0.0.1:1080") == "socks5://***@127.0.0.1:1080"
    assert check_proxy_url("http://[::1]").redacted == "http://[::1]:80"


async def test_no_log_record_carries_the_credentials(caplog: pytest.LogCaptureFixture, echo: Echo) -> None:
    caplog.set_level(logging.DEBUG)
    async with Socks5Proxy(credentials=(USER, PASSWORD)) as proxy:
        url = proxy.url_with(USER, "Wrong-Password-9")
        with pytest.raises(ProxyAuthFailed) as caught:
            await open_proxied_socket(url, "127.0.0.1", echo.port, timeout=5.0)
    logging.getLogger("rxws.transport").error("failed through %s", url, exc_info=caught.value)
    text = "\n".join(caplog.messages) + "\n".join(r.exc_text or "" for r in caplog.records)
    assert "failed through socks5://***@127.0.0.1" in text
    assert "Wrong-Password-9" not in text and USER not in text


@pytest.mark.parametrize("kind", KINDS)
async def test_the_tunnel_socket_has_nagle_off(kind: ProxyClass, echo: Echo) -> None:
    # python-socks makes its sockets with proto=0, which asyncio's own TCP_NODELAY skips
    async with kind() as proxy:
        sock = await open_proxied_socket(proxy.url, "127.0.0.1", echo.port, timeout=5.0)
        try:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            sock.close()
