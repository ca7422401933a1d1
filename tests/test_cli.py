"""The ``rxws`` command, run as a subprocess with the current interpreter (``python -m rxws``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxws import __version__

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


def rxws(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxws", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rxws", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str, str]:
    """Send ``sig`` and collect the exit status and the rest of the output."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"did not stop on {signal.Signals(sig).name}:\n{out}\n{err}")
    return proc.returncode, out, err


@pytest.fixture
def mock_venue() -> Iterator[str]:
    """``rxws mock-venue`` in a subprocess, 20 messages/s per topic; yields its URL."""
    proc = spawn("mock-venue", "--rate", "20")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on ws://127.0.0.1:" in line, line + (proc.stderr.read() if proc.stderr else "")
    url = line.split("listening on ")[1].split()[0]
    yield url
    status, _, err = stop(proc)
    assert status == 130, err
    assert "stopped by SIGINT" in err


def test_version() -> None:
    result = rxws("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"rxws {__version__}"


def test_demo_shows_states_events_rates_rate_limits_reconnection_and_gaps() -> None:
    started = time.monotonic()
    result = rxws("demo", "--duration", "1.5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 15
    out = result.stdout
    for state in ("CONNECTING", "CONNECTED", "ERROR", "DISCONNECTED"):
        assert f"state     {state}" in out
    for text in (
        "event     Connected(",
        "echo -> {'hello': 'venue'}",
        "rates     trades.BTC-USD",
        "ratelimit Throttled(",
        "ReconnectProposed(",
        "approved",
        "Reconnected(",
        "SubscriptionsRestored(",
        "GapDetected(topic=trades.BTC-USD, gap=sequence",
        "gap=disconnect",
        "gaps      3 reported",
        "Disconnected(reason=USER",
    ):
        assert text in out, f"{text!r} missing from the demo's output:\n{out}"
    assert "\x1b[" not in out, "no terminal control codes when stdout is not a terminal"


def test_demo_stops_gracefully_on_ctrl_c() -> None:
    proc = spawn("demo", "--duration", "20")
    assert proc.stdout is not None
    for line in proc.stdout:
        if "rates" in line:  # well into the run
            break
    status, out, err = stop(proc)
    assert status == 130, err
    assert "Disconnected(reason=USER, code=1000" in out  # the client closed with a close frame
    assert "stopped by SIGINT after a graceful close" in err
    assert "Traceback" not in err


def test_demo_rejects_a_bad_duration() -> None:
    result = rxws("demo", "--duration", "0")
    assert result.returncode == 1
    assert result.stderr.strip() == "rxws: error: --duration must be > 0"


def test_listen_prints_json_lines_through_a_pipe(mock_venue: str) -> None:
    proc = spawn("listen", mock_venue, "--watch", "t")
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    status, _, err = stop(proc)
    messages = [json.loads(line) for line in lines]
    assert [m["topic"] for m in messages] == ["t", "t", "t"]
    assert [m["seq"] for m in messages] == [1, 2, 3]
    assert status == 130
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert "subscription_changed" in {e["kind"] for e in events}
    assert events[-1]["kind"] == "disconnected" and events[-1]["reason"] == "USER"


def test_listen_ends_quietly_when_the_reader_goes_away(mock_venue: str) -> None:
    """``rxws listen ... | head -2``: the closed pipe ends the command with status 0."""
    proc = spawn("listen", mock_venue, "--watch", "t", "u")
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    try:
        status = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    assert status == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("listen", "notaurl", "--watch", "t"), "rxws: error: invalid URL 'notaurl'"),
        (("listen", "http://127.0.0.1:1", "--watch", "t"), "expected ws:// or wss://"),
        (("listen", "ws://127.0.0.1:1", "--watch", "t"), "rxws: error: cannot connect to ws://127.0.0.1:1"),
        (("listen", "ws://127.0.0.1:1", "--protocol", "nope", "--watch", "t"), "unknown protocol 'nope'"),
        (("mock-venue", "--dialect", "nope"), "rxws: error: unknown dialect 'nope'"),
        (("--log-level", "LOUD", "demo"), "rxws: error: unknown log level 'LOUD'"),
    ],
    ids=["bad-url", "http-scheme", "refused", "unknown-protocol", "unknown-dialect", "bad-log-level"],
)
def test_errors_print_one_clear_line_and_exit_non_zero(args: tuple[str, ...], message: str) -> None:
    result = rxws(*args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rxws: error: ")
    assert message in lines[0]
    assert result.stdout == ""


def test_unknown_dialect_lists_the_known_ones() -> None:
    result = rxws("mock-venue", "--dialect", "nope")
    assert result.returncode == 1
    for name in ("binance", "okx", "bybit", "deribit", "generic"):
        assert name in result.stderr


def test_usage_error_exits_2() -> None:
    result = rxws("listen", "ws://127.0.0.1:1")  # --watch is required
    assert result.returncode == 2
    assert "--watch" in result.stderr
