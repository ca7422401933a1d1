"""Rate-limit benchmark: rxws algorithms side by side with aiolimiter and pyrate-limiter.

Usage::

    python benchmarks/bench_ratelimit.py [--json out.json] [--quick]

Two tables, everything measured in the same run:

1. ``try_acquire`` cost in ns per call (best of several repeats of a bounded loop, measured with
   ``time.perf_counter_ns``; the loop overhead is measured too and shown, not subtracted).
   - "allowed": a limit so high every call is admitted (the fast path);
   - "saturated": 50 per second hammered, so nearly every call is refused (the refusal path,
     which computes ``retry_after``);
   - rxws is timed twice: with a precomputed ``now`` (the bare algorithm) and reading
     ``time.monotonic()`` per call (what a caller pays, comparable to the peers, which read
     their own clock).
   aiolimiter has no non-blocking acquire: its row times ``has_capacity()`` plus the level
   update ``acquire()`` makes (the uncontended path without the coroutine), and separately
   ``await acquire()`` uncontended inside a running loop.
2. Accuracy for a 50/s limit under a saturating load: the most admissions in any 1 s window
   (half-open ``[t, t + 1)``, brute force over admission times).
   - rxws: virtual time, one attempt every 2**-13 s (~0.12 ms) for 10 s (the algorithms are pure,
     so virtual time is exact; the dyadic step keeps float times exact, so the brute-force window
     count in float seconds and the algorithms' integer-nanosecond clock agree);
   - pyrate-limiter: real time, a tight ``try_acquire(blocking=False)`` loop for ~3 s;
   - aiolimiter: real time, 200 asyncio tasks looping on ``await acquire()`` for ~3 s, the
     admission time read from ``loop.time()``.

3. The fleet ledger (:mod:`fleet_ledger`): shared acquires through a real ``redis-server`` beside
   the in-memory figure, and the event loop's longest stall while Redis is slow.

aiolimiter and pyrate-limiter are benchmark-only dependencies (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from fleet_ledger import bench_fleet, print_fleet

from rxws.ratelimit import FixedWindow, LeakyBucket, SlidingWindow, SlidingWindowCounter, TokenBucket

try:
    import aiolimiter
except ImportError:  # pragma: no cover - optional
    aiolimiter = None
try:
    import pyrate_limiter
except ImportError:  # pragma: no cover - optional
    pyrate_limiter = None

ITERATIONS = 200_000
REPEATS = 5


def best_ns(loop: Callable[[int], None], n: int, repeats: int) -> float:
    """Best ns per iteration over ``repeats`` runs of ``loop(n)``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        loop(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def timed_rxws_bare(make: Callable[[], Any], spacing: float, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        f = make().try_acquire
        nows = [1000.0 + i * spacing for i in range(n)]
        t0 = time.perf_counter_ns()
        for now in nows:
            f(now)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def timed_empty(n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        nows = [1000.0 + i * 1e-6 for i in range(n)]
        f = float.__abs__
        t0 = time.perf_counter_ns()
        for now in nows:
            f(now)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def timed_rxws_clock(make: Callable[[], Any], n: int, repeats: int) -> float:
    def run(k: int) -> None:
        f = make().try_acquire
        mono = time.monotonic
        for _ in range(k):
            f(mono())

    return best_ns(run, n, repeats)


def timed_pyrate(limit: int, n: int, repeats: int) -> float:
    from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate

    def run(k: int) -> None:
        lim = Limiter(InMemoryBucket([Rate(limit, Duration.SECOND)]))
        f = lim.try_acquire
        for _ in range(k):
            f("bench", blocking=False)

    return best_ns(run, n, repeats)


def timed_aiolimiter_sync(limit: float, n: int, repeats: int) -> float:
    # Timed inside the running loop, so asyncio.run() start-up is not counted.
    best = float("inf")
    for _ in range(repeats):
        result: list[float] = []

        async def body(result: list[float] = result) -> None:
            lim = aiolimiter.AsyncLimiter(limit, 1.0)
            has = lim.has_capacity
            t0 = time.perf_counter_ns()
            for _ in range(n):
                if has(1):
                    lim._level += 1
            result.append((time.perf_counter_ns() - t0) / n)

        asyncio.run(body())
        best = min(best, result[0])
    return best


def timed_aiolimiter_await(n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        result: list[float] = []

        async def body(result: list[float] = result) -> None:
            lim = aiolimiter.AsyncLimiter(1e12, 1.0)
            acquire = lim.acquire
            t0 = time.perf_counter_ns()
            for _ in range(n):
                await acquire()
            result.append((time.perf_counter_ns() - t0) / n)

        asyncio.run(body())
        best = min(best, result[0])
    return best


# Accuracy ------------------------------------------------------------------------------------


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most admissions in any half-open window [t, t + window), brute force with two pointers."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        if j < i:
            j = i
        while j < len(times) and times[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


STEP = 2.0**-13  # ~0.122 ms; a dyadic step keeps every attempt time and difference exact in floats


def accuracy_rxws(make: Callable[[], Any], seconds: float = 10.0, step: float = STEP) -> tuple[int, int]:
    alg = make()
    admitted = []
    steps = int(seconds / step)
    for i in range(steps):
        now = 100.0 + i * step
        if alg.try_acquire(now).allowed:
            admitted.append(now)
    return max_in_window(admitted), len(admitted)


def accuracy_pyrate(seconds: float) -> tuple[int, int]:
    from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate

    lim = Limiter(InMemoryBucket([Rate(50, Duration.SECOND)]))
    admitted = []
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        if lim.try_acquire("acc", blocking=False):
            admitted.append(now)
    return max_in_window(admitted), len(admitted)


def accuracy_aiolimiter(seconds: float) -> tuple[int, int]:
    async def body() -> list[float]:
        lim = aiolimiter.AsyncLimiter(50, 1.0)
        loop = asyncio.get_running_loop()
        admitted: list[float] = []
        end = loop.time() + seconds

        async def worker() -> None:
            while loop.time() < end:
                await lim.acquire()
                if loop.time() < end:
                    admitted.append(loop.time())

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(200))), seconds + 5)
        return admitted

    admitted = asyncio.run(body())
    return max_in_window(admitted), len(admitted)


# Report --------------------------------------------------------------------------------------

RXWS = {
    "rxws TokenBucket": (lambda: TokenBucket(10**12, 1.0, 10**12), lambda: TokenBucket(50, 1.0, 50)),
    "rxws LeakyBucket (GCRA)": (
        lambda: LeakyBucket(10**12, 1.0, burst=10**12),
        lambda: LeakyBucket(50, 1.0, burst=50),
    ),
    "rxws SlidingWindow": (lambda: SlidingWindow(10**12, 1e-3), lambda: SlidingWindow(50, 1.0)),
    "rxws SlidingWindowCounter": (
        lambda: SlidingWindowCounter(10**12, 1.0),
        lambda: SlidingWindowCounter(50, 1.0),
    ),
    "rxws FixedWindow": (lambda: FixedWindow(10**12, 1.0), lambda: FixedWindow(50, 1.0)),
}

ACCURACY_RXWS = {
    "rxws SlidingWindow(50, 1)": lambda: SlidingWindow(50, 1.0),
    "rxws SlidingWindowCounter(50, 1)": lambda: SlidingWindowCounter(50, 1.0),
    "rxws LeakyBucket(50, 1) (burst 1)": lambda: LeakyBucket(50, 1.0),
    "rxws TokenBucket(50, 1, burst=50)": lambda: TokenBucket(50, 1.0, 50),
    "rxws FixedWindow(50, 1)": lambda: FixedWindow(50, 1.0),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else ITERATIONS
    repeats = 2 if args.quick else REPEATS
    real_seconds = 1.2 if args.quick else 3.0

    speed: list[dict[str, Any]] = []
    empty = timed_empty(n, repeats)
    for name, (allowed, saturated) in RXWS.items():
        speed.append(
            {
                "limiter": name,
                "allowed_ns": timed_rxws_bare(allowed, 1e-6, n, repeats),
                "saturated_ns": timed_rxws_bare(saturated, 1e-6, n, repeats),
                "allowed_with_clock_ns": timed_rxws_clock(allowed, n, repeats),
                "saturated_with_clock_ns": timed_rxws_clock(saturated, n, repeats),
            }
        )
    if aiolimiter is not None:
        speed.append(
            {
                "limiter": "aiolimiter has_capacity()+level",
                "allowed_ns": timed_aiolimiter_sync(1e12, n, repeats),
                "saturated_ns": timed_aiolimiter_sync(50, n, repeats),
            }
        )
        speed.append(
            {"limiter": "aiolimiter await acquire()", "allowed_ns": timed_aiolimiter_await(n, repeats)}
        )
    if pyrate_limiter is not None:
        pn = max(n // 10, 2_000)  # ~5 µs per call: fewer iterations keep the run short
        speed.append(
            {
                "limiter": f"pyrate-limiter {pyrate_limiter_version()} InMemoryBucket",
                "allowed_with_clock_ns": timed_pyrate(10**9, pn, repeats),
                "saturated_with_clock_ns": timed_pyrate(50, pn, repeats),
            }
        )

    accuracy: list[dict[str, Any]] = []
    for name, make in ACCURACY_RXWS.items():
        most, total = accuracy_rxws(make)
        accuracy.append(
            {
                "limiter": name,
                "method": "virtual time, 10 s, attempt every 2**-13 s",
                "max_in_any_1s": most,
                "admitted": total,
                "seconds": 10.0,
            }
        )
    if pyrate_limiter is not None:
        most, total = accuracy_pyrate(real_seconds)
        accuracy.append(
            {
                "limiter": "pyrate-limiter Rate(50, SECOND)",
                "method": f"real time, {real_seconds:g} s tight try_acquire loop",
                "max_in_any_1s": most,
                "admitted": total,
                "seconds": real_seconds,
            }
        )
    if aiolimiter is not None:
        most, total = accuracy_aiolimiter(real_seconds)
        accuracy.append(
            {
                "limiter": "aiolimiter AsyncLimiter(50, 1)",
                "method": f"real time, {real_seconds:g} s, 200 tasks awaiting acquire()",
                "max_in_any_1s": most,
                "admitted": total,
                "seconds": real_seconds,
            }
        )

    print_tables(speed, accuracy, empty)
    fleet = bench_fleet(args.quick)
    print_fleet(fleet)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "iterations": n,
                    "repeats": repeats,
                    "empty_loop_ns": empty,
                    "try_acquire": speed,
                    "accuracy_50_per_s": accuracy,
                    "fleet_ledger": fleet,
                },
                fh,
                indent=2,
            )
    return 0


def pyrate_limiter_version() -> str:
    from importlib.metadata import version

    return version("pyrate-limiter")


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def print_tables(speed: list[dict[str, Any]], accuracy: list[dict[str, Any]], empty: float) -> None:
    print(f"try_acquire, ns per call (best of {REPEATS}; empty loop = {empty:.0f} ns, included)")
    head = f"{'limiter':40} {'allowed':>9} {'saturated':>10} {'allowed+clock':>14} {'saturated+clock':>16}"
    print(head)
    print("-" * len(head))
    for row in speed:
        print(
            f"{row['limiter']:40} {fmt(row.get('allowed_ns')):>9} {fmt(row.get('saturated_ns')):>10} "
            f"{fmt(row.get('allowed_with_clock_ns')):>14} {fmt(row.get('saturated_with_clock_ns')):>16}"
        )
    print()
    print("accuracy: limit 50/s under saturating load, most admitted in any 1 s window")
    head = f"{'limiter':36} {'max/1s':>7} {'admitted':>9}  method"
    print(head)
    print("-" * (len(head) + 30))
    for row in accuracy:
        print(f"{row['limiter']:36} {row['max_in_any_1s']:>7} {row['admitted']:>9}  {row['method']}")


if __name__ == "__main__":
    sys.exit(main())
