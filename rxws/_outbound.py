"""The way out: raw sends, requests and their deadlines, the outbound queue and the rate limiter.

Every frame the client writes passes :meth:`_OutboundMixin._write`: straight to the link when the
queue is empty, the link is below its write high-water mark and the limiter admits it, else into a
bounded FIFO queue flushed when the limiter says and when the link drains. A send completes when
the link took the frame (not when it was queued), and a drop fails every unwritten frame at once
with one ``OutboundFailed`` carrying the count. Requests wait in a :class:`~rxws.core.correlation.PendingTable` with one timer for all
deadlines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from reactivex.disposable import Disposable

from rxws._client_base import _ClientBase, _Pending, _plain
from rxws._command import CommandResult
from rxws.core.correlation import ReplyOutcome
from rxws.core.state import ConnectionState
from rxws.events import LateReply, MessageDropped, OutboundFailed
from rxws.exceptions import NotConnected, RateLimitExceeded, RequestTimeout, VenueError
from rxws.ratelimit.base import Action
from rxws.ratelimit.events import Queued, Throttled
from rxws.transport.base import Frame, Link

__all__: list[str] = []

_S = ConnectionState

_Entry = tuple[Frame, CommandResult[None] | None, Hashable]


class _OutboundMixin(_ClientBase):
    """Sending, requests and replies, deadlines, the outbound queue."""

    _blocked: bool = False
    """The link is above its write high-water mark: frames wait in the queue until it drains."""
    _held: _Entry | None = None
    """The frame whose write took the link above its mark (done at the drain, failed at a drop)."""

    if TYPE_CHECKING:  # the heartbeat (rxws._heartbeat) sends a ping that waited for the drain

        def _resume_heartbeat(self) -> None: ...

    def _on_reply(self, request_id: Hashable, message: Any) -> None:
        outcome, entry = self._pending.resolve(request_id)
        if entry is None:
            if outcome == ReplyOutcome.LATE:
                self.stats.late_replies += 1
                why = "reply arrived after its request timed out or was cancelled"
            else:
                self.stats.unknown_replies += 1
                why = "no request with this id is pending"
            self._emit(LateReply(at=self._now(), request_id=_plain(request_id), why=why))
            self._check_rate_signal(message)
            return
        try:
            error = self.protocol.reply_error(message)
            if error is not None:
                self._check_rate_signal(message)
            value = self.protocol.reply_result(message) if entry.kind == "request" and error is None else None
        except Exception as exc:  # the dialect cannot read this reply: its request fails with why
            error = VenueError(None, f"the reply could not be read: {type(exc).__name__}: {exc}", message)
            error.__cause__ = exc
            self._settle_reply(entry, error)
            raise  # reported as InternalError by the client; the connection goes on
        self._settle_reply(entry, error, value)

    def _settle_reply(self, entry: _Pending, error: VenueError | None, value: Any = None) -> None:
        if entry.kind == "request":
            assert entry.result is not None
            if error is not None:
                entry.result.set_error(error)
            else:
                entry.result.set_result(value)
        elif entry.kind == "subscribe":
            self._subscribed(entry.topics, error)
        else:
            self._unsubscribed(entry.topics, error)

    def _send(self, message: Any, result: CommandResult[None]) -> None:
        self._require_link()
        self._write(self.protocol.encode(message), result)

    def _require_link(self) -> None:
        if self._closed:
            raise NotConnected("the client is closed")
        state = self._sm.state
        if state is _S.CONNECTED:
            return
        if self._reconnect_pending_possible() and self._lifecycle_active():
            return
        raise NotConnected(f"not connected (state {state}); await client.connect() first")

    def _request(self, method: str, params: Any, timeout: float, result: CommandResult[Any]) -> None:
        if self._sm.state is not _S.CONNECTED or self._closed:
            self._require_link()
        if len(self._pending) >= self._max_in_flight:
            raise RateLimitExceeded(f"{self._max_in_flight} requests already in flight (max_in_flight)")
        request_id = self._next_id()
        frame = self.protocol.encode(self.protocol.request_message(method, params, request_id))
        self._expect(request_id, _Pending("request", result, timeout))
        try:
            self._write(frame, None, request_id)
        except Exception:
            self._pending.discard(request_id)
            raise
        result.on_abandon(lambda: self._run(lambda: self._request_abandoned(request_id, result), None))

    def _lifecycle_active(self) -> bool:
        return self._lifecycle_live

    def _expect(self, request_id: Hashable, entry: _Pending) -> None:
        """Register a request awaiting its reply; one timer serves every deadline."""
        deadline = self._now() + entry.timeout
        self._pending.add(request_id, entry, deadline)
        armed = self._armed_at
        if armed is None or deadline < armed:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        self._armed_at = deadline
        self._deadline_timer.disposable = self._after(max(0.0, deadline - self._now()), self._deadlines_due)

    def _deadlines_due(self) -> None:
        self._armed_at = None
        for request_id, entry in self._pending.due(self._now()):
            self._timed_out(request_id, entry)
        upcoming = self._pending.next_deadline()
        if upcoming is not None and self._armed_at is None:
            self._arm(upcoming)

    def _timed_out(self, request_id: Hashable, entry: _Pending) -> None:
        timeout = entry.timeout
        if entry.kind == "request":
            assert entry.result is not None
            entry.result.set_error(RequestTimeout(request_id, timeout))
        elif entry.kind == "subscribe":
            self._subscribed(entry.topics, VenueError(None, f"no subscribe ack within {timeout:g}s"))
        else:
            self._unsubscribed(entry.topics, VenueError(None, f"no unsubscribe ack within {timeout:g}s"))

    def _write(self, frame: Frame, done: CommandResult[None] | None, request_id: Hashable = None) -> None:
        """Write one frame now if the link and the limiter allow, else queue it (bounded, FIFO).

        ``done`` completes when the link took the frame without back-pressure (see
        :class:`~rxws.transport.base.Link`); a frame whose write took the link above its
        high-water mark is *held* and completes at the link's drain. While the link is above its
        mark, frames wait here, and ``max_outbound_queue`` bounds everything not yet written
        (the queue and the held frame).

        A queued request frame (``request_id`` given) is sent only while its request still waits:
        one that timed out or failed meanwhile is dropped (counted, with an event), never sent
        after its caller was told it failed.
        """
        link = self._link
        if (
            link is not None
            and not self._outq
            and not self._blocked
            and self._sm.state is _S.CONNECTED
            and (self._limiter is None or self._admit())
        ):
            self._put(link, frame, done, request_id)
            return
        if len(self._outq) + (self._held is not None) >= self._max_outbound_queue:
            self.stats.outbound_dropped += 1
            self._emit(MessageDropped(at=self._now(), reason="outbound queue full"))
            error = RateLimitExceeded(f"outbound queue full ({self._max_outbound_queue} frames unwritten)")
            if done is not None:
                done.set_error(error)
                return
            raise error
        self._outq.append((frame, done, request_id))
        depth = len(self._outq)
        if not depth & (depth - 1):  # 1, 2, 4, 8, ...: see Queued
            self._emit_rate(Queued(at=self._now(), action=Action.MESSAGE, conn_id=self._conn_id, depth=depth))

    def _put(self, link: Link, frame: Frame, done: CommandResult[None] | None, request_id: Hashable) -> None:
        """Hand one frame to the link: done at once, or held until the link drains below its mark."""
        written = link.send(frame)
        self.stats.frames_out += 1
        if written:
            if done is not None:
                done.set_result(None)
        else:
            self._blocked = True
            self._held = (frame, done, request_id)

    def _admit(self) -> bool:
        """Whether the limiter lets one more frame out now; schedules a flush when it does not."""
        limiter = self._limiter
        if limiter is None:
            return True
        now = self._now()
        decision = limiter.acquire_message(self._conn_id, now)
        if decision.allowed:
            return True
        self._emit_rate(
            Throttled(at=now, action=Action.MESSAGE, conn_id=self._conn_id, delay=decision.retry_after)
        )
        self._flush_timer.disposable = self._after(decision.retry_after, self._flush_outbound)
        return False

    def _flush_outbound(self) -> None:
        link = self._link
        outq = self._outq
        if not outq:
            return
        while outq and link is not None and not self._blocked and self._sm.state is _S.CONNECTED:
            frame, done, request_id = outq[0]
            if request_id is not None and request_id not in self._pending:
                outq.popleft()
                self.stats.outbound_dropped += 1
                self._emit(
                    MessageDropped(at=self._now(), reason=f"request {request_id!r} failed before it was sent")
                )
                continue
            if not self._admit():
                return
            outq.popleft()
            self._put(link, frame, done, request_id)
        if not outq:
            self._emit_rate(Queued(at=self._now(), action=Action.MESSAGE, conn_id=self._conn_id, depth=0))

    def _watch_drain(self, link: Link) -> None:
        """Listen to ``link``'s drain (a new link starts writable; a frame held by a link that
        ended goes back to the head of the queue, for the next link, when it was kept)."""
        self._blocked = False
        held, self._held = self._held, None
        if held is not None:
            self._outq.appendleft(held)
        link.on_drain = lambda: self._link_drained(link)

    def _link_drained(self, link: Link) -> None:
        """The link fell back below its high-water mark: the held frame is written; flush."""
        if link is not self._link or not self._blocked:
            return
        self._blocked = False
        held, self._held = self._held, None
        if held is not None and held[1] is not None:
            held[1].set_result(None)
        self._flush_outbound()
        if not self._blocked:
            self._resume_heartbeat()

    def _fail_outbound(self, error: Exception) -> None:
        """Fail every unwritten frame (the held one and the queue) with ``error``: one event."""
        self._blocked = False
        had_queue = bool(self._outq)
        held, self._held = self._held, None
        if held is not None:
            self._outq.appendleft(held)
        if not self._outq:
            return
        queued, self._outq = self._outq, deque()
        self.stats.outbound_dropped += len(queued)
        self._emit(OutboundFailed(at=self._now(), count=len(queued), why=str(error)))
        if had_queue:
            self._emit_rate(Queued(at=self._now(), action=Action.MESSAGE, conn_id=self._conn_id, depth=0))
        for _frame, done, _request_id in queued:
            if done is not None:
                done.set_error(error)

    def _fail_pending(self, error: Exception) -> None:
        self._deadline_timer.disposable = Disposable()
        self._armed_at = None
        for _rid, entry in self._pending.drain():
            if entry.result is not None:
                entry.result.set_error(error)
