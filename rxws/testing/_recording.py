"""The session recording format: writing records and reading a file back (see :mod:`rxws.testing.recorder`).

Sans-I/O apart from the file itself: the writer is handed times, the reader returns plain data.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from rxws.exceptions import RecordingError
from rxws.protocols.base import json_dumps, json_loads
from rxws.transport.base import Frame

__all__ = [
    "FORMAT",
    "VERSION",
    "Entry",
    "RecordedConnection",
    "Recording",
    "RecordingWriter",
    "load_recording",
]

log = logging.getLogger("rxws.testing.recorder")

FORMAT = "rxws-recording"
VERSION = 1
EntryKind = Literal["open", "in", "out", "close", "drop", "open_failed"]
_CONNECTION_KINDS = frozenset(("open", "in", "out", "close", "drop"))


class RecordingWriter:
    """Writes one record per line and flushes it, so a crash leaves every finished line readable."""

    def __init__(self, stream: IO[str], *, close_stream: bool) -> None:
        self._stream = stream
        self._close_stream = close_stream
        self.lines = 0
        self.unwritten = 0
        """Records not written: after ``close()``, or after the file failed (``error``)."""
        self.error: OSError | None = None

    def header(self, url: str, protocol: str | None, started: str) -> None:
        """The first line: format, version, url, protocol name and wall-clock start (ISO 8601, UTC)."""
        self._write(
            {"format": FORMAT, "version": VERSION, "url": url, "protocol": protocol, "started": started}
        )

    def record(self, t: float, conn: int | None, kind: EntryKind, **fields: Any) -> None:
        """One record: ``t`` seconds since the start, on connection ``conn``."""
        self._write({"t": round(t, 6), "conn": conn, "kind": kind, **fields})

    def frame(self, t: float, conn: int, kind: Literal["in", "out"], frame: Frame) -> None:
        """A data frame: text as ``text``, binary as base64 in ``binary``."""
        if isinstance(frame, str):
            self.record(t, conn, kind, text=frame)
        else:
            self.record(t, conn, kind, binary=base64.b64encode(frame).decode("ascii"))

    def close(self) -> None:
        """Close the file if the writer opened it (idempotent)."""
        if self._close_stream and not self._stream.closed:
            self._stream.close()

    def _write(self, record: dict[str, Any]) -> None:
        if self._stream.closed or self.error is not None:
            self.unwritten += 1
            return
        try:
            self._stream.write(json_dumps(record) + "\n")
            self._stream.flush()
        except OSError as exc:  # a full disk must not break the session being recorded
            self.error = exc
            self.unwritten += 1
            log.error("recording stopped: cannot write to %s: %s", getattr(self._stream, "name", "?"), exc)
            return
        self.lines += 1


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of a connection, as read back."""

    t: float
    kind: EntryKind
    line: int
    frame: Frame | None = None
    code: int | None = None
    reason: str = ""
    by: str = ""
    error: str = ""


@dataclass(slots=True)
class RecordedConnection:
    """One recorded connection: its number, when it opened and its records in order."""

    number: int
    opened: float
    url: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def ended(self) -> Entry | None:
        """The ``close`` or ``drop`` record, or None when the recording stops before the end."""
        last = self.entries[-1] if self.entries else None
        return last if last is not None and last.kind in ("close", "drop") else None


@dataclass(slots=True)
class Recording:
    """A whole recording: the header's fields and the connections in the order they opened."""

    path: str
    version: int
    url: str
    protocol: str | None
    started: str
    connections: list[RecordedConnection] = field(default_factory=list)
    failed_opens: int = 0


