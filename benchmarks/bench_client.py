"""Client benchmarks: ratios against anchors measured in the same run (DESIGN.md section 5).

* inbound throughput: rxws ``watch()`` vs a raw ``websockets`` loop with the same JSON decoder,
  both reading the same pre-built frames from the same MockVenue over loopback; with picows
  installed (the ``fast`` extra) also ``watch()`` on ``PicowsTransport`` vs that raw loop
  (target >= 2.0x) and vs a raw picows + orjson callback loop (target >= 0.60x);
* request round trip p50/p99: ``client.request("echo")`` vs raw ``send`` + ``recv`` (and on
  picows: its p50 <= the raw ``websockets`` p50);
* routing: per-message cost with 1,000 watched topics vs 1;
* correlation: per-reply cost with 10,000 requests pending vs 1.

With uvloop installed, throughput and round trip run again on a uvloop event loop, reported beside
the asyncio figures (anchors measured again on that loop).

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
from rxws.transport.base import Transport

try:
    import _fast  # the picows anchor and transport (benchmarks/_fast.py), when picows is installed
except ImportError:
    _fast = None  # type: ignore[assignment]

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


async def _rxws_throughput(
    venue: MockVenue, frames: bytes, count: int, transport: Transport | None = None
) -> float:
    client = WebSocketClient(
        venue.url, protocol=GenericJson(), ping_interval=None, detect_gaps=True, transport=transport
    )
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
    """Best of ``rounds`` for each reader; the readers alternate within a round (drift hits all)."""
    times: dict[str, list[float]] = {"raw": [], "rxws": [], "raw_picows": [], "rxws_picows": []}
    async with MockVenue(rate=0, record=False) as venue:
        for _ in range(rounds):
            frames = venue.prebuild(TOPIC, count, {"px": 100.25, "qty": 3})
            times["raw"].append(await _raw_throughput(venue, frames, count))
            frames = venue.prebuild(TOPIC, count, {"px": 100.25, "qty": 3})
            times["rxws"].append(await _rxws_throughput(venue, frames, count))
            if _fast is not None:
                frames = venue.prebuild(TOPIC, count, {"px": 100.25, "qty": 3})
                times["raw_picows"].append(await _fast.raw_picows_throughput(venue, frames, count, TOPIC))
                frames = venue.prebuild(TOPIC, count, {"px": 100.25, "qty": 3})
                transport = _fast.PicowsTransport()
                times["rxws_picows"].append(await _rxws_throughput(venue, frames, count, transport))
    rate = {name: count / min(ts) for name, ts in times.items() if ts}
    out: dict[str, Any] = {
        "messages": count,
        "raw_msgs_per_s": rate["raw"],
        "rxws_msgs_per_s": rate["rxws"],
        "ratio": rate["rxws"] / rate["raw"],
        "target": ">= 0.90",
    }
    if _fast is not None:
        out["raw_picows_msgs_per_s"] = rate["raw_picows"]
        out["rxws_picows_msgs_per_s"] = rate["rxws_picows"]
        out["picows_vs_raw_websockets"] = rate["rxws_picows"] / rate["raw"]
        out["picows_vs_raw_picows"] = rate["rxws_picows"] / rate["raw_picows"]
        out["picows_targets"] = ">= 2.0 vs raw websockets, >= 0.60 vs raw picows"
    return out


async def round_trip(count: int) -> dict[str, Any]:
    async with MockVenue(rate=0, record=False) as venue:
        raw: list[float] = []
        rx: list[float] = []
        fast: list[float] = []
        client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
        await client.connect()
        picows_client: WebSocketClient | None = None
        if _fast is not None:
            picows_client = WebSocketClient(
                venue.url, protocol=GenericJson(), ping_interval=None, transport=_fast.PicowsTransport()
            )
            await picows_client.connect()
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
                if picows_client is not None:
                    for i in range(100):
                        t0 = time.perf_counter()
                        await picows_client.request("echo", {"n": i}, timeout=5.0)
                        fast.append(time.perf_counter() - t0)
        await client.close()
        if picows_client is not None:
            await picows_client.close()

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
        **(
            {
                "rxws_picows_p50_us": pct(fast, 0.5),
                "rxws_picows_p99_us": pct(fast, 0.99),
                "picows_p50_ratio": pct(fast, 0.5) / pct(raw, 0.5),
                "picows_target": "p50 <= 1.00 x raw websockets",
            }
            if fast
            else {}
        ),
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
    """Per-message cost of redundancy=2 (the first copy decoded and merged, the other connection's
    identical copy recognised by its text and counted, one delivered) vs a single connection (no
    sockets: the frames are fed to the sessions' inbound sinks, alternating runs)."""
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
        "dedup_cost_us": (best_pair - best_single) * 1e6,  # the merge step, and the twin's copy dropped
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


async def main_network(quick: bool) -> dict[str, Any]:
    """The loop-bound measures only (throughput, round trip): what a faster event loop can change."""
    count = 50_000 if quick else 200_000
    return {
        "throughput": await throughput(count, 2 if quick else 3),
        "round_trip": await round_trip(1000 if quick else 4000),
    }


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
    if "raw_picows_msgs_per_s" in t:
        lines += _fast_lines("asyncio", t, r)
    uv = results.get("uvloop")
    if uv is not None:
        ut, ur = uv["throughput"], uv["round_trip"]
        lines.append(
            f"uvloop: inbound (msgs/s)             {ut['rxws_msgs_per_s']:>12,.0f}  {ut['raw_msgs_per_s']:>12,.0f}"
            f"     {ut['ratio']:.2f}   >= 0.90"
        )
        lines.append(
            f"uvloop: request round trip p50 (us)  {ur['rxws_p50_us']:>12.1f}  {ur['raw_p50_us']:>12.1f}"
            f"     {ur['p50_ratio']:.2f}   <= 1.10"
        )
        if "raw_picows_msgs_per_s" in ut:
            lines += _fast_lines("uvloop", ut, ur)
    return "\n".join(lines)


def _fast_lines(loop: str, t: dict[str, Any], r: dict[str, Any]) -> list[str]:
    tag = f"{loop}: picows"
    return [
        f"{tag} inbound vs raw websockets {t['rxws_picows_msgs_per_s']:>10,.0f}  {t['raw_msgs_per_s']:>12,.0f}"
        f"     {t['picows_vs_raw_websockets']:.2f}   >= 2.0",
        f"{tag} inbound vs raw picows     {t['rxws_picows_msgs_per_s']:>10,.0f}  {t['raw_picows_msgs_per_s']:>12,.0f}"
        f"     {t['picows_vs_raw_picows']:.2f}   >= 0.60",
        f"{tag} round trip p50 (us)       {r['rxws_picows_p50_us']:>10.1f}  {r['raw_p50_us']:>12.1f}"
        f"     {r['picows_p50_ratio']:.2f}   <= 1.00",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    args = parser.parse_args()
    results = asyncio.run(main(args.quick))
    if _fast is not None and _fast.uvloop is not None:
        results["uvloop"] = _fast.uvloop.run(main_network(args.quick))
    print(report(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    sys.exit(0)
