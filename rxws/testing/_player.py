"""Replaying one recorded connection, sans-I/O: what the venue sends next, and when.

Shared by :class:`rxws.testing.ReplayVenue` (a real socket, the loop's clock) and
:class:`rxws.testing.ReplayTransport` (virtual time). The driver feeds the client's frames in
(:meth:`Player.client_frame`) and asks :meth:`Player.poll` what is due at ``now``.

The rules:

* a venue frame is due at its recorded offset from the last synchronisation point, divided by
  ``speed`` (``None``: at once);
* a recorded client frame is a synchronisation point: the venue goes on only once the live client
  has sent that many frames (the n-th recorded client frame is matched by the n-th live one; a
  different text is counted in ``mismatches``, not refused), and then keeps the recorded delay
  from the later of "the frame arrived" and "the recording says so";
* heartbeat pings (as the recording's dialect parses them) are not waited on: a live ping is
  answered at once and the recorded answer to a recorded ping is left out;
* a wait longer than ``client_timeout`` ends the connection with a 1011 close saying which frame
  never came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rxws.testing._recording import RecordedConnection
from rxws.testing.dialects import ServerDialect
from rxws.transport.base import Frame

__all__ = ["Player", "Step", "build_steps"]

TIMEOUT_CODE = 1011


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the venue does (``send``, ``close``, ``drop``) or waits for (``expect``)."""

    kind: Literal["send", "expect", "close", "drop"]
    at: float
    frame: Frame | None = None
    code: int | None = None
    reason: str = ""
    line: int = 0


def _is_ping(dialect: ServerDialect | None, frame: Frame) -> Frame | None:
    """The dialect's answer when ``frame`` is a heartbeat ping, else None."""
    if dialect is None:
        return None
    op = dialect.parse(frame)
    return dialect.pong(op) if op.op == "ping" else None


def build_steps(conn: RecordedConnection, dialect: ServerDialect | None) -> list[Step]:
    """The venue's script for one recorded connection."""
    steps: list[Step] = []
    pongs: list[Frame] = []
    for entry in conn.entries:
        frame = entry.frame
        if entry.kind == "out" and frame is not None:
            pong = _is_ping(dialect, frame)
            if pong is not None:
                pongs.append(pong)
            else:
                steps.append(Step("expect", entry.t, frame, line=entry.line))
        elif entry.kind == "in" and frame is not None:
            if frame in pongs:
                pongs.remove(frame)
            else:
                steps.append(Step("send", entry.t, frame, line=entry.line))
        elif entry.kind == "close" and entry.by == "venue":
            steps.append(Step("close", entry.t, code=entry.code, reason=entry.reason, line=entry.line))
        elif entry.kind == "drop":
            steps.append(Step("drop", entry.t, line=entry.line))
        # a close by the client: the live client closes by itself; the venue waits for it.
    return steps


class Player:
    """Plays one connection's steps against a live client.

    Args:
        steps: from :func:`build_steps`.
        opened: the connection's recorded opening time (seconds since the recording started).
        now: the driver's clock when the live connection opened.
        speed: 1.0 for the recorded pace, 2.0 twice as fast, None as fast as possible.
        client_timeout: how long (driver clock) to wait for a client frame the recording shows.
        dialect: parses the client's frames to answer heartbeat pings (None: no answers).
    """

    def __init__(
        self,
        steps: list[Step],
        *,
        opened: float,
        now: float,
        speed: float | None,
        client_timeout: float,
        dialect: ServerDialect | None,
    ) -> None:
        self.steps = steps
        self.speed = speed
        self.client_timeout = client_timeout
        self.dialect = dialect
        self.mismatches: list[tuple[int, Frame, Frame]] = []
        """(recording line, recorded frame, live frame) for each client frame that differed."""
        self.failure: str | None = None
        """Why the replay of this connection gave up (a client frame that never came)."""
        self.sent = 0
        self._i = 0
        self._anchor_real = now
        self._anchor_rec = opened
        self._arrivals: list[tuple[float, Frame]] = []
        self._matched = 0
        self._wait_since: float | None = None

    @property
    def finished(self) -> bool:
        """Every step is done (the venue has nothing more to send)."""
        return self._i >= len(self.steps)

    def client_frame(self, frame: Frame, now: float) -> Frame | None:
        """The client sent ``frame`` at ``now``; returns the answer to send at once (a pong), if any."""
        pong = _is_ping(self.dialect, frame)
        if pong is None:
            self._arrivals.append((now, frame))
        return pong

    def _due(self, at: float) -> float:
        if self.speed is None:
            return self._anchor_real
        return self._anchor_real + max(0.0, at - self._anchor_rec) / self.speed

    def poll(self, now: float, limit: int = 1024) -> tuple[list[Step], float | None]:
        """The steps due at ``now`` (at most ``limit``), and when to poll next.

        The second value is None when only a client frame (or nothing) can move the replay on.
        A ``close`` or ``drop`` step is always the last one returned.
        """
        due: list[Step] = []
        steps = self.steps
        while self._i < len(steps) and len(due) < limit:
            step = steps[self._i]
            if step.kind == "expect":
                if self._matched >= len(self._arrivals):
                    if self._wait_since is None:
                        self._wait_since = now
                    deadline = self._wait_since + self.client_timeout
                    if now < deadline:
                        return due, deadline
                    due.append(self._give_up(step))
                    return due, None
                arrived, frame = self._arrivals[self._matched]
                self._matched += 1
                if frame != step.frame:
                    assert step.frame is not None
                    self.mismatches.append((step.line, step.frame, frame))
                self._anchor_real = max(arrived, self._due(step.at))
                self._anchor_rec = step.at
                self._wait_since = None
                self._i += 1
                continue
            at = self._due(step.at)
            if at > now:
                return due, at
            due.append(step)
            self._i += 1
            if step.kind == "send":
                self.sent += 1
            else:
                self._i = len(steps)
        return due, (now if self._i < len(steps) else None)

    def _give_up(self, step: Step) -> Step:
        text = step.frame if isinstance(step.frame, str) else repr(step.frame)
        self.failure = (
            f"replay: the client did not send the frame of recording line {step.line} "
            f"within {self.client_timeout:g}s: {text[:200]}"
        )
        self._i = len(self.steps)
        reason = f"replay: client frame of line {step.line} never came"
        return Step("close", step.at, code=TIMEOUT_CODE, reason=reason, line=step.line)
