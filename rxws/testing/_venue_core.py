"""The mock venue's behaviour, sans-I/O: shared by MockVenue (real sockets) and Responder (memory).

A :class:`VenueCore` holds what is venue-wide (sequence numbers per topic, refused topics, the
rate-limit switch); a :class:`SessionCore` holds one connection's subscriptions and message
timestamps. ``SessionCore.receive(frame, now)`` returns what the venue does in answer: frames to
send (some after a delay) or a close.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rxws.testing.dialects import ClientOp, ServerDialect, server_dialect

if TYPE_CHECKING:
    from rxws.testing._auth import VenueAuth

__all__ = ["Close", "Reply", "SessionCore", "VenueCore"]


@dataclass(frozen=True, slots=True)
class Reply:
    """Send ``frame`` after ``delay`` seconds."""

    frame: str
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with ``code`` and ``reason``."""

    code: int
    reason: str = ""


Action = Reply | Close


@dataclass
class VenueCore:
    """Venue-wide state and settings.

    Args:
        dialect: the server dialect (name or instance).
        refuse_topics: topics whose subscribe is answered with an error.
        max_messages_per_second: above this many client messages in any 1 s window, the venue
            closes the connection with 1008 (as Binance does); None disables the check.
    """

    dialect: ServerDialect | str = "generic"
    refuse_topics: set[str] = field(default_factory=set)
    max_messages_per_second: int | None = None
    seqs: dict[str, int] = field(default_factory=dict)
    received: list[tuple[int, str | bytes]] = field(default_factory=list)
    record: bool = True
    auth: VenueAuth | None = None  # issue 13: login checks (rxws.testing._auth)

    def __post_init__(self) -> None:
        if isinstance(self.dialect, str):
            self.dialect = server_dialect(self.dialect)

    @property
    def server(self) -> ServerDialect:
        assert isinstance(self.dialect, ServerDialect)
        return self.dialect

    def next_seq(self, topic: str, skip: int = 0) -> int:
        """The next sequence number for ``topic`` (``skip`` numbers left out first)."""
        seq = self.seqs.get(topic, 0) + 1 + skip
        self.seqs[topic] = seq
        return seq

    def data_frame(self, topic: str, payload: Any, skip: int = 0) -> str:
        """A data frame for ``topic`` with its next sequence number."""
        return self.server.data(topic, self.next_seq(topic, skip), payload)


class SessionCore:
    """One client connection as the venue sees it."""

    def __init__(self, venue: VenueCore, number: int) -> None:
        self.venue = venue
        self.number = number
        self.topics: dict[str, None] = {}
        self._recent: deque[float] = deque()
        self.authenticated = False  # issue 13: set by VenueAuth on a good login

    def receive(self, frame: str | bytes, now: float) -> list[Action]:
        """What the venue does when this client sends ``frame`` at ``now``."""
        venue = self.venue
        if venue.record:
            venue.received.append((self.number, frame))
        limit = venue.max_messages_per_second
        if limit is not None:
            recent = self._recent
            recent.append(now)
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) > limit:
                return [Close(1008, "Too many requests")]
        server = venue.server
        op = server.parse(frame)
        return self._answer(op, server)

    def _answer(self, op: ClientOp, server: ServerDialect) -> list[Action]:
        if op.op == "invalid":
            return [Reply(server.error(op.id, 400, op.detail))]
        if op.op == "ping":
            return [Reply(server.pong(op))]
        if op.op == "list":
            return [Reply(server.reply(op.id, list(self.topics)))]
        if op.op == "subscribe":
            auth_refusal = self.venue.auth and self.venue.auth.refuse_subscribe(self, op, server)
            if auth_refusal:
                return [Reply(f) for f in auth_refusal]
            refused = [t for t in op.topics if t in self.venue.refuse_topics]
            if refused:
                return [Reply(server.error(op.id, 404, f"unknown topic(s): {', '.join(refused)}"))]
            for topic in op.topics:
                self.topics[topic] = None
            return [Reply(f) for f in server.ack(op)]
        if op.op == "unsubscribe":
            for topic in op.topics:
                self.topics.pop(topic, None)
            return [Reply(f) for f in server.ack(op)]
        return self._request(op, server)

    def _request(self, op: ClientOp, server: ServerDialect) -> list[Action]:
        login = self.venue.auth and self.venue.auth.answer(self, op, server)
        if login:
            return [Reply(f) for f in login]
        params = op.params if isinstance(op.params, dict) else {}
        if op.method == "echo":
            return [Reply(server.reply(op.id, op.params))]
        if op.method == "sleep":
            seconds = params.get("seconds", 0)
            if not isinstance(seconds, int | float) or seconds < 0:
                return [Reply(server.error(op.id, 400, "'seconds' must be a number >= 0"))]
            return [Reply(server.reply(op.id, None), delay=float(seconds))]
        if op.method == "fail":
            code = params.get("code", 500)
            message = params.get("message", "failed on request")
            return [Reply(server.error(op.id, code if isinstance(code, int) else 500, str(message)))]
        if op.method == "parts":
            return _parts(op, server, params)
        return [Reply(server.error(op.id, 404, f"unknown method {op.method!r}"))]


def _parts(op: ClientOp, server: ServerDialect, params: dict[str, Any]) -> list[Action]:
    """``parts`` (``{"count": n, "gap": s}``): a multi-frame reply, ``{"part": i, "of": n}`` for
    i = 1..n, ``gap`` seconds apart, all but the last marked partial (issue 16)."""
    count, gap = params.get("count", 3), params.get("gap", 0.0)
    if type(count) is not int or not 1 <= count <= 1000 or not isinstance(gap, int | float) or gap < 0:
        return [Reply(server.error(op.id, 400, "'count' must be an int in 1..1000 and 'gap' a number >= 0"))]
    frames: list[Action] = []
    for part in range(1, count + 1):
        result = {"part": part, "of": count}
        frame = server.reply(op.id, result) if part == count else server.partial_reply(op.id, result)
        if frame is None:
            return [Reply(server.error(op.id, 404, f"the {server.name} dialect has no multi-frame replies"))]
        frames.append(Reply(frame, delay=gap * (part - 1)))
    return frames
