"""``make bench``: every benchmark, each in its own process, with ratios against anchors measured
in the same run. Writes ``benchmarks/results/latest.json`` and prints the tables.

Usage: ``python benchmarks/run.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = (
    "bench_client",
    "bench_ratelimit",
    "bench_memory",
    "bench_replay",
    "bench_merge",
    "bench_correlate",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    args = parser.parse_args()
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    results: dict[str, object] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "python": sys.version.split()[0],
    }
    status = 0
    for name in BENCHES:
        target = out_dir / f"{name}.json"
        cmd = [sys.executable, str(HERE / f"{name}.py"), "--json", str(target)]
        if args.quick:
            cmd.append("--quick")
        print(f"\n== {name} ==", flush=True)
        proc = subprocess.run(cmd, timeout=900, check=False)
        if proc.returncode != 0:
            print(f"{name} failed with exit code {proc.returncode}", file=sys.stderr)
            status = 1
            continue
        results[name] = json.loads(target.read_text())
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out_dir / 'latest.json'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
