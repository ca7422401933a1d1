"""FaultProxy against real loopback servers: each fault's observable effect on the other end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import pytest

from rxws import ConnectionState, WebSocketClient
from rxws.events import Disconnected, DisconnectReason
from rxws.protocols import GenericJson
from rxws.testing import FaultProxy, MockVenue

pytestmark = pytest.mark.integration


class Echo:
    """A loopback TCP server that echoes (or only counts, ``echo=False``) what it receives."""

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo
        self.received = 0
        self.handlers: set[asyncio.Task[Any]] = set()
        self.server: asyncio.Server | None = None
        self.changed = asyncio.Event()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/path?q=1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while data := await reader.read(1 << 16):
                self.received += len(data)
                self.changed.set()
                if self.echo:
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self.handlers.discard(task)

    async def __aenter__(self) -> Echo:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self.server.wait_closed()

    async def wait_received(self, n: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.received < n:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def echo(no_leaked_tasks: None) -> AsyncIterator[Echo]:
    async with Echo() as server:
        yield server


async def read_exactly(reader: asyncio.StreamReader, n: int, timeout: float = 10.0) -> bytes:
    async with asyncio.timeout(timeout):
        return await reader.readexactly(n)


async def test_passes_bytes_through_both_ways_and_counts_them(echo: Echo) -> None:
    payload = bytes(range(256)) * 400
    async with FaultProxy(echo.url) as proxy:
        assert proxy.url == f"ws://127.0.0.1:{proxy.port}/path?q=1"
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(payload)
        assert await read_exactly(reader, len(payload)) == payload
        assert proxy.stats.connections == 1 and proxy.connections == 1
        assert proxy.stats.bytes_up == len(payload) == proxy.stats.bytes_down
        writer.close()
        await writer.wait_closed()
    assert proxy.connections == 0
    assert sum(proxy.stats.faults.values()) == 0


async def test_websocket_session_through_the_proxy(
    no_leaked_tasks: None, timeline: Callable[..., Any]
) -> None:
    async with MockVenue(rate=50) as venue, FaultProxy(venue.url) as proxy:
        client = WebSocketClient(proxy.url, protocol=GenericJson())
        ticks: list[Any] = []
        await client.connect()
        client.watch("t.A").subscribe(ticks.append)
        assert await client.request("echo", {"x": 1}, timeout=5.0) == {"x": 1}
        await venue.wait_subscribed("t.A")
        async with asyncio.timeout(5.0):
            while len(ticks) < 3:
                await asyncio.sleep(0.02)
        assert [m["seq"] for m in ticks[:3]] == [1, 2, 3]
        await client.close()


async def test_delay_and_jitter_keep_order_and_add_at_least_the_delay(echo: Echo) -> None:
    delay, jitter, count, size = 0.05, 0.05, 20, 64
    async with FaultProxy(echo.url, seed=3) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        proxy.set("down", delay=delay, jitter=jitter)
        loop = asyncio.get_running_loop()
        lags: list[float] = []
        received = b""
        for i in range(count):
            chunk = bytes([i]) * size
            sent_at = loop.time()
            writer.write(chunk)
            got = await read_exactly(reader, size)
            lags.append(loop.time() - sent_at)
            received += got
        assert received == b"".join(bytes([i]) * size for i in range(count))  # order kept
        assert min(lags) >= delay - 1e-3
        assert proxy.settings("down").delay == delay and proxy.settings("up").delay == 0.0
        writer.close()
        await writer.wait_closed()


async def test_jitter_is_reproducible_with_a_seed(echo: Echo) -> None:
    """Same seed, same per-chunk jitter draws, so the same release order of interleaved bursts."""
    draws: list[list[float]] = []
    for _ in range(2):
        async with FaultProxy(echo.url, seed=11) as proxy:
            draws.append([proxy.rng.uniform(0.0, 1.0) for _ in range(5)])
    assert draws[0] == draws[1]


async def test_a_burst_under_jitter_arrives_in_order(echo: Echo) -> None:
    payload = b"".join(i.to_bytes(4, "big") for i in range(5000))
    async with FaultProxy(echo.url, seed=5) as proxy:
        proxy.set("both", delay=0.001, jitter=0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        for start in range(0, len(payload), 100):  # many small writes: many chunks, random due times
            writer.write(payload[start : start + 100])
            await asyncio.sleep(0)
        assert await read_exactly(reader, len(payload)) == payload
        writer.close()
        await writer.wait_closed()


async def test_stop_reading_builds_back_pressure_on_the_writer_and_clear_resumes(
    no_leaked_tasks: None,
) -> None:
    total = 16 << 20  # far above what the kernel buffers between writer and proxy can absorb (~4-6 MiB)
    async with Echo(echo=False) as sink, FaultProxy(sink.url) as proxy:
        proxy.set("up", stop_reading=True)
        _reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x" * total)
        with pytest.raises(TimeoutError):  # drain can never finish while the proxy does not read
            await asyncio.wait_for(writer.drain(), 0.5)
        assert writer.transport.get_write_buffer_size() > total // 2
        assert sink.received == 0 and proxy.stats.bytes_up == 0
        proxy.clear("up")
        await asyncio.wait_for(writer.drain(), 10.0)
        await sink.wait_received(total)
        assert proxy.stats.bytes_up == total
        writer.close()
        await writer.wait_closed()


async def test_bandwidth_throttle_bounds_throughput(echo: Echo) -> None:
    total, rate = 150_000, 300_000.0  # 0.5 s at the limit
    async with FaultProxy(echo.url) as proxy:
        proxy.set("down", bandwidth=rate)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        started = time.perf_counter()
        writer.write(b"b" * total)
        await read_exactly(reader, total)
        elapsed = time.perf_counter() - started
        assert elapsed >= 0.9 * (total / rate) - 0.02  # a lower bound only: a loaded machine is slower
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("kind", ["fin", "rst"])
async def test_cut_after_ends_the_tcp_stream_with_fin_or_rst(echo: Echo, kind: str) -> None:
    async with FaultProxy(echo.url) as proxy:
        proxy.set("down", cut_after=1000, cut=kind)  # type: ignore[arg-type]
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"c" * 4000)
        assert await read_exactly(reader, 1000) == b"c" * 1000
        if kind == "fin":
            assert await asyncio.wait_for(reader.read(100), 5.0) == b""  # orderly end of stream
        else:
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(100), 5.0)
        assert proxy.stats.faults[f"cut_{kind}"] == 1
        assert proxy.stats.bytes_down == 1000
        writer.close()
        with contextlib.suppress(ConnectionResetError):  # the reset side reports it on close
            await writer.wait_closed()


async def _connected_client(
    venue: MockVenue, proxy: FaultProxy, timeline: Callable[..., Any], **kwargs: Any
) -> tuple[WebSocketClient, Any]:
    client = WebSocketClient(proxy.url, protocol=GenericJson(), close_timeout=1.0, **kwargs)
    tl = timeline(client)
    await client.connect()
    client.watch("t.A").subscribe(lambda _m: None)
    await venue.wait_subscribed("t.A")
    return client, tl


@pytest.mark.parametrize("kind", ["fin", "rst"])
async def test_cut_gives_the_client_an_abrupt_drop_where_a_close_frame_is_clean(
    no_leaked_tasks: None, timeline: Callable[..., Any], kind: str
) -> None:
    async with MockVenue(rate=50) as venue, FaultProxy(venue.url) as proxy:
        client, tl = await _connected_client(venue, proxy, timeline, ping_interval=None)
        proxy.set("down", cut_after=0, cut=kind)  # type: ignore[arg-type]
        dropped: Disconnected = await tl.wait_event(Disconnected)
        assert dropped.reason is DisconnectReason.NETWORK_ERROR and dropped.code is None
        assert client.state_value is ConnectionState.ERROR
        assert proxy.stats.faults[f"cut_{kind}"] == 1
        await client.close()

        proxy.clear()  # the clean contrast: the venue's close frame passes the proxy intact
        client, tl = await _connected_client(venue, proxy, timeline, ping_interval=None)
        await venue.close_all(1001, "bye")
        closed: Disconnected = await tl.wait_event(Disconnected)
        assert closed.reason is DisconnectReason.REMOTE_CLOSED and closed.code == 1001
        assert client.state_value is ConnectionState.DISCONNECTED
        await client.close()


@pytest.mark.parametrize(
    ("direction", "ping_interval", "ping_timeout"),
    [
        ("down", 0.3, 0.3),
        ("up", 0.3, 0.3),
        # A ping every 0.3 s with a 0.6 s deadline: each deadline must still fire, not be
        # replaced by the next ping's.
        ("down", 0.3, 0.6),
    ],
)
async def test_blackhole_makes_the_heartbeat_detect_a_half_open_connection(
    no_leaked_tasks: None,
    timeline: Callable[..., Any],
    direction: Literal["up", "down"],
    ping_interval: float,
    ping_timeout: float,
) -> None:
    async with MockVenue(rate=50) as venue, FaultProxy(venue.url) as proxy:
        client, tl = await _connected_client(
            venue, proxy, timeline, ping_interval=ping_interval, ping_timeout=ping_timeout
        )
        swallowed = proxy.stats.swallowed_up + proxy.stats.swallowed_down
        proxy.set(direction, blackhole=True)
        dropped: Disconnected = await tl.wait_event(Disconnected, timeout=10.0)
        assert dropped.reason is DisconnectReason.HEARTBEAT_TIMEOUT
        # the other side kept sending (data down, pings up); nothing of it got through
        assert proxy.stats.swallowed_up + proxy.stats.swallowed_down > swallowed
        assert proxy.stats.faults["blackhole"] == 1
        await client.close()


async def test_reset_all_resets_every_open_connection(echo: Echo, timeline: Callable[..., Any]) -> None:
    async with FaultProxy(echo.url) as proxy:
        streams = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(3)]
        for reader, writer in streams:
            writer.write(b"hi")
            assert await read_exactly(reader, 2) == b"hi"
        assert proxy.reset_all() == 3
        for reader, writer in streams:
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(10), 5.0)
            writer.close()
        assert proxy.stats.faults["reset"] == 3
        async with asyncio.timeout(5.0):
            while proxy.connections:
                await asyncio.sleep(0.01)


async def test_reset_all_drops_a_websocket_client(
    no_leaked_tasks: None, timeline: Callable[..., Any]
) -> None:
    async with MockVenue(rate=50) as venue, FaultProxy(venue.url) as proxy:
        client, tl = await _connected_client(venue, proxy, timeline, ping_interval=None)
        assert proxy.reset_all() == 1
        dropped: Disconnected = await tl.wait_event(Disconnected)
        assert dropped.reason is DisconnectReason.NETWORK_ERROR
        await venue.wait_for(lambda: not venue.connections)  # the venue's side was reset too
        await client.close()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_close_is_idempotent_and_leaves_no_task_or_socket(echo: Echo) -> None:
    fds = _fds()
    tasks = len(asyncio.all_tasks())
    proxy = FaultProxy(echo.url, seed=1)
    await proxy.start()
    streams = [await asyncio.open_connection("127.0.0.1", proxy.port) for _ in range(4)]
    for reader, writer in streams:
        writer.write(b"ping")
        assert await read_exactly(reader, 4) == b"ping"
    proxy.set("down", delay=0.5)  # bytes held in the delay queue when close() comes
    for _, writer in streams:
        writer.write(b"held")
    await proxy.close()
    await proxy.close()
    assert proxy.connections == 0
    for _, writer in streams:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()
    async with asyncio.timeout(5.0):
        while echo.handlers:
            await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) == tasks
    assert _fds() == fds
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", proxy.port)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="ws://"):
        FaultProxy("wss://example.com/")
    proxy = FaultProxy("ws://127.0.0.1:9/")
    with pytest.raises(ValueError):
        proxy.set("down", delay=-1.0)
    with pytest.raises(ValueError):
        proxy.set("down", bandwidth=0)
    with pytest.raises(ValueError):
        proxy.set("sideways")  # type: ignore[arg-type]
