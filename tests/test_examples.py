"""Every ``examples/*.py`` runs against its embedded MockVenue, by itself, exits 0 and says something.

The glob picks up new examples automatically; the table below adds what a known example must print.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 30.0  # each finishes in < 6 s; the margin is for slow CI machines

EXPECTED: dict[str, tuple[str, ...]] = {
    "quickstart.py": ("state  CONNECTED", "reply  echo -> {'x': 1}", "state  DISCONNECTED"),
    "request_response.py": ("venue error   -> code=-1121", "timeout       ->", "ConnectionLost"),
    "rate_limited_burst.py": ("closed by the venue: code 1008", "all 60 topics subscribed", "throttled"),
    "venue_dialect.py": ("MockVenue speaking binance", "binance: 6 messages"),
    "reconnect_with_approval.py": ("approve? attempt 1", "gap on"),
    "aioreactive_pipeline.py": ("done",),
    "persistence.py": ("data on every restored topic", "done"),
    "private_stream.py": (
        "event  authenticated",
        "'state': 'filled'",
        "after reconnect: ",
        "'state': 'live'",
        "logins at the venue: 2",
        "(60007)",
    ),
    "order_flow.py": (
        "confirmed  o1 filled",
        "timeout    o3:",
        "4 confirmed, 1 timed out",
        "expected   o6 filled",
        "<WebSocketClient trader CONNECTED age=",
        "s topics=1 pending=0>",
    ),
    "metrics_server.py": (
        "serving http://127.0.0.1:",
        'rxws_reconnects_total{client="demo",venue="generic"} 1.0',
        'rxws_gaps_total{client="demo",gap="disconnect",topic="book.ETH-USD",venue="generic"} 1.0',
        "done:",
    ),
}


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.py"))


def _run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=EXAMPLES.parent,
        env=env,
        check=False,
    )


def test_there_are_examples() -> None:
    assert {"quickstart.py", "request_response.py", "rate_limited_burst.py", "venue_dialect.py"} <= {
        p.name for p in _examples()
    }


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_example_runs_against_the_mock_venue(path: Path) -> None:
    result = _run(path)
    assert result.returncode == 0, f"{path.name} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{path.name} printed nothing"
    for text in EXPECTED.get(path.name, ()):
        assert text in result.stdout, f"{path.name}: {text!r} missing from\n{result.stdout}"


@pytest.mark.parametrize("dialect", ["okx", "bybit", "deribit"])
def test_venue_dialect_runs_each_dialect_on_loopback(dialect: str) -> None:
    result = _run(EXAMPLES / "venue_dialect.py", "--dialect", dialect)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"MockVenue speaking {dialect} on ws://127.0.0.1:" in result.stdout
    assert f"{dialect}: 6 messages" in result.stdout
