"""``correlate`` benchmark: per-response matching cost with 10,000 items waiting vs 10.

Items and responses are pushed through reactivex subjects on a virtual-time scheduler (no sockets,
no timers firing): each run registers ``responses`` fresh items on top of a background of items
nobody answers, then times feeding their responses (match, deliver, complete). The two sizes
alternate and the best run of each counts, so drift on a shared machine hits both alike. The
ratio is the point: a dict of pending keys costs the same whatever the number waiting.

Every loop is bounded in count. Run: ``python benchmarks/bench_correlate.py [--json F] [--quick]``.
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

from _cli import run_benchmark
from reactivex import Observable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from rxws.operators import CorrelationStats, correlate

SIZES = (10, 10_000)


def _key(x: Any) -> Any:
    return x[0]


class _Setup:
    """One correlate subscription with ``background`` items waiting for ever."""

    def __init__(self, background: int) -> None:
        self.items: Subject[tuple[str, int]] = Subject()
        self.responses: Subject[tuple[str, int]] = Subject()
        self.stats = CorrelationStats()
        self.delivered = 0
        self.round = 0
        scheduler = TestScheduler()
        operator = correlate(self.responses, _key, timeout=1e9, stats=self.stats, scheduler=scheduler)
        self.sub = operator(self.items).subscribe(self._on_stream)
        for i in range(background):
            self.items.on_next((f"bg{i}", i))

    def _on_stream(self, stream: Observable[tuple[str, int]]) -> None:
        stream.subscribe(self._on_response)

    def _on_response(self, _response: tuple[str, int]) -> None:
        self.delivered += 1

    def run(self, count: int) -> float:
        """Seconds per response for ``count`` fresh items answered once each."""
        self.round += 1
        keys = [f"r{self.round}.{i}" for i in range(count)]
        for k in keys:
            self.items.on_next((k, 0))
        responses = [(k, 1) for k in keys]
        feed = self.responses.on_next
        gc.disable()
        t0 = time.perf_counter()
        for r in responses:
            feed(r)
        elapsed = time.perf_counter() - t0
        gc.enable()
        return elapsed / count


def main(quick: bool) -> dict[str, Any]:
    count, repeats = (1_000, 6) if quick else (1_000, 30)
    setups = {n: _Setup(n) for n in SIZES}
    best = dict.fromkeys(SIZES, float("inf"))
    for round_ in range(repeats):  # alternate which size goes first
        for n in SIZES if round_ % 2 else SIZES[::-1]:
            best[n] = min(best[n], setups[n].run(count))
    for n, setup in setups.items():
        assert setup.delivered == count * repeats, "every response must reach its item"
        assert setup.stats.pending == n, "only the background stays waiting"
        setup.sub.dispose()
        assert setup.stats.pending == 0
    small, large = SIZES
    return {
        f"ns_per_response_{small}_pending": best[small] * 1e9,
        f"ns_per_response_{large}_pending": best[large] * 1e9,
        "ratio": best[large] / best[small],
        "target": "<= 1.1",
    }


def report(results: dict[str, Any]) -> str:
    small, large = SIZES
    return "\n".join(
        [
            "measure                                   10k pending     10 pending      ratio   target",
            f"correlate ns/response                {results[f'ns_per_response_{large}_pending']:>12.0f}"
            f"  {results[f'ns_per_response_{small}_pending']:>12.0f}     {results['ratio']:.2f}   <= 1.1",
        ]
    )


if __name__ == "__main__":
    run_benchmark(__doc__, main, report)
    sys.exit(0)
