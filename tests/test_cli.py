"""The ``rxws`` command, run as a subprocess with the current interpreter (``python -m rxws``)."""

from __future__ import annotations

import json
import time

import pytest
from cli_helpers import rxws, spawn, start_venue, stop

from rxws import __version__


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
        (
            ("mock-venue", "--port", "99999"),
            "rxws: error: --port must be 0-65535 (0: a free port), got 99999",
        ),
        (("mock-venue", "--port", "-1"), "rxws: error: --port must be 0-65535"),
        # checked before any I/O: the port is closed, yet the topic is what the error is about
        (("listen", "ws://127.0.0.1:1", "--watch", ""), "rxws: error: --watch: a topic must be a non-empty"),
        (("listen", "ws://127.0.0.1:1", "--watch", "t", " "), "got ' '"),
        (("listen", "ws://127.0.0.1:1", "--watch", "t", "--subscribe-timeout", "0"), "--subscribe-timeout"),
    ],
    ids=[
        "bad-url",
        "http-scheme",
        "refused",
        "unknown-protocol",
        "unknown-dialect",
        "bad-log-level",
        "port-too-large",
        "port-negative",
        "empty-topic",
        "blank-topic",
        "bad-subscribe-timeout",
    ],
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


# Ending with a reason --------------------------------------------------------------------------------
def stderr_lines(err: str) -> tuple[list[dict[str, object]], list[str]]:
    """Events (JSON lines) and every other line of ``err``."""
    events, other = [], []
    for line in err.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
        else:
            other.append(line)
    return events, other


def test_listen_with_a_dialect_the_venue_does_not_speak_ends_with_one_error_line(mock_venue: str) -> None:
    """The generic venue refuses a Binance SUBSCRIBE: one error line, last, status 1, no log line."""
    result = rxws("listen", mock_venue, "--protocol", "binance", "--watch", "btcusdt@trade")
    assert result.returncode == 1, result.stderr
    assert result.stdout == "", "stdout carries venue messages only"
    events, other = stderr_lines(result.stderr)
    assert len(other) == 1, result.stderr  # no log line, no traceback: JSON events and the error
    assert other[0].startswith("rxws: error: subscribe failed:")
    assert "does the venue speak the 'binance' dialect?" in other[0]
    assert result.stderr.splitlines()[-1] == other[0], "the error is the last line"
    assert "subscription_failed" in {e["kind"] for e in events}


def test_listen_ends_when_a_subscribe_is_never_acknowledged() -> None:
    """A Bybit venue never answers a GenericJson subscribe: the subscribe timeout ends the command."""
    proc, url = start_venue("--dialect", "bybit", "--rate", "0")
    try:
        started = time.monotonic()
        result = rxws("listen", url, "--watch", "t", "--subscribe-timeout", "1")
        assert time.monotonic() - started < 20
    finally:
        status, _, err = stop(proc)
    assert status == 130, err
    assert result.returncode == 1, result.stderr
    _, other = stderr_lines(result.stderr)
    assert len(other) == 1 and other[0].startswith("rxws: error: subscribe failed:"), result.stderr
    assert "no subscribe ack within 1s" in other[0]


def test_listen_exits_non_zero_with_the_reason_when_the_venue_goes_away() -> None:
    """Without --reconnect, a venue that closes cleanly (1001 going away) still ends the listener
    with status 1: it has stopped listening."""
    venue, url = start_venue("--rate", "20")
    listener = spawn("listen", url, "--watch", "t")
    try:
        assert listener.stdout is not None
        assert json.loads(listener.stdout.readline())["topic"] == "t"  # it is listening
        status, _, err = stop(venue)  # Ctrl-C: the venue closes every connection with 1001
        assert status == 130, err
        _, err = listener.communicate(timeout=15)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.communicate()
    assert listener.returncode == 1, err
    _, other = stderr_lines(err)
    assert other == ["rxws: error: the venue closed the connection: code 1001 (going away)"], err


def test_listen_over_tls_to_a_plain_server_says_what_happened(mock_venue: str) -> None:
    url = mock_venue.replace("ws://", "wss://")
    result = rxws("listen", url, "--watch", "t")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"rxws: error: cannot connect to {url}: ")
    assert line != f"rxws: error: cannot connect to {url}:", "never an empty reason"
    assert "TLS handshake failed" in line and "plain ws://" in line
