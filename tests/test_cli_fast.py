"""``--transport picows`` and ``--uvloop`` (rxws/_cli_fast.py): ``rxws listen`` and ``rxws demo`` on
the fast transport and event loop, and one clear error line where the ``fast`` extra is missing."""

from __future__ import annotations

import json
from importlib.util import find_spec

import pytest
from cli_helpers import rxws, spawn, stop

from rxws._cli_fast import runner, transport_named
from rxws.exceptions import RxwsError

FAST = find_spec("picows") is not None and find_spec("uvloop") is not None


@pytest.mark.skipif(not FAST, reason="picows and uvloop are in the 'fast' extra")
def test_listen_on_picows_and_uvloop_prints_json_lines(mock_venue: str) -> None:
    proc = spawn("listen", mock_venue, "--watch", "t", "--transport", "picows", "--uvloop")
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    status, _, err = stop(proc)
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3], err
    assert status == 130 and "stopped by SIGINT after a graceful close" in err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert events[-1]["kind"] == "disconnected" and events[-1]["reason"] == "USER"


@pytest.mark.skipif(not FAST, reason="picows and uvloop are in the 'fast' extra")
def test_the_demo_runs_on_picows() -> None:
    result = rxws("demo", "--duration", "1.5", "--transport", "picows", "--uvloop")
    assert result.returncode == 0, result.stdout + result.stderr
    for text in ("picows client", "echo -> {'hello': 'venue'}", "Reconnected(", "gaps      3 reported"):
        assert text in result.stdout, f"{text!r} missing from the demo's output:\n{result.stdout}"


@pytest.mark.skipif(FAST, reason="checks the error where the 'fast' extra is not installed")
@pytest.mark.parametrize(
    ("option", "says"), [(("--transport", "picows"), "needs picows"), (("--uvloop",), "needs uvloop")]
)
def test_a_missing_fast_extra_is_one_error_line(option: tuple[str, ...], says: str) -> None:
    result = rxws("listen", "ws://127.0.0.1:9", "--watch", "t", *option)
    assert result.returncode == 1
    assert result.stderr.startswith("rxws: error: ") and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(RxwsError, match="--transport must be one of websockets, picows"):
        transport_named("aiohttp")
    assert rxws("listen", "ws://127.0.0.1:9", "--watch", "t", "--transport", "aiohttp").returncode == 2


def test_without_uvloop_the_runner_is_asyncio_run() -> None:
    import asyncio

    assert runner(False) is asyncio.run
