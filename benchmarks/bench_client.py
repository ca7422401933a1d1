"""Client benchmarks: ratios against anchors measured in the same run (DESIGN.md section 5).

* inbound throughput: rxws ``watch()`` vs a raw ``websockets`` loop with the same JSON decoder,
  both reading the same pre-built frames from the same MockVenue over loopback;
* request round trip p50/p99: ``client.request("echo")`` vs raw ``send`` + ``recv``;
* routing: per-message cost with 1,000 watched topics vs 1;
* correlation: per-reply cost with 10,000 requests pending vs 1.

Every loop is bounded in count and time. Run: ``python benchmarks/bench_client.py [--json F]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect

from rxws import WebSocketClient
from rxws.protocols import GenericJson
from rxws.protocols.base import json_dumps, json_loads
from rxws.testing import MockVenue

TOPIC = "bench.T"


async def _raw_throughput(venue: MockVenue, frames: bytes, count: int) -> float:
    async with connect(venue.url, max_size=2**20, compression=None, ping_interval=None) as ws:
        await ws.send(json_dumps({"op": "subscribe", "id": 1, "args": [TOPIC]}))
        json_loads(await ws.recv())  # the ack
        received = 0
        sink: list[Any] = []
        start = time.perf_counter()
        # The venue writes while we read: a raw client reads only as fast as this loop asks.
        writer = asyncio.get_running_loop().create_task(venue.blast(frames))
        async with asyncio.timeout(60):
            while received < count:
                message = json_loads(await ws.recv())
                if message.get("topic") == TOPIC:
                    received += 1
                    sink.append(message) if received == count else None
        elapsed = time.perf_counter() - start
        await writer
        return elapsed


async def _rxws_throughput(venue: MockVenue, frames: bytes, count: int) -> float:
    client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None, detect_gaps=True)
    await client.connect()
    done = asyncio.get_running_loop().create_future()
    received = 0

    def on_message(_message: Any) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set_result(None)

    sub = client.watch(TOPIC).subscribe(on_message)
    await venue.wait_subscribed(TOPIC)
    await asyncio.sleep(0.05)  # let the ack arrive so only data is timed
    start = time.perf_counter()
    writer = asyncio.get_running_loop().create_task(venue.blast(frames))
    await asyncio.wait_for(done, 60)
    elapsed = time.perf_counter() - start
    await writer
    sub.dispose()
    await client.close()
    return elapsed


async def throughput(count: int, rounds: int) -> dict[str, Any]:
    async with MockVenue(rate=0, record=False) as venue:
        raw_times, rx_times = [], []
        for _ in range(rounds):
            frames = venue.prebuild(TOPIC, count, {"px": 100.25, "qty": 3})
            raw_times.append(await _raw_throughput(venue, frames, count))
            frames = venue.prebuild(TOPIC, count, {"px": 100.25, "qty": 3})
            rx_times.append(await _rxws_throughput(venue, frames, count))
    raw = count / min(raw_times)
    rx = count / min(rx_times)
    return {
        "messages": count,
        "raw_msgs_per_s": raw,
        "rxws_msgs_per_s": rx,
        "ratio": rx / raw,
        "target": ">= 0.90",
    }


async def round_trip(count: int) -> dict[str, Any]:
    async with MockVenue(rate=0, record=False) as venue:
        raw: list[float] = []
        rx: list[float] = []
        client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
        await client.connect()
        async with connect(venue.url, compression=None, ping_interval=None) as ws:
            for block in range(count // 100):
                for i in range(100):
                    n = block * 100 + i
                    t0 = time.perf_counter()
                    await ws.send(json_dumps({"op": "echo", "id": n, "params": {"n": n}}))
                    json_loads(await ws.recv())
                    raw.append(time.perf_counter() - t0)
                for i in range(100):
                    t0 = time.perf_counter()
                    await client.request("echo", {"n": i}, timeout=5.0)
                    rx.append(time.perf_counter() - t0)
        await client.close()

    def pct(xs: list[float], q: float) -> float:
        return sorted(xs)[int(q * (len(xs) - 1))] * 1e6

    return {
        "requests": count,
        "raw_p50_us": pct(raw, 0.5),
        "rxws_p50_us": pct(rx, 0.5),
        "raw_p99_us": pct(raw, 0.99),
        "rxws_p99_us": pct(rx, 0.99),
        "p50_ratio": pct(rx, 0.5) / pct(raw, 0.5),
        "p99_ratio": pct(rx, 0.99) / pct(raw, 0.99),
        "target": "<= 1.10",
    }


def _best(fn: Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(repeats))


async def routing(messages: int, repeats: int) -> dict[str, Any]:
    """Per-message decode + route + deliver cost, 1,000 watched topics vs 1 (no sockets).

    Both clients are set up first and their runs alternate, so drift on a shared machine hits
    both sides alike; the best run of each counts.
    """
    async with MockVenue(rate=0, record=False) as venue:
        setups: dict[int, tuple[WebSocketClient, list[str], list[Any]]] = {}
        for n_topics in (1, 1000):
            client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
            await client.connect()
            topics = [f"t.{i}" for i in range(n_topics)]
            subs = [client.watch(t).subscribe(_count) for t in topics]
            frames = [
                json_dumps({"topic": topics[i % n_topics], "seq": i // n_topics + 1, "data": 1})
                for i in range(messages)
            ]
            setups[n_topics] = (client, frames, subs)
        await asyncio.sleep(0.05)  # let the subscribe acks in
        best = {1: float("inf"), 1000: float("inf")}
        for _ in range(repeats):
            for n_topics, (client, frames, _subs) in setups.items():
                feed = client._session.on_frame  # the link's inbound sink: decode, classify, route, deliver
                gc.disable()
                t0 = time.perf_counter()
                for f in frames:
                    feed(f)
                elapsed = (time.perf_counter() - t0) / len(frames)
                gc.enable()
                best[n_topics] = min(best[n_topics], elapsed)
        for client, _frames, subs in setups.values():
            for sub in subs:
                sub.dispose()
            await client.close()
    return {
        "ns_per_msg_1_topic": best[1] * 1e9,
        "ns_per_msg_1000_topics": best[1000] * 1e9,
        "ratio": best[1000] / best[1],
        "target": "<= 1.1",
    }


def _count(_message: Any) -> None:
    pass


async def correlation(replies: int, repeats: int) -> dict[str, Any]:
    """Per-reply correlation cost with 10,000 requests pending vs 1 (no sockets)."""
    async with MockVenue(rate=0, record=False) as venue:
        results = {}
        for background in (1, 10_000):
            client = WebSocketClient(
                venue.url, protocol=GenericJson(), ping_interval=None, max_in_flight=20_000
            )
            await client.connect()
            venue.core.record = False
            # Background requests nobody answers (the venue's "sleep" answers after an hour).
            idle = [client.request("sleep", {"seconds": 3600}, timeout=3600) for _ in range(background)]
            timings = []
            for _ in range(repeats):
                before = set(client._requests.pending._entries)
                for _ in range(replies):
                    client.request("noop", None, timeout=3600)
                pending_ids = [rid for rid in client._requests.pending._entries if rid not in before]
                frames = [json_dumps({"id": rid, "result": 1}) for rid in pending_ids]
                feed = client._session.on_frame
                gc.disable()
                t0 = time.perf_counter()
                for f in frames:
                    feed(f)
                timings.append((time.perf_counter() - t0) / len(frames))
                gc.enable()
            results[background] = min(timings)
            for r in idle:
                r.subscribe(on_error=lambda _e: None)
            await client.close()
    return {
        "ns_per_reply_1_pending": results[1] * 1e9,
        "ns_per_reply_10000_pending": results[10_000] * 1e9,
        "ratio": results[10_000] / results[1],
        "target": "<= 1.1",
    }


async def redundancy(messages: int, repeats: int) -> dict[str, Any]:
    """Per-message cost of redundancy=2 (both copies decoded, merged, one delivered) vs a single
    connection (no sockets: the frames are fed to the sessions' inbound sinks, alternating runs)."""
    async with MockVenue(rate=0, record=False) as venue:
        single = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
        pair = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None, redundancy=2)
        subs = []
        for client in (single, pair):
            await client.connect()
            subs.append(client.watch("t").subscribe(_count))
        await venue.wait_for(lambda: sum("t" in c.topics for c in venue.connections) == 3)
        twin = pair._redundancy._twin  # type: ignore[union-attr]
        assert twin is not None and twin.serving
        frames = [json_dumps({"topic": "t", "seq": i + 1, "data": 1}) for i in range(messages * repeats * 2)]
        one = single._session.on_frame  # type: ignore[union-attr]
        first, second = pair._session.on_frame, twin.on_frame  # type: ignore[union-attr]
        best_single = best_pair = float("inf")
        for r in range(repeats):
            batch = frames[r * messages : (r + 1) * messages]
            gc.disable()
            t0 = time.perf_counter()
            for f in batch:
                one(f)
            best_single = min(best_single, (time.perf_counter() - t0) / messages)
            t0 = time.perf_counter()
            for f in batch:
                first(f)
                second(f)  # the twin's copy of the same message
            best_pair = min(best_pair, (time.perf_counter() - t0) / messages)
            gc.enable()
        for sub in subs:
            sub.dispose()
        await single.close()
        await pair.close()
    return {
        "ns_per_msg_single": best_single * 1e9,
        "ns_per_msg_redundant": best_pair * 1e9,
        "dedup_cost_us": (best_pair - best_single) * 1e6,  # the twin's copy read, merged, dropped
        "merge_cost_us": (best_pair - 2 * best_single) * 1e6,  # beyond reading the copy like any frame
        "target": "<= 1.0 us",
    }


