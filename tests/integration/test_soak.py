"""A 30-second chaos soak (benchmarks/soak.py) inside the suite: every invariant must hold.

The harness runs a request + stream workload through a FaultProxy in front of MockVenue while a
seeded injector applies every kind of fault at least once (delay + jitter, bandwidth, stop reading,
blackhole, cut with FIN and with RST, reset). ``make soak`` runs the same for ``MINUTES``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rxws_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(90)
@pytest.mark.wallclock
async def test_a_30_second_chaos_soak_keeps_every_invariant(no_leaked_tasks: None) -> None:
    soak = _load()
    report = await soak.run_soak(soak.SoakConfig(seconds=22.0, seed=1, settle_timeout=8.0))
    assert set(report.faults) == set(soak.FAULT_KINDS), report.render()  # every kind was injected
    assert report.requests_sent > 100 and sum(report.venue_sent.values()) > 1000, report.render()
    assert report.failures == [], report.render()
