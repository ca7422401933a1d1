"""The fleet ledger's costs, for ``bench_ratelimit.py``: shared acquires through Redis beside the
in-memory ones, and the event loop's longest stall while Redis is slow.

Starts a throwaway ``redis-server`` on a free loopback port (skipped, and said so, when there is
none: ``make services`` installs it). Figures:

- ``acquire_connect`` p50/p99 in µs: in memory (a ``VenueRateLimiter`` without a ledger), through
  the :class:`~rxws.ratelimit.fleet.FleetLedger` (``acquire_connect_async``: one script deciding a
  shared window and a lease cap), and through the older synchronous ``RedisLedger`` (blocking);
- ``acquire_message`` p50/p99 with a shared per-IP window (blocks granted in advance: most calls
  never leave the process);
- the longest stall of a 5 ms heartbeat task while another Redis connection runs ``DEBUG SLEEP``
  (Redis answers nothing for ``slow`` seconds) and 20 tasks keep asking the ledger: the async
  ledger's stall against its ``timeout``, beside the synchronous ledger's on the same loop.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rxws.ratelimit import Rule, Scope, SlidingWindow, VenueRateLimiter


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pcts(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_us": statistics.median(samples) * 1e6,
        "p99_us": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e6,
        "n": len(samples),
    }


async def _timed_async(call: Callable[[int], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - t0)
    return out


def _timed(call: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - t0)
    return out


async def _stall_while_slow(
    url: str, prefix: str, slow: float, asker: Callable[[], Awaitable[None]]
) -> float:
    """The longest heartbeat lateness while Redis sleeps ``slow`` seconds and ``asker`` runs."""
    import redis.asyncio as aioredis

    admin = aioredis.Redis.from_url(url)
    stop = asyncio.Event()
    worst = 0.0

    async def beat() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.005)
            last = now

    async def ask() -> None:
        while not stop.is_set():
            await asker()
            await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(beat()), *(asyncio.create_task(ask()) for _ in range(20))]
    await asyncio.sleep(0.1)
    await admin.execute_command("DEBUG", "SLEEP", repr(slow))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*tasks)
    await admin.aclose()
    return worst


async def _run(url: str, n: int, slow: float) -> dict[str, Any]:
    import redis

    from rxws.ratelimit.fleet import FleetLedger
    from rxws.ratelimit.redis_store import RedisLedger

    out: dict[str, Any] = {}
    roomy = [Rule(SlidingWindow(10**9, 1.0), Scope.IP)]
    local = VenueRateLimiter(connect=roomy, max_connections={Scope.IP: 10**6})
    out["connect_in_memory"] = _pcts(_timed(lambda i: local.acquire_connect(f"c{i}", 0.0), n))

    ledger = FleetLedger.from_url(url, prefix="bench", timeout=0.25)
    shared = VenueRateLimiter(name="b", ledger=ledger, connect=roomy, max_connections={Scope.IP: 10**6})
    out["connect_fleet_async"] = _pcts(
        await _timed_async(lambda i: shared.acquire_connect_async(f"c{i}", 0.0), n)
    )
    for i in range(n):
        shared.release_connection(f"c{i}", 0.0)

    sync_client = redis.Redis.from_url(url)
    sync = VenueRateLimiter(
        connect=[
            Rule(RedisLedger(sync_client, prefix="bench-sync").sliding_window("c", 10**9, 1.0), Scope.IP)
        ]
    )
    out["connect_sync_ledger"] = _pcts(_timed(lambda i: sync.acquire_connect(f"c{i}", 0.0), n))

    mem = VenueRateLimiter(message=[Rule(SlidingWindow(10**9, 1.0), Scope.IP)])
    out["message_in_memory"] = _pcts(_timed(lambda i: mem.acquire_message("m", 0.0), n * 10))

    messages = VenueRateLimiter(name="m", ledger=ledger, message=[Rule(SlidingWindow(10**9, 1.0), Scope.IP)])
    await messages.acquire_connect_async("m", 0.0)
    samples: list[float] = []
    calls_before = ledger.calls
    while len(samples) < n * 10:
        t0 = time.perf_counter()
        d = messages.acquire_message("m", 0.0)
        samples.append(time.perf_counter() - t0)
        if not d.allowed:
            await asyncio.sleep(d.retry_after)
    calls = ledger.calls
    out["message_fleet_blocks"] = {**_pcts(samples), "ledger_calls": calls - calls_before}

    async def fleet_ask() -> None:
        await shared.acquire_connect_async(shared.connection_id("s"), 0.0)

    out["stall_fleet_s"] = await _stall_while_slow(url, "bench", slow, fleet_ask)
    out["ledger_timeout_s"] = ledger.timeout
    await asyncio.sleep(slow)  # let Redis wake and the ledger see it again
    for _ in range(200):
        if ledger.available:
            break
        await asyncio.sleep(0.05)

    async def sync_ask() -> None:
        sync.acquire_connect(shared.connection_id("y"), 0.0)

    out["stall_sync_ledger_s"] = await _stall_while_slow(url, "bench", slow, sync_ask)
    out["redis_slow_s"] = slow
    sync_client.close()
    await ledger.aclose()
    return out


def bench_fleet(quick: bool) -> dict[str, Any] | None:
    """Every figure above, or None when no ``redis-server`` or redis-py is available."""
    binary = shutil.which("redis-server")
    try:
        import redis  # noqa: F401
    except ImportError:
        return None
    if binary is None:
        return None
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--enable-debug-command", "yes"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        return None
                    time.sleep(0.02)
            return asyncio.run(_run(f"redis://127.0.0.1:{port}/0", 300 if quick else 2000, 1.0))
        finally:
            proc.kill()
            proc.wait()


def print_fleet(result: dict[str, Any] | None) -> None:
    """The fleet table (or why it was skipped)."""
    print()
    if result is None:
        print("fleet ledger: skipped (needs redis-server and redis-py: make services)")
        return
    print("fleet ledger (real redis-server on loopback), µs per call")
    print(f"{'call':44} {'p50':>8} {'p99':>8}")
    for key, label in (
        ("connect_in_memory", "acquire_connect, in memory"),
        ("connect_fleet_async", "acquire_connect_async, FleetLedger (Redis)"),
        ("connect_sync_ledger", "acquire_connect, sync RedisLedger (blocks)"),
        ("message_in_memory", "acquire_message, in memory"),
        ("message_fleet_blocks", "acquire_message, FleetLedger blocks"),
    ):
        row = result[key]
        print(f"{label:44} {row['p50_us']:>8.1f} {row['p99_us']:>8.1f}")
    blocks = result["message_fleet_blocks"]
    print(f"  ({blocks['n']} shared messages took {blocks['ledger_calls']} ledger round trips)")
    print(
        f"longest loop stall while Redis sleeps {result['redis_slow_s']:g}s: "
        f"FleetLedger {result['stall_fleet_s'] * 1e3:.1f} ms (timeout {result['ledger_timeout_s'] * 1e3:.0f} ms), "
        f"sync RedisLedger {result['stall_sync_ledger_s'] * 1e3:.1f} ms"
    )