def load_recording(source: str | os.PathLike[str] | Iterable[str], *, name: str | None = None) -> Recording:
    """Read a recording from a path (or from lines, named ``name`` in errors).

    Raises:
        RecordingError: naming the file and the line, for a missing or foreign header, a line that
            is not a JSON object (a truncated last line included), a record with a missing or
            mistyped field, or a connection record out of place.
    """
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        try:
            with open(path, encoding="utf-8") as fh:
                return _parse(fh, path)
        except OSError as exc:
            raise RecordingError(path, None, f"cannot read the recording: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise RecordingError(path, None, f"not UTF-8 text: {exc}") from exc
    return _parse(source, name or "<recording>")


def _parse(lines: Iterable[str], path: str) -> Recording:
    recording: Recording | None = None
    open_conns: dict[int, RecordedConnection] = {}
    ended: set[int] = set()
    number = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            item = json_loads(raw)
        except ValueError as exc:
            cut = "" if raw.endswith("\n") else " (cut short: the recording was interrupted?)"
            raise RecordingError(path, number, f"not a JSON record{cut}: {exc}") from None
        if not isinstance(item, dict):
            raise RecordingError(path, number, f"expected a JSON object, got {type(item).__name__}")
        if recording is None:
            recording = _header(item, path, number)
            continue
        _record(item, recording, open_conns, ended, path, number)
    if recording is None:
        raise RecordingError(path, number or 1, "empty recording: no header line")
    return recording


def _header(item: dict[str, Any], path: str, line: int) -> Recording:
    if item.get("format") != FORMAT:
        raise RecordingError(path, line, f'not an rxws recording: the header has no "format": {FORMAT!r}')
    version = item.get("version")
    if version != VERSION:
        raise RecordingError(
            path, line, f"unsupported recording version {version!r} (this rxws reads {VERSION})"
        )
    url, protocol, started = item.get("url"), item.get("protocol"), item.get("started", "")
    if not isinstance(url, str) or not (protocol is None or isinstance(protocol, str)):
        raise RecordingError(path, line, "the header needs a string 'url' and a string or null 'protocol'")
    return Recording(path, version, url, protocol, str(started))


def _record(
    item: dict[str, Any],
    recording: Recording,
    open_conns: dict[int, RecordedConnection],
    ended: set[int],
    path: str,
    line: int,
) -> None:
    t, conn, kind = item.get("t"), item.get("conn"), item.get("kind")
    if not isinstance(t, int | float) or isinstance(t, bool) or t < 0:
        raise RecordingError(path, line, f"'t' must be a number of seconds >= 0, got {t!r}")
    if kind == "open_failed":
        recording.failed_opens += 1
        return
    if kind not in _CONNECTION_KINDS:
        raise RecordingError(path, line, f"unknown record kind {kind!r}")
    if not isinstance(conn, int) or isinstance(conn, bool) or conn < 1:
        raise RecordingError(path, line, f"'conn' must be a connection number >= 1, got {conn!r}")
    if kind == "open":
        if conn in open_conns or conn in ended:
            raise RecordingError(path, line, f"connection {conn} opens twice")
        url = item.get("url", recording.url)
        record = RecordedConnection(conn, float(t), url if isinstance(url, str) else recording.url)
        open_conns[conn] = record
        recording.connections.append(record)
        return
    target = open_conns.get(conn)
    if target is None:
        state = "has ended" if conn in ended else "was never opened"
        raise RecordingError(path, line, f"a {kind!r} record on connection {conn}, which {state}")
    target.entries.append(_entry(item, float(t), kind, path, line))
    if kind in ("close", "drop"):
        del open_conns[conn]
        ended.add(conn)


def _entry(item: dict[str, Any], t: float, kind: EntryKind, path: str, line: int) -> Entry:
    if kind in ("in", "out"):
        text, binary = item.get("text"), item.get("binary")
        if isinstance(text, str):
            return Entry(t, kind, line, frame=text)
        if isinstance(binary, str):
            try:
                return Entry(t, kind, line, frame=base64.b64decode(binary, validate=True))
            except (binascii.Error, ValueError) as exc:
                raise RecordingError(path, line, f"'binary' is not valid base64: {exc}") from None
        raise RecordingError(path, line, f"an {kind!r} record needs a string 'text' or 'binary'")
    if kind == "close":
        code, reason, by = item.get("code"), item.get("reason", ""), item.get("by")
        if not (code is None or (isinstance(code, int) and not isinstance(code, bool))):
            raise RecordingError(path, line, f"'code' must be an integer or null, got {code!r}")
        if by not in ("venue", "client") or not isinstance(reason, str):
            raise RecordingError(
                path, line, "a 'close' record needs 'by': 'venue' or 'client' and a string 'reason'"
            )
        return Entry(t, kind, line, code=code, reason=reason, by=by)
    error = item.get("error", "")
    return Entry(t, kind, line, error=str(error))