async def main(quick: bool) -> dict[str, Any]:
    count = 50_000 if quick else 200_000
    out = {
        "throughput": await throughput(count, 2 if quick else 3),
        "round_trip": await round_trip(1000 if quick else 4000),
        "routing": await routing(20_000 if quick else 100_000, 3 if quick else 5),
        "correlation": await correlation(2000 if quick else 5000, 3 if quick else 5),
        "redundancy": await redundancy(20_000 if quick else 100_000, 3 if quick else 5),
    }
    return out


def report(results: dict[str, Any]) -> str:
    t, r, ro, c = results["throughput"], results["round_trip"], results["routing"], results["correlation"]
    d = results["redundancy"]
    lines = [
        "measure                                   rxws            anchor          ratio   target",
        f"inbound throughput (msgs/s)          {t['rxws_msgs_per_s']:>12,.0f}  {t['raw_msgs_per_s']:>12,.0f}"
        f"     {t['ratio']:.2f}   >= 0.90",
        f"request round trip p50 (us)          {r['rxws_p50_us']:>12.1f}  {r['raw_p50_us']:>12.1f}"
        f"     {r['p50_ratio']:.2f}   <= 1.10",
        f"request round trip p99 (us)          {r['rxws_p99_us']:>12.1f}  {r['raw_p99_us']:>12.1f}"
        f"     {r['p99_ratio']:.2f}   <= 1.10",
        f"routing ns/msg, 1000 topics vs 1     {ro['ns_per_msg_1000_topics']:>12.0f}  {ro['ns_per_msg_1_topic']:>12.0f}"
        f"     {ro['ratio']:.2f}   <= 1.1",
        f"correlation ns/reply, 10k vs 1       {c['ns_per_reply_10000_pending']:>12.0f}  {c['ns_per_reply_1_pending']:>12.0f}"
        f"     {c['ratio']:.2f}   <= 1.1",
        f"redundancy=2 ns/msg vs single        {d['ns_per_msg_redundant']:>12.0f}  {d['ns_per_msg_single']:>12.0f}"
        f"  +{d['dedup_cost_us']:.2f}us  <= +1.0us (merge alone +{d['merge_cost_us']:.2f}us)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    args = parser.parse_args()
    results = asyncio.run(main(args.quick))
    print(report(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    sys.exit(0)
