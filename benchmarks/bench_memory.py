"""Memory: 1,000,000 messages through a watched topic — no growth after warm-up, no leaked tasks.

Pre-built frames from MockVenue go through a real client over loopback; the resident set size
(``/proc/self/statm``) and the live Python object count are read after a warm-up of 100,000
messages and again at the end. Also checked: the client's pending-request table and outbound
queue are empty, and no asyncio task outlives ``client.close()``. With picows installed (the
``fast`` extra) the same run is repeated on ``PicowsTransport``, in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rxws import WebSocketClient
from rxws.protocols import GenericJson
from rxws.testing import MockVenue
from rxws.transport.base import Transport

TOPIC = "mem.T"


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def run(total: int, warmup: int, chunk: int, transport: Transport | None = None) -> dict[str, Any]:
    async with MockVenue(rate=0, record=False) as venue:
        client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None, transport=transport)
        await client.connect()
        received = 0
        target = asyncio.get_running_loop().create_future()
        goal = 0

        def on_message(_m: Any) -> None:
            nonlocal received
            received += 1
            if received == goal and not target.done():
                target.set_result(None)

        sub = client.watch(TOPIC).subscribe(on_message)
        await venue.wait_subscribed(TOPIC)
        samples: list[tuple[int, int, int]] = []
        sent = 0
        while sent < total:
            n = min(chunk, total - sent)
            frames = venue.prebuild(TOPIC, n, {"px": 101.5, "qty": 2})
            goal = sent + n
            target = asyncio.get_running_loop().create_future()
            await venue.blast(frames)
            await asyncio.wait_for(target, 60)
            del frames
            sent += n
            if sent >= warmup:
                gc.collect()
                samples.append((sent, rss_bytes(), len(gc.get_objects())))
        sub.dispose()
        pending, queued = client.pending_requests, client._session.queued
        await client.close()
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    first, last = samples[0], samples[-1]
    return {
        "messages": total,
        "rss_after_warmup_mb": first[1] / 2**20,
        "rss_at_end_mb": last[1] / 2**20,
        "rss_growth_mb": (last[1] - first[1]) / 2**20,
        "objects_after_warmup": first[2],
        "objects_at_end": last[2],
        "object_growth": last[2] - first[2],
        "pending_requests_left": pending,
        "outbound_queued_left": queued,
        "leaked_tasks": len(leaked),
        "target": "no growth after warm-up; no leaked tasks",
    }


def report(r: dict[str, Any]) -> str:
    return (
        f"memory, {r['messages']:,} messages through watch(): RSS {r['rss_after_warmup_mb']:.1f} MB after warm-up"
        f" -> {r['rss_at_end_mb']:.1f} MB at the end ({r['rss_growth_mb']:+.1f} MB); live objects"
        f" {r['objects_after_warmup']:,} -> {r['objects_at_end']:,} ({r['object_growth']:+,});"
        f" leaked tasks {r['leaked_tasks']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--transport", choices=("websockets", "picows"), default="websockets")
    args = parser.parse_args()
    total = 200_000 if args.quick else 1_000_000
    transport: Transport | None = None
    if args.transport == "picows":
        from rxws.transport.picows import PicowsTransport

        transport = PicowsTransport()
    result = asyncio.run(run(total, warmup=total // 5, chunk=100_000, transport=transport))
    print(("picows: " if transport is not None else "") + report(result))
    if transport is None and importlib.util.find_spec("picows") is not None:
        # the same run on picows, in a fresh process (RSS is per process: no allocator leftovers)
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "picows.json"
            cmd = [sys.executable, __file__, "--transport", "picows", "--json", str(out)]
            subprocess.run([*cmd, "--quick"] if args.quick else cmd, check=True, timeout=900)
            result["picows"] = json.loads(out.read_text())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
