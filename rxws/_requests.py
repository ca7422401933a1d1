"""Requests in flight: the pending table, one timer for every deadline, and how replies settle.

:class:`Requests` owns the client's :class:`~rxws.core.correlation.PendingTable`. A request is
registered before its frame is written (by whichever session writes it) and settled by the reply
the session reads, by its deadline, by its caller giving up, or by the connection ending.
Subscribe and unsubscribe requests settle through the two callbacks given at construction (the
topics part decides what an ack means).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Any, Protocol

from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import ClientContext, _Pending, _plain
from rxws._command import CommandResult
from rxws._replay import ReplayStream
from rxws._session_budget import ConnectionBudget
from rxws.core.correlation import IdGenerator, PendingTable, ReplyOutcome
from rxws.events import LateReply
from rxws.exceptions import RateLimitExceeded, RequestTimeout, VenueError
from rxws.protocols.base import VenueProtocol, fast_encoder
from rxws.transport.base import Frame

__all__: list[str] = []

Settle = Callable[[Sequence[str], Any], None]


class Writes(Protocol):
    """Where a request's frame goes: a session (``Session.write``)."""

    def write(self, frame: Frame, done: CommandResult[None] | None, request_id: Hashable = None) -> None:
        """Write ``frame``, or queue it."""


class ReadOn(Protocol):
    """The session a reply was read on: its connection's budget reads rate-limit signals."""

    budget: ConnectionBudget


class Requests:
    """The requests waiting for their reply, and their deadlines (one timer for all)."""

    def __init__(
        self,
        ctx: ClientContext,
        next_id: IdGenerator,
        *,
        max_in_flight: int,
        on_subscribed: Settle,
        on_unsubscribed: Settle,
    ) -> None:
        self._ctx = ctx
        self.next_id = next_id
        self._max_in_flight = max_in_flight
        self._on_subscribed = on_subscribed
        self._on_unsubscribed = on_unsubscribed
        self.pending: PendingTable[_Pending] = PendingTable()
        self._deadline_timer = SerialDisposable()
        self._armed_at: float | None = None
        # Replies are asked whether they are one part of several only once a streaming request
        # was made (before, every entry takes the first frame) and the dialect has such replies.
        self._is_partial: Callable[[Any], bool] | None = None
        # The dialect's default JSON encoding, bound to orjson.dumps itself when it can be.
        self._dumps = fast_encoder(ctx.protocol)

    def __len__(self) -> int:
        return len(self.pending)

    def __contains__(self, request_id: Hashable) -> bool:
        return request_id in self.pending

    def get(self, request_id: Hashable) -> _Pending | None:
        """The entry waiting under ``request_id``, or None."""
        return self.pending.get(request_id)

    def discard(self, request_id: Hashable) -> None:
        """Forget ``request_id`` (its frame was never written, or every part of it was acked)."""
        self.pending.discard(request_id)

    def request(
        self,
        session: Writes,
        method: str,
        params: Any,
        timeout: float,
        result: CommandResult[Any],
        parts: ReplayStream[Any] | None = None,
    ) -> None:
        """Send a request on ``session``; ``result`` settles with its reply (or its failure).

        With ``parts``, every part of a multi-frame reply (``protocol.is_partial``) goes to it,
        and the final part ends it (and settles ``result``).
        """
        if len(self.pending) >= self._max_in_flight:
            raise RateLimitExceeded(f"{self._max_in_flight} requests already in flight (max_in_flight)")
        protocol = self._ctx.protocol
        request_id = self.next_id()
        message = protocol.request_message(method, params, request_id)
        dumps = self._dumps
        if dumps is not None and type(message) is dict:  # the default encode, two calls less
            try:
                frame: Frame = dumps(message).decode()
            except (TypeError, ValueError, RecursionError):  # encode() raises the EncodeError
                frame = protocol.encode(message)
        else:
            frame = protocol.encode(message)
        if (
            parts is not None
            and self._is_partial is None
            and type(protocol).is_partial is not VenueProtocol.is_partial
        ):
            self._is_partial = protocol.is_partial
        # What expect() does, inline (a call less per request).
        deadline = self._ctx.now() + timeout
        self.pending.add(request_id, _Pending("request", result, timeout, (), parts), deadline)
        armed = self._armed_at
        if armed is None or deadline < armed:
            self._arm(deadline)
        try:
            session.write(frame, None, request_id)
        except Exception:
            self.pending.discard(request_id)
            raise
        # One partial, not two closures per request: the hook is called only when every waiter
        # gave up (rare), and runs the withdrawal on the client's loop then.
        result.on_abandon(partial(self._abandon_soon, request_id, result))

    def _abandon_soon(self, request_id: Hashable, result: CommandResult[Any]) -> None:
        self._ctx.run(lambda: self.abandoned(request_id, result), None)

    def expect(self, request_id: Hashable, entry: _Pending) -> None:
        """Register a request awaiting its reply; one timer serves every deadline."""
        deadline = self._ctx.now() + entry.timeout
        self.pending.add(request_id, entry, deadline)
        armed = self._armed_at
        if armed is None or deadline < armed:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        self._armed_at = deadline
        self._deadline_timer.disposable = self._ctx.after(
            max(0.0, deadline - self._ctx.now()), self._deadlines_due
        )

    def _deadlines_due(self) -> None:
        self._armed_at = None
        for request_id, entry in self.pending.due(self._ctx.now()):
            self._timed_out(request_id, entry)
        upcoming = self.pending.next_deadline()
        if upcoming is not None and self._armed_at is None:
            self._arm(upcoming)

    def _timed_out(self, request_id: Hashable, entry: _Pending) -> None:
        timeout = entry.timeout
        if entry.kind == "subscribe":
            self._on_subscribed(entry.topics, VenueError(None, f"no subscribe ack within {timeout:g}s"))
        elif entry.kind == "unsubscribe":
            self._on_unsubscribed(entry.topics, VenueError(None, f"no unsubscribe ack within {timeout:g}s"))
        else:
            assert entry.result is not None
            entry.result.set_error(RequestTimeout(request_id, timeout))

    def on_reply(self, session: ReadOn, request_id: Hashable, message: Any) -> None:
        """Settle the request ``message`` (read on ``session``) answers; a reply nobody waits for
        is counted. An error reply, or one nobody waits for, is checked for a rate-limit signal."""
        ctx = self._ctx
        final = True
        if self._is_partial is not None and self._is_partial(message):  # one part of several
            waiting = self.pending.get(request_id) if isinstance(request_id, Hashable) else None
            final = waiting is None or waiting.parts is None  # a plain request takes the first part
        entry = self.pending.take(request_id) if final else None  # the usual case, cheaper
        if entry is None:
            outcome, entry = self.pending.resolve(request_id, final=final)
        if entry is None:
            if outcome == ReplyOutcome.LATE:
                ctx.stats.late_replies += 1
                why = "reply arrived after its request timed out or was cancelled"
            else:
                ctx.stats.unknown_replies += 1
                why = "no request with this id is pending"
            ctx.emit(LateReply(at=ctx.now(), request_id=_plain(request_id), why=why))
            session.budget.check_rate_signal(message)
            return
        kind = entry.kind
        if kind == "exchange":  # the whole reply, read by whoever exchanged (e.g. a login)
            assert entry.result is not None
            entry.result.set_result(message)
            return
        protocol = ctx.protocol
        value: Any = None
        try:
            error = protocol.reply_error(message)
            if error is not None:
                session.budget.check_rate_signal(message)
            elif kind == "request":
                value = protocol.reply_result(message)
        except Exception as exc:  # the dialect cannot read this reply: its request fails with why
            error = VenueError(None, f"the reply could not be read: {type(exc).__name__}: {exc}", message)
            error.__cause__ = exc
            if not final:
                self.pending.complete(request_id)  # the stream ends here: later parts are late
            self._settle(entry, error)
            raise  # reported as InternalError by the client; the connection goes on
        if error is None and kind == "request" and entry.parts is None:
            # The hot path, a plain request answered: what _settle does for it, one call less.
            assert entry.result is not None
            entry.result.set_result(value)
            return
        if error is not None and not final:  # an error part ends a streaming reply
            self.pending.complete(request_id)
            final = True
        self._settle(entry, error, value, final)

    def _settle(
        self, entry: _Pending, error: VenueError | None, value: Any = None, final: bool = True
    ) -> None:
        parts = entry.parts
        if parts is not None:  # request(..., stream=True): every part, ended by the final one
            if error is None:
                parts.next(value)
            if not final:
                return
            parts.end(error)
        if entry.kind == "subscribe":
            self._on_subscribed(entry.topics, error)
        elif entry.kind == "unsubscribe":
            self._on_unsubscribed(entry.topics, error)
        else:
            assert entry.result is not None
            if error is not None:
                entry.result.set_error(error)
            else:
                entry.result.set_result(value)

    def abandoned(self, request_id: Hashable, result: CommandResult[Any]) -> None:
        """Every waiter of a request gave up: withdraw it (runs on the client's loop)."""
        entry = self.pending.get(request_id)
        if entry is None or entry.result is not result:  # answered, failed or timed out meanwhile
            return
        self.pending.cancel(request_id)
        self._ctx.stats.requests_cancelled += 1
        result.set_error(asyncio.CancelledError(f"request {request_id!r} cancelled by its caller"))

    def fail_all(self, error: Exception) -> None:
        """Fail every waiting request with ``error`` (the connection ended, or the client closed)."""
        self._deadline_timer.disposable = Disposable()
        self._armed_at = None
        for _rid, entry in self.pending.drain():
            if entry.result is not None:
                entry.result.set_error(error)

    def stop(self) -> None:
        """Cancel the deadline timer (the client is closed)."""
        self._deadline_timer.dispose()
