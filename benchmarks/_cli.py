"""The command line every benchmark shares: ``--quick`` for smaller counts, ``--json PATH`` to write
the results; the table is printed either way. Imported as ``_cli`` (the benchmarks run as scripts)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

__all__ = ["run_benchmark"]


def run_benchmark(
    doc: str | None, measure: Callable[[bool], dict[str, Any]], report: Callable[[dict[str, Any]], str]
) -> dict[str, Any]:
    """Parse the command line, run ``measure(quick)``, print ``report(results)`` and write the JSON.

    Args:
        doc: the benchmark module's docstring, shown by ``--help``.
        measure: runs the benchmark; takes whether ``--quick`` was given.
        report: the printed table of the results.

    Returns:
        The results, for a caller that adds to them.
    """
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    args = parser.parse_args()
    results = measure(args.quick)
    print(report(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results
