"""One connection's way out: the outbound queue, the link's back-pressure and the rate limiter.

Every frame a session writes passes :meth:`SessionWriter.write`: straight to the link when the
queue is empty, the link is below its write high-water mark and the limiter admits it, else into a
bounded FIFO queue flushed when the limiter says and when the link drains. A send completes when
the link took the frame (not when it was queued); :meth:`SessionWriter.fail` fails every unwritten
frame at once with one ``OutboundFailed`` carrying the count.

Frames written while the session is still opening (its open steps, e.g. a login) go *early*: they
pass ahead of the host's queued frames, which wait until the session is ready.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable

from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import ClientContext
from rxws._command import CommandResult
from rxws._session_budget import ConnectionBudget
from rxws.events import MessageDropped, OutboundFailed
from rxws.exceptions import RateLimitExceeded
from rxws.ratelimit.base import Action
from rxws.ratelimit.events import Queued, Throttled
from rxws.transport.base import Frame, Link

__all__: list[str] = []

Entry = tuple[Frame, CommandResult[None] | None, Hashable]


class SessionWriter:
    """The outbound queue of one connection (see the module docstring)."""

    def __init__(
        self,
        ctx: ClientContext,
        budget: ConnectionBudget,
        *,
        max_queue: int,
        is_pending: Callable[[Hashable], bool],
        on_drained: Callable[[], None],
    ) -> None:
        self._ctx = ctx
        self._budget = budget
        self._conn_id = budget.conn_id
        self._max_queue = max_queue
        self._is_pending = is_pending
        self._on_drained = on_drained
        self._link: Link | None = None
        self._ready = False
        self._outq: deque[Entry] = deque()
        self._early: deque[Entry] = deque()
        self._held: Entry | None = None
        self._blocked = False
        self._flush_timer = SerialDisposable()

    # What the session and the heartbeat read ------------------------------------------------------
    @property
    def queued(self) -> int:
        """Frames waiting in the queue (not counting the held one)."""
        return len(self._outq) + len(self._early)

    @property
    def holding(self) -> bool:
        """A frame took the link above its mark and completes at the drain."""
        return self._held is not None

    @property
    def blocked(self) -> bool:
        """The link is above its write high-water mark."""
        return self._blocked

    def mark_blocked(self) -> None:
        """A write outside the queue (a ping) took the link above its mark."""
        self._blocked = True

    # Link ----------------------------------------------------------------------------------------
    def attach(self, link: Link) -> None:
        """Write to ``link`` from now on (early frames only, until :meth:`ready`)."""
        self._link = link
        self._blocked = False
        held, self._held = self._held, None
        if held is not None:
            self._outq.appendleft(held)
        link.on_drain = lambda: self._link_drained(link)

    def ready(self) -> None:
        """The session is open: the host's frames go out too; flush what waited."""
        self._ready = True
        self.flush()

    def detach(self) -> None:
        """The link is gone (or closing): nothing more is written; unwritten frames stay."""
        self._link = None
        self._ready = False
        self._flush_timer.disposable = Disposable()

    def take_unwritten(self) -> deque[Entry]:
        """Hand over every unwritten frame (the held one first), for the next connection."""
        self._blocked = False
        held, self._held = self._held, None
        queue, self._outq = self._outq, deque()
        if held is not None:
            queue.appendleft(held)
        return queue

    def adopt(self, entries: deque[Entry]) -> None:
        """Queue ``entries`` (a previous connection's unwritten frames) ahead of anything new."""
        entries.extend(self._outq)
        self._outq = entries

    # Writing -------------------------------------------------------------------------------------
    def write(
        self,
        frame: Frame,
        done: CommandResult[None] | None,
        request_id: Hashable = None,
        *,
        early: bool = False,
    ) -> None:
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
        queue = self._early if early else self._outq
        if (
            link is not None
            and (self._ready or early)
            and not queue
            and not self._blocked
            and (self._ctx.limiter is None or self._admit())
        ):
            self._put(link, frame, done, request_id)
            return
        if self.queued + (self._held is not None) >= self._max_queue:
            ctx = self._ctx
            ctx.stats.outbound_dropped += 1
            ctx.emit(MessageDropped(at=ctx.now(), reason="outbound queue full"))
            error = RateLimitExceeded(f"outbound queue full ({self._max_queue} frames unwritten)")
            if done is not None:
                done.set_error(error)
                return
            raise error
        queue.append((frame, done, request_id))
        depth = len(self._outq)
        if not early and not depth & (depth - 1):  # 1, 2, 4, 8, ...: see Queued
            ctx = self._ctx
            ctx.emit_rate(Queued(at=ctx.now(), action=Action.MESSAGE, conn_id=self._conn_id, depth=depth))

    def _put(self, link: Link, frame: Frame, done: CommandResult[None] | None, request_id: Hashable) -> None:
        """Hand one frame to the link: done at once, or held until the link drains below its mark."""
        written = link.send(frame)
        self._ctx.stats.frames_out += 1
        if written:
            if done is not None:
                done.set_result(None)
        else:
            self._blocked = True
            self._held = (frame, done, request_id)

    def _admit(self) -> bool:
        """Whether the limiter lets one more frame out now; schedules a flush when it does not."""
        limiter = self._ctx.limiter
        if limiter is None:
            return True
        ctx = self._ctx
        now = ctx.now()
        decision = limiter.acquire_message(self._conn_id, now)
        if decision.allowed:
            return True
        ctx.emit_rate(
            Throttled(at=now, action=Action.MESSAGE, conn_id=self._conn_id, delay=decision.retry_after)
        )
        self._flush_timer.disposable = ctx.after(decision.retry_after, self.flush)
        return False

    def flush(self) -> None:
        """Write what waited, in order, while the link, its mark and the limiter allow."""
        if self._early and not self._drain(self._early):
            return
        if self._ready and self._outq and self._drain(self._outq):
            ctx = self._ctx
            ctx.emit_rate(Queued(at=ctx.now(), action=Action.MESSAGE, conn_id=self._conn_id, depth=0))

    def _drain(self, queue: deque[Entry]) -> bool:
        """Write from ``queue`` while allowed; whether it is empty now."""
        link = self._link
        is_pending = self._is_pending
        while queue and link is not None and not self._blocked:
            frame, done, request_id = queue[0]
            if request_id is not None and not is_pending(request_id):
                queue.popleft()
                ctx = self._ctx
                ctx.stats.outbound_dropped += 1
                ctx.emit(
                    MessageDropped(at=ctx.now(), reason=f"request {request_id!r} failed before it was sent")
                )
                continue
            if not self._admit():
                return False
            queue.popleft()
            self._put(link, frame, done, request_id)
        return not queue

    def _link_drained(self, link: Link) -> None:
        """The link fell back below its high-water mark: the held frame is written; flush."""
        if link is not self._link or not self._blocked:
            return
        self._blocked = False
        held, self._held = self._held, None
        if held is not None and held[1] is not None:
            held[1].set_result(None)
        self.flush()
        if not self._blocked:
            self._on_drained()

    def fail(self, error: Exception) -> None:
        """Fail every unwritten frame (the held one and the queue) with ``error``: one event."""
        self._blocked = False
        had_queue = bool(self._outq)
        held, self._held = self._held, None
        queued = self._early
        self._early = deque()
        if held is not None:
            queued.append(held)
        queued.extend(self._outq)
        self._outq = deque()
        if not queued:
            return
        ctx = self._ctx
        ctx.stats.outbound_dropped += len(queued)
        ctx.emit(OutboundFailed(at=ctx.now(), count=len(queued), why=str(error)))
        if had_queue:
            ctx.emit_rate(Queued(at=ctx.now(), action=Action.MESSAGE, conn_id=self._conn_id, depth=0))
        for _frame, done, _request_id in queued:
            if done is not None:
                done.set_error(error)
