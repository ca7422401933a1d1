"""``rxws record`` and ``rxws replay``, run as subprocesses with the current interpreter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import rxws, spawn, stop, url_of

from rxws.testing.recorder import load_recording


def test_record_then_replay_serves_the_same_frames_to_a_new_client(mock_venue: str, tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    result = rxws("record", mock_venue, "--watch", "t", "--watch", "u", "-o", str(path), "--duration", "1")
    assert result.returncode == 0, result.stderr
    assert "rxws: recorded" in result.stderr and "1 connection(s)" in result.stderr

    recording = load_recording(path)
    assert recording.protocol == "generic" and recording.url == mock_venue
    (conn,) = recording.connections
    kinds = [e.kind for e in conn.entries]
    assert kinds[0] == "out" and kinds[-1] == "close"
    assert json.loads(str(conn.entries[0].frame))["args"] == ["t", "u"]
    recorded = [json.loads(str(e.frame)) for e in conn.entries if e.kind == "in"]
    data = [m for m in recorded if "topic" in m]
    assert len(data) >= 4 and {m["topic"] for m in data} == {"t", "u"}
    ended = conn.entries[-1]
    assert (ended.code, ended.by) == (1000, "client")

    venue = spawn("replay", str(path), "--max")
    try:
        url = url_of(venue)
        listen = spawn("listen", url, "--watch", "t", "u")
        assert listen.stdout is not None
        lines = [listen.stdout.readline() for _ in data]
        stop(listen)
    finally:
        status, _, err = stop(venue)
    assert [json.loads(line) for line in lines] == data
    assert status == 130, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("record", "ws://127.0.0.1:9", "--protocol", "nope", "--watch", "t", "-o", "x.jsonl"),
            "unknown protocol 'nope'",
        ),
        (
            ("record", "ws://127.0.0.1:9", "--watch", "t", "-o", "x.jsonl", "--duration", "0"),
            "--duration must be > 0",
        ),
        (("replay", "x.jsonl", "--speed", "0"), "--speed must be > 0"),
        (("replay", "absent.jsonl"), "absent.jsonl: cannot read the recording"),
    ],
)
def test_errors_print_one_clear_line_and_exit_1(args: tuple[str, ...], message: str) -> None:
    result = rxws(*args)
    assert result.returncode == 1
    assert result.stderr.startswith("rxws: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_a_corrupt_recording_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"format":"rxws-recording","version":1,"url":"ws://x","protocol":null}\n{"t":0,"conn":1,"kind":"open"}\n{oops\n'
    )
    result = rxws("replay", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"rxws: error: {path}:3: not a JSON record"), result.stderr


def test_speed_and_max_are_exclusive() -> None:
    result = rxws("replay", "x.jsonl", "--speed", "2", "--max")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr
