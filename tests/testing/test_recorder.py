"""The Recorder transport, in virtual time (TestScheduler + MemoryTransport, 0.25 s latency each way),
and reading its format back (``load_recording``): broken files are named with their line.

Every timestamp below is exact: the recording's clock is the scheduler's, counted from the first
connection attempt (virtual time 1.0).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from rxws.exceptions import ConnectFailed, RecordingError, RxwsError
from rxws.protocols import GenericJson
from rxws.testing import Recorder
from rxws.testing.recorder import load_recording


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_session_is_recorded_frame_by_frame_with_scheduler_times(virtual: Any, tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    recorder = Recorder(virtual.transport, path, protocol=GenericJson())
    virtual.transport = recorder  # the client opens its links through the recorder
    client = virtual.client()
    got: list[Any] = []
    virtual.at(1.0, lambda: client.connect().subscribe(on_error=lambda _e: None))
    virtual.at(2.0, lambda: client.watch("trades.BTC").subscribe(got.append))
    virtual.at(3.0, lambda: virtual.responder.publish("trades.BTC", {"px": 1}))
    virtual.at(3.5, lambda: recorder.inner.peer.push(b"\x00\x01\xff"))  # type: ignore[attr-defined]
    virtual.run(4.0)

    # Flushed per line: the file is readable while the connection is still open.
    mid = records(path)
    assert mid[0]["format"] == "rxws-recording" and mid[0]["version"] == 1
    assert mid[0]["url"] == "ws://venue.test/ws" and mid[0]["protocol"] == "generic"
    assert [(r["t"], r["conn"], r["kind"]) for r in mid[1:]] == [
        (0.25, 1, "open"),
        (1.0, 1, "out"),
        (1.5, 1, "in"),
        (2.25, 1, "in"),
        (2.75, 1, "in"),
    ]
    assert json.loads(mid[2]["text"])["op"] == "subscribe"
    assert json.loads(mid[4]["text"]) == {"topic": "trades.BTC", "seq": 1, "data": {"px": 1}}
    assert mid[5]["binary"] == "AAH/"  # base64 of b"\x00\x01\xff"
    assert got == [{"topic": "trades.BTC", "seq": 1, "data": {"px": 1}}]

    virtual.at(4.0, lambda: recorder.inner.peer.close(4001, "bye"))  # type: ignore[attr-defined]
    virtual.run(5.0)
    assert records(path)[-1] == {
        "t": 3.25,
        "conn": 1,
        "kind": "close",
        "code": 4001,
        "reason": "bye",
        "by": "venue",
    }


def test_reconnects_drops_refusals_and_client_closes_are_numbered_and_recorded(
    virtual: Any, tmp_path: Path
) -> None:
    path = tmp_path / "session.jsonl"
    memory = virtual.transport
    recorder = Recorder(memory, path)
    virtual.transport = recorder
    client = virtual.client()
    quiet = {"on_error": lambda _e: None}
    virtual.at(1.0, lambda: client.connect().subscribe(**quiet))
    virtual.at(2.0, lambda: memory.peer.drop())
    virtual.at(2.5, lambda: memory.refuse(1))
    virtual.at(3.0, lambda: client.connect().subscribe(**quiet))
    virtual.at(4.0, lambda: client.connect().subscribe(**quiet))
    virtual.at(5.0, lambda: client.close().subscribe(**quiet))
    virtual.run(10.0)

    lines = records(path)
    assert lines[0]["protocol"] is None
    assert [(r["t"], r["conn"], r["kind"]) for r in lines[1:]] == [
        (0.25, 1, "open"),
        (1.25, 1, "drop"),
        (2.25, None, "open_failed"),
        (3.25, 2, "open"),
        (4.25, 2, "close"),
    ]
    assert lines[2]["error"].startswith("ConnectionLost")
    assert lines[3]["error"].startswith(ConnectFailed.__name__)
    assert lines[5] == {"t": 4.25, "conn": 2, "kind": "close", "code": 1000, "reason": "", "by": "client"}
    assert recorder.connections == 2

    loaded = load_recording(path)
    assert [c.number for c in loaded.connections] == [1, 2]
    assert [c.opened for c in loaded.connections] == [0.25, 3.25]
    assert [e.kind for c in loaded.connections for e in c.entries] == ["drop", "close"]
    assert loaded.failed_opens == 1
    recorder.close()
    recorder.close()  # idempotent


def test_a_stream_target_is_written_and_left_open(virtual: Any) -> None:
    stream = io.StringIO()
    recorder = Recorder(virtual.transport, stream, protocol="okx")
    virtual.transport = recorder
    client = virtual.client()
    virtual.at(1.0, lambda: client.connect().subscribe(on_error=lambda _e: None))
    virtual.run(2.0)
    recorder.close()
    assert not stream.closed
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["protocol"] == "okx"
    assert lines[1] == {"t": 0.25, "conn": 1, "kind": "open", "url": "ws://venue.test/ws"}
    assert recorder.lines == 2


class FullDisk(io.StringIO):
    """A stream that fails after ``room`` writes, as a full disk does."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, text: str) -> int:
        if self.room <= 0:
            raise OSError(28, "No space left on device")
        self.room -= 1
        return super().write(text)


def test_a_write_error_stops_the_recording_but_not_the_session(virtual: Any) -> None:
    recorder = Recorder(virtual.transport, FullDisk(room=2), protocol="generic")
    virtual.transport = recorder
    client = virtual.client()
    got: list[Any] = []
    virtual.at(1.0, lambda: client.connect().subscribe(on_error=lambda _e: None))
    virtual.at(2.0, lambda: client.watch("trades.BTC").subscribe(got.append))
    virtual.at(3.0, lambda: virtual.responder.publish("trades.BTC", {"px": 1}))
    virtual.run(4.0)
    assert got == [{"topic": "trades.BTC", "seq": 1, "data": {"px": 1}}]
    assert recorder.lines == 2  # the header and the open record
    assert isinstance(recorder.error, OSError) and recorder.error.errno == 28
    assert recorder.unwritten == 3  # the subscribe, its ack and the data frame: counted, not lost silently


# Reading a recording back: what is refused, naming the file and the line ----------------------------
HEADER = {
    "format": "rxws-recording",
    "version": 1,
    "url": "ws://x.test",
    "protocol": "generic",
    "started": "",
}
OPEN = {"t": 1.0, "conn": 1, "kind": "open", "url": "ws://x.test"}
SUBSCRIBE = '{"op":"subscribe","id":1,"args":["trades.BTC"]}'


def rec(t: float, kind: str, conn: int = 1, **fields: Any) -> dict[str, Any]:
    return {"t": t, "conn": conn, "kind": kind, **fields}


BROKEN: list[tuple[str, str, int, str]] = [
    ("corrupt", json.dumps(HEADER) + "\n" + json.dumps(OPEN) + "\n{oops\n", 3, "not a JSON record"),
    ("truncated", json.dumps(HEADER) + "\n" + json.dumps(OPEN) + '\n{"t": 1.5, "co', 3, "cut short"),
    ("no header", json.dumps(OPEN) + "\n", 1, "not an rxws recording"),
    ("version", json.dumps({**HEADER, "version": 9}) + "\n", 1, "unsupported recording version 9"),
    ("kind", json.dumps(HEADER) + "\n" + json.dumps(rec(1.0, "warp")) + "\n", 2, "unknown record kind"),
    (
        "never opened",
        json.dumps(HEADER) + "\n" + json.dumps(rec(1.0, "in", conn=2, text="x")) + "\n",
        2,
        "never opened",
    ),
    (
        "base64",
        json.dumps(HEADER) + "\n" + json.dumps(OPEN) + "\n" + json.dumps(rec(1.0, "in", binary="@@")) + "\n",
        3,
        "base64",
    ),
    ("negative time", json.dumps(HEADER) + "\n" + json.dumps(rec(-1.0, "open")) + "\n", 2, "'t' must be"),
    ("empty", "", 1, "empty recording"),
]


@pytest.mark.parametrize(("content", "line", "why"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_recording_is_refused_naming_the_file_and_line(
    tmp_path: Path, content: str, line: int, why: str
) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(content)
    with pytest.raises(RecordingError) as info:
        load_recording(path)
    assert isinstance(info.value, RxwsError)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert why in str(info.value)
    assert (info.value.path, info.value.line) == (str(path), line)


def test_a_missing_file_is_a_recording_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot read the recording"):
        load_recording(tmp_path / "absent.jsonl")


def test_a_recording_cut_after_a_whole_line_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"  # no close record: the recorder crashed after a whole line
    lines = [HEADER, OPEN, rec(2.0, "out", text=SUBSCRIBE), rec(2.5, "in", binary="AAE=")]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    loaded = load_recording(path)
    assert loaded.connections[0].ended is None
    assert [e.frame for e in loaded.connections[0].entries] == [SUBSCRIBE, b"\x00\x01"]


def test_a_recording_link_reports_back_pressure_as_the_real_link_does() -> None:
    from reactivex.testing import TestScheduler

    from rxws.transport.base import LinkOptions
    from rxws.transport.memory import MemoryTransport

    scheduler, memory, stream = TestScheduler(), MemoryTransport(), io.StringIO()
    recorder = Recorder(memory, stream)
    links: list[Any] = []
    recorder.open("ws://x.test", LinkOptions(write_high_water=10), scheduler).subscribe(links.append)
    scheduler.advance_to(1.0)
    (link,) = links
    drained: list[float] = []
    link.on_drain = lambda: drained.append(scheduler.clock)
    memory.peer.stop_reading()
    assert link.send("a" * 4) is True
    assert link.send("b" * 20) is False and link.writable is False
    scheduler.schedule_absolute(2.0, lambda *_: memory.peer.resume_reading())
    scheduler.advance_to(3.0)
    assert drained == [2.0] and link.writable is True
    assert memory.peer.sent == ["a" * 4, "b" * 20]
    outs = [json.loads(line) for line in stream.getvalue().splitlines() if '"out"' in line]
    assert [r["text"] for r in outs] == ["a" * 4, "b" * 20]
