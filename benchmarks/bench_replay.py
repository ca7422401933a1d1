"""Replay benchmark: a recorded session served at max speed by ``ReplayVenue``, read by ``watch()``.

The session is recorded for real first (a ``Recorder`` around the native transport, MockVenue
blasting the data frames), then replayed. Ratios are against the raw ``websockets`` anchor of
``bench_client`` (a plain ``recv()`` loop with the same JSON decoder reading the same frames from
MockVenue's pre-built blast), measured in the same run:

* replay: ``ReplayVenue(speed=None)`` → rxws ``watch()``, messages per second;
* replay served to a raw ``websockets`` loop (the server's own cost, no client library);
* recording: MockVenue blast → ``Recorder`` → rxws ``watch()`` (one flushed line per frame).

Every loop is bounded in count and time. Run: ``python benchmarks/bench_replay.py [--json F]``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _cli import run_benchmark
from bench_client import TOPIC, _raw_throughput
from websockets.asyncio.client import connect

from rxws import WebSocketClient
from rxws.protocols import GenericJson
from rxws.protocols.base import json_dumps, json_loads
from rxws.testing import MockVenue, Recorder, ReplayVenue
from rxws.testing.recorder import load_recording
from rxws.transport.websockets import WebsocketsTransport

PAYLOAD = {"px": 100.25, "qty": 3}


async def _watch(url: str, count: int, transport: Any = None, venue: MockVenue | None = None) -> float:
    """Seconds from the subscribe to the ``count``-th message on ``watch()``."""
    client = WebSocketClient(
        url, protocol=GenericJson(), ping_interval=None, detect_gaps=True, transport=transport
    )
    await client.connect()
    done = asyncio.get_running_loop().create_future()
    received = 0

    def on_message(_message: Any) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set_result(None)

    writer = None
    start = time.perf_counter()
    sub = client.watch(TOPIC).subscribe(on_message)
    if venue is not None:  # recording: the mock venue writes once the subscription is in
        await venue.wait_subscribed(TOPIC)
        start = time.perf_counter()
        writer = asyncio.get_running_loop().create_task(venue.blast(venue.prebuild(TOPIC, count, PAYLOAD)))
    await asyncio.wait_for(done, 120)
    elapsed = time.perf_counter() - start
    if writer is not None:
        await writer
    sub.dispose()
    await client.close()
    return elapsed


async def _raw_replay(url: str, count: int) -> float:
    async with connect(url, max_size=2**20, compression=None, ping_interval=None) as ws:
        start = time.perf_counter()
        await ws.send(json_dumps({"op": "subscribe", "id": 1, "args": [TOPIC]}))
        received = 0
        async with asyncio.timeout(120):
            while received < count:
                if json_loads(await ws.recv()).get("topic") == TOPIC:
                    received += 1
        return time.perf_counter() - start


async def main(quick: bool) -> dict[str, Any]:
    count = 20_000 if quick else 100_000
    rounds = 2 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "session.jsonl"
        raw_times, record_times, replay_times, raw_replay_times = [], [], [], []
        async with MockVenue(rate=0, record=False) as venue:
            for _ in range(rounds):
                raw_times.append(await _raw_throughput(venue, venue.prebuild(TOPIC, count, PAYLOAD), count))
            with Recorder(WebsocketsTransport(), path, protocol="generic") as recorder:
                record_times.append(await _watch(venue.url, count, recorder, venue))
        started = time.perf_counter()
        recording = load_recording(path)
        load_s = time.perf_counter() - started
        frames = sum(1 for e in recording.connections[0].entries if e.kind == "in")
        for _ in range(rounds):
            async with ReplayVenue(recording, speed=None) as replay:
                replay_times.append(await _watch(replay.url, count))
            async with ReplayVenue(recording, speed=None) as replay:
                raw_replay_times.append(await _raw_replay(replay.url, count))
        size = path.stat().st_size
    raw = count / min(raw_times)
    replay_rate = count / min(replay_times)
    return {
        "messages": count,
        "recorded_frames": frames,
        "recording_bytes": size,
        "load_s": load_s,
        "raw_msgs_per_s": raw,
        "replay_watch_msgs_per_s": replay_rate,
        "replay_raw_client_msgs_per_s": count / min(raw_replay_times),
        "record_watch_msgs_per_s": count / min(record_times),
        "ratio": replay_rate / raw,
        "raw_client_ratio": count / min(raw_replay_times) / raw,
        "record_ratio": count / min(record_times) / raw,
    }


def report(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"recorded session: {r['messages']:,} data frames, {r['recording_bytes'] / 1e6:.1f} MB,"
            f" loaded in {r['load_s']:.2f}s",
            "measure                                        msgs/s    raw anchor   ratio",
            f"replay (ReplayVenue max speed -> watch)  {r['replay_watch_msgs_per_s']:>12,.0f}  {r['raw_msgs_per_s']:>12,.0f}"
            f"    {r['ratio']:.2f}",
            f"replay -> raw websockets loop            {r['replay_raw_client_msgs_per_s']:>12,.0f}  {r['raw_msgs_per_s']:>12,.0f}"
            f"    {r['raw_client_ratio']:.2f}",
            f"recording (Recorder -> watch)            {r['record_watch_msgs_per_s']:>12,.0f}  {r['raw_msgs_per_s']:>12,.0f}"
            f"    {r['record_ratio']:.2f}",
        ]
    )


if __name__ == "__main__":
    run_benchmark(__doc__, lambda quick: asyncio.run(main(quick)), report)
    sys.exit(0)
