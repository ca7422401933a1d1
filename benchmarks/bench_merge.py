"""Merge benchmark: what ``TopicMerge`` (rxws.core.merge) costs per venue message.

Usage::

    python benchmarks/bench_merge.py [--json out.json] [--quick]

Every figure is the best of several repeats of a bounded loop over pre-built messages, in ns per
*venue message* (so a two-source row counts both copies' offers), measured in the same run:

* anchors: an empty method call, and ``SequenceTracker.observe`` on the same numbers (the
  per-message gap check every data message already goes through);
* sequenced (``Seq(n, n)``): one source; two sources in step (each message offered by one source
  then the other); two sources with one leading by 50 messages; three sources in step;
* keyed (trade ids): one source; two sources in step; plus the dialects' ``dedupe_key`` on real
  trade frames (Binance ``aggTrade``, OKX ``trades``), which a keyed merge adds per copy;
* unsequenced, unkeyed: two sources, primary only.

"dedupe cost over single" is the two-source row minus the one-source row: what redundancy adds
per venue message in the merge (target: at most 1 us). Memory: bytes held by one sequenced merge
of two sources, and by a keyed merge at its peak (8,191 trade id strings held, window 4096;
``tracemalloc``, the strings included).
"""

from __future__ import annotations

import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from _cli import run_benchmark

from rxws.core.merge import TopicMerge
from rxws.core.sequence import SequenceTracker
from rxws.protocols import Binance, Okx
from rxws.protocols.base import Seq, make_seq

MESSAGES = 200_000
REPEATS = 7
TARGET_NS = 1000.0
AGG_TRADE = {
    "stream": "ftmusdt@aggTrade",
    "data": {"e": "aggTrade", "E": 1628952396573, "s": "FTMUSDT", "a": 31718372, "p": "0.33993000",
             "q": "99.90000000", "f": 38248910, "l": 38248910, "T": 1628952396572, "m": True, "M": True},
}  # fmt: skip
OKX_TRADE = {
    "arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"},
    "data": [{"instId": "BTC-USDT-SWAP", "tradeId": "2953620292", "px": "84095.6", "sz": "9.51", "side": "buy",
              "ts": "1790439596527", "count": "1", "source": "0", "seqId": 342177339666}],
}  # fmt: skip


