"""A fleet of real processes on one venue budget: the venue's count, and a holder killed with SIGKILL.

Needs ``redis-server`` (``make services``); each test starts its own on a free loopback port.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis", reason="the redis extra (redis-py) is not installed")

from redis_server import RedisServer, running_redis

from rxws.ratelimit import Scope, VenueRateLimiter
from rxws.ratelimit.fleet import FleetLedger
from rxws.testing import MockVenue

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with running_redis() as made:
        yield made


class CountingVenue(MockVenue):
    """A MockVenue that records the time of every connection attempt (its upgrade request)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.attempts: list[float] = []

    def _process_request(self, connection: Any, request: Any) -> Any:
        self.attempts.append(time.monotonic())
        return super()._process_request(connection, request)


def most_in_any_window(times: list[float], window: float) -> int:
    """The most times in any half-open window [t, t + window)."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times)), default=0)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


async def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
    if not line:
        raise AssertionError(
            f"the worker ended: {proc.wait(timeout=10)} {proc.stderr.read() if proc.stderr else ''}"
        )
    return line


_CLIENTS = """
    import asyncio, json, sys
    from rxws import WebSocketClient
    from rxws.protocols import GenericJson
    from rxws.ratelimit import Headroom, presets
    from rxws.ratelimit.fleet import FleetLedger

    async def main(url, redis_url, prefix, n):
        ledger = FleetLedger.from_url(redis_url, prefix=prefix)
        # the documented 3 per second, with the default 0.25 s of time headroom and no count taken
        limiter = presets.okx(shared=ledger, venue=None, headroom=Headroom(margin=0.25))
        clients = [
            WebSocketClient(url, protocol=GenericJson(), rate_limiter=limiter, open_timeout=60.0)
            for _ in range(n)
        ]
        await asyncio.gather(*(c.connect() for c in clients))
        print(json.dumps({"connected": n}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for c in clients:
            await c.close()
        await ledger.aclose()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def test_four_processes_of_ten_clients_never_exceed_three_per_second(server: RedisServer) -> None:
    prefix = f"okx-{uuid.uuid4().hex[:8]}"
    async with CountingVenue(rate=0) as venue:
        procs = [spawn(_CLIENTS, venue.url, server.url, prefix, "10") for _ in range(4)]
        try:
            for proc in procs:
                assert json.loads(await read_line(proc, 60.0)) == {"connected": 10}
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("close\n")
                proc.stdin.flush()
            for proc in procs:
                assert await asyncio.to_thread(proc.wait, 30) == 0
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert len(venue.attempts) == 40
        assert most_in_any_window(venue.attempts, 1.0) <= 3
        spread = venue.attempts[-1] - venue.attempts[0]
        print(f"40 attempts over {spread:.2f}s, most in any 1 s: {most_in_any_window(venue.attempts, 1.0)}")
        assert spread >= 39 / 3 * 1.0  # paced by the shared window, not just lucky timing


_HOLDER = """
    import asyncio, sys
    from rxws.ratelimit import Scope, VenueRateLimiter
    from rxws.ratelimit.fleet import FleetLedger

    async def main(redis_url, prefix):
        ledger = FleetLedger.from_url(redis_url, prefix=prefix, lease_ttl=1.5, timeout=0.7)
        limiter = VenueRateLimiter(name="k", ledger=ledger, max_connections={Scope.IP: 3})
        for _ in range(3):
            assert (await limiter.acquire_connect_async(limiter.connection_id("held"), 0.0)).allowed
        print("held", flush=True)
        await asyncio.sleep(3600)  # renewing, until killed

    asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_killed_holder_frees_its_slots_within_the_ttl(server: RedisServer) -> None:
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    ttl = 1.5
    ledger = FleetLedger.from_url(server.url, prefix=prefix, lease_ttl=ttl, timeout=0.7)
    limiter = VenueRateLimiter(name="k", ledger=ledger, max_connections={Scope.IP: 3})
    proc = spawn(_HOLDER, server.url, prefix)
    try:
        assert await read_line(proc, 60.0) == "held\n"
        mine = limiter.connection_id("mine")
        assert await limiter.acquire_connect_async(mine, 0.0) == (False, math.inf)
        # still full after more than a TTL: the holder's own timer renews its leases
        renewed_past = time.monotonic() + ttl * 1.5
        while time.monotonic() < renewed_past:
            assert await limiter.acquire_connect_async(mine, 0.0) == (False, math.inf)
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.to_thread(proc.wait, 10)
        while not (await limiter.acquire_connect_async(mine, 0.0)).allowed:
            assert time.monotonic() - killed < ttl + 1.0, "the killed holder's slots did not return"
            await asyncio.sleep(0.02)
        freed_after = time.monotonic() - killed
        print(f"slots back {freed_after:.3f}s after SIGKILL (lease TTL {ttl}s)")
        assert freed_after <= ttl + ledger.timeout + 0.1
        two = [limiter.connection_id("more") for _ in range(3)]
        answers = [(await limiter.acquire_connect_async(c, 0.0)).allowed for c in two]
        assert answers == [True, True, False]  # all three slots came back, and only three
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await ledger.aclose()