def best_ns(run: Callable[[], None], per: int, repeats: int) -> float:
    """Best ns per item over ``repeats`` runs of ``run`` (which handles ``per`` items)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - t0) / per)
    return best


class _Noop:
    def offer(self, source: int, seq: Seq | None, key: Any = None) -> bool:
        return True


def measure(n: int, repeats: int) -> dict[str, float]:
    seqs = [make_seq(i, i) for i in range(1, n + 1)]
    keys = [("t", i) for i in range(n)]
    lead = 50
    out: dict[str, float] = {}

    def noop() -> None:
        offer = _Noop().offer
        for s in seqs:
            offer(1, s)

    def tracker() -> None:
        observe = SequenceTracker().observe
        for s in seqs:
            observe("t", s, 0.0)

    def single() -> None:
        offer = TopicMerge().offer
        for s in seqs:
            offer(1, s)

    def two() -> None:
        offer = TopicMerge().offer
        for s in seqs:
            offer(1, s)
            offer(2, s)

    def two_lagging() -> None:
        offer = TopicMerge().offer
        for i, s in enumerate(seqs):
            offer(1, s)
            if i >= lead:
                offer(2, seqs[i - lead])

    def three() -> None:
        offer = TopicMerge().offer
        for s in seqs:
            offer(1, s)
            offer(2, s)
            offer(3, s)

    def keyed_single() -> None:
        offer = TopicMerge().offer
        for k in keys:
            offer(1, None, k)

    def keyed_two() -> None:
        offer = TopicMerge().offer
        for k in keys:
            offer(1, None, k)
            offer(2, None, k)

    def primary_two() -> None:
        offer = TopicMerge().offer
        for _ in seqs:
            offer(1, None)
            offer(2, None)

    def key_of(protocol: Any, message: Any) -> Callable[[], None]:
        def run() -> None:
            dedupe_key = protocol.dedupe_key
            for _ in seqs:
                dedupe_key(message)

        return run

    for name, run in (
        ("empty_call", noop),
        ("sequence_tracker", tracker),
        ("seq_single", single),
        ("seq_two", two),
        ("seq_two_lagging", two_lagging),
        ("seq_three", three),
        ("keyed_single", keyed_single),
        ("keyed_two", keyed_two),
        ("primary_two", primary_two),
        ("key_binance_aggtrade", key_of(Binance(), AGG_TRADE)),
        ("key_okx_trades", key_of(Okx(), OKX_TRADE)),
    ):
        out[name] = best_ns(run, n, repeats)
    return out


def memory() -> dict[str, int]:
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    seq = TopicMerge()
    seq.offer(1, make_seq(1, 1))
    seq.offer(2, make_seq(1, 1))
    seq_bytes = tracemalloc.get_traced_memory()[0] - base
    keyed = TopicMerge()  # at its peak: 2 * 4096 - 1 OKX-like trade id strings held
    for i in range(2 * 4096 - 1):
        keyed.offer(1, None, str(2953620292 + i))
    keyed_bytes = tracemalloc.get_traced_memory()[0] - base - seq_bytes
    tracemalloc.stop()
    assert keyed.remembered == 2 * 4096 - 1
    return {"sequenced_two_sources_bytes": seq_bytes, "keyed_peak_bytes": keyed_bytes}


def main(quick: bool) -> dict[str, Any]:
    n = 50_000 if quick else MESSAGES
    repeats = 3 if quick else REPEATS
    ns = measure(n, repeats)
    derived = {
        "seq_dedupe_cost_ns": ns["seq_two"] - ns["seq_single"],
        "keyed_dedupe_cost_ns": ns["keyed_two"] - ns["keyed_single"],
        "seq_two_over_single": ns["seq_two"] / ns["seq_single"],
        "seq_single_over_tracker": ns["seq_single"] / ns["sequence_tracker"],
        "keyed_two_with_keys_ns": ns["keyed_two"] + 2 * ns["key_okx_trades"],
    }
    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "messages": n,
        "ns_per_message": ns,
        **derived,
        "target_ns": TARGET_NS,
        "within_target": max(derived["seq_dedupe_cost_ns"], derived["keyed_dedupe_cost_ns"]) <= TARGET_NS,
        **memory(),
    }


def report(r: dict[str, Any]) -> str:
    ns = r["ns_per_message"]
    rows = [
        ("empty method call (anchor)", "empty_call"),
        ("SequenceTracker.observe (anchor)", "sequence_tracker"),
        ("sequenced, one source", "seq_single"),
        ("sequenced, two sources in step", "seq_two"),
        ("sequenced, two sources, one 50 behind", "seq_two_lagging"),
        ("sequenced, three sources in step", "seq_three"),
        ("keyed, one source", "keyed_single"),
        ("keyed, two sources in step", "keyed_two"),
        ("unsequenced, two sources (primary)", "primary_two"),
        ("Binance.dedupe_key (aggTrade)", "key_binance_aggtrade"),
        ("Okx.dedupe_key (trades)", "key_okx_trades"),
    ]
    tracker = ns["sequence_tracker"]
    lines = [
        f"TopicMerge, {r['messages']:,} venue messages per run (ns per venue message, best of runs)",
        "measure                                       ns/msg   x tracker",
    ]
    lines += [f"{label:<42} {ns[key]:>9.1f}   {ns[key] / tracker:>6.2f}" for label, key in rows]
    ok = "within" if r["within_target"] else "OVER"
    lines += [
        f"dedupe cost over single: sequenced {r['seq_dedupe_cost_ns']:.1f} ns, keyed"
        f" {r['keyed_dedupe_cost_ns']:.1f} ns ({ok} the {r['target_ns']:.0f} ns target);"
        f" two/single {r['seq_two_over_single']:.2f}x",
        f"keyed two sources incl. dedupe_key on both copies: {r['keyed_two_with_keys_ns']:.1f} ns",
        f"memory: sequenced merge of two sources {r['sequenced_two_sources_bytes']:,} B;"
        f" keyed merge at its peak (8,191 trade ids held, window 4096) {r['keyed_peak_bytes']:,} B",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    run_benchmark(__doc__, main, report)
    sys.exit(0)
