"""The connection lifecycle: connect, the session a reconnect policy retries, drops, and close.

Every change of connection state happens here, through the one transition table
(:mod:`rxws.core.state`). A connection is one *session*: an observable that opens a link, emits
it, and errors when the link ends by itself. Without a policy a session ends the lifecycle; with
one, :func:`~rxws.operators.retry_with_backoff` re-subscribes it after the host approves.

Host code cannot break a drop: when a connection ends, the client first settles its own state
(link torn down, state machine moved, subscriptions and sequence records told, pending requests
failed with ``ConnectionLost``), then notifies (``state`` observers, ``Disconnected``, then
``OutboundFailed`` for queued messages), and last ends the session, which proposes a
reconnection (``ReconnectProposed``, then the host's ``approve``). Every stream isolates its
observers, and the session ends even if a notification raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import _ClientBase, log
from rxws._command import CommandResult
from rxws.core.state import ConnectionState
from rxws.events import (
    Connected,
    Disconnected,
    DisconnectReason,
    Reconnected,
    ReconnectProposed,
)
from rxws.exceptions import (
    ConnectionClosed,
    ConnectionLost,
    HandshakeRejected,
    HeartbeatTimeout,
    MessageTooBig,
    NotConnected,
    PenaltyActive,
    ProtocolError,
    RateLimitExceeded,
    UsageError,
)
from rxws.operators._retry import retry_with_backoff
from rxws.ratelimit.base import Action
from rxws.ratelimit.events import Throttled
from rxws.transport.base import Frame, Link

__all__: list[str] = []

_S = ConnectionState


class _LifecycleMixin(_ClientBase):
    """Opening, holding and ending the connection; reconnection through the host's policy."""

    _conn_seq: int
    _attempt: int
    _ever_connected: bool
    _dropped_at: float | None
    _link_sub: SerialDisposable
    _open_sub: SerialDisposable
    _connect_waiters: list[CommandResult[None]]
    _close_result: CommandResult[None] | None
    _session_observer: abc.ObserverBase[Link] | None

    if TYPE_CHECKING:  # the other parts of the client, declared for each other

        def _on_frame(self, frame: Frame) -> None: ...
        def _fail_outbound(self, error: Exception) -> None: ...
        def _fail_pending(self, error: Exception) -> None: ...
        def _flush_outbound(self) -> None: ...
        def _restore_done(self) -> None: ...
        def _schedule_subscription_flush(self) -> None: ...
        def _start_heartbeats(self, link: Link) -> None: ...
        def _stop_heartbeats(self) -> None: ...

    def _manual_reconnect(self, result: CommandResult[None]) -> None:
        if self._sm.state in (_S.ERROR, _S.DISCONNECTED) and not self._closed:
            self._lifecycle.disposable = Disposable()
        self._connect(result)

    def _connect(self, result: CommandResult[None]) -> None:
        if self._closed:
            result.set_error(UsageError("the client is closed; create a new one"))
            return
        state = self._sm.state
        if state is _S.CONNECTED:
            result.set_result(None)
            return
        if state is _S.DISCONNECTING:
            result.set_error(NotConnected("the client is closing"))
            return
        self._connect_waiters.append(result)
        if state is not _S.CONNECTING:
            self._start_lifecycle()

    def _start_lifecycle(self) -> None:
        """Subscribe the connection's lifecycle: one session, retried when a policy approves."""
        self._ever_connected = False  # in this lifecycle: its first connect is not retried
        self._lifecycle_live = True
        source: Observable[Link] = Observable(self._subscribe_session)
        policy = self._policy
        if policy is not None:
            source = source.pipe(
                retry_with_backoff(
                    policy.backoff,
                    approve=policy.approve,
                    retry_on=lambda exc: self._ever_connected and not self._closed and policy.retry_on(exc),
                    on_proposal=self._proposed,
                    on_denied=self._emit,
                    scheduler=self._sched,
                )
            )
        self._lifecycle.disposable = source.subscribe(on_error=self._lifecycle_ended, scheduler=self._sched)

    def _subscribe_session(
        self, observer: abc.ObserverBase[Link], _: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self._session_observer = observer
        self._open()

        def dispose() -> None:
            if self._session_observer is observer:  # only the current session cancels an open:
                self._session_observer = None  # an ended one must not cancel its successor's
                if self._sm.state is _S.CONNECTING:
                    self._open_sub.disposable = Disposable()

        return Disposable(dispose)

    def _proposed(self, proposal: ReconnectProposed) -> None:
        self._emit(proposal)

    def _lifecycle_ended(self, error: Exception) -> None:
        """No more attempts (none asked for, denied, or exhausted): settle what waited for one."""
        log.info("%s: connection lifecycle ended: %s", self.name, error)
        self._lifecycle_live = False
        self._fail_outbound(ConnectionLost(f"no reconnection: {error}"))

    def _take_session(self) -> abc.ObserverBase[Link] | None:
        """Detach the current session's observer (ended later by :meth:`_end_session`)."""
        observer, self._session_observer = self._session_observer, None
        return observer

    def _end_session(self, error: Exception, observer: abc.ObserverBase[Link] | None) -> None:
        if observer is not None:
            observer.on_error(error)

    def _move(self, target: ConnectionState) -> None:
        """Move the state machine now; ``state`` observers are told later (:meth:`_publish_state`)."""
        if self._sm.state is not target:
            self._sm.to(target)

    def _open(self) -> None:
        self._set_state(_S.CONNECTING)
        self._attempt += 1
        self._conn_seq += 1
        self._conn_id = f"{self.name}#{self._conn_seq}"
        limiter = self._limiter
        if limiter is not None:
            decision = limiter.acquire_connect(self._conn_id, self._now())
            if not decision.allowed:
                self._connect_refused(decision.retry_after)
                return
            self._conn_held = True
        self._open_link()

    def _connect_refused(self, retry_after: float) -> None:
        """The limiter said not now: wait a short while, or fail with a clear error."""
        remaining = self._penalty_remaining()
        if remaining > 0:
            self._open_failed(PenaltyActive(f"the venue's penalty has {remaining:.3g}s to run", remaining))
        elif retry_after <= self._max_connect_wait:
            self._emit_rate(
                Throttled(at=self._now(), action=Action.CONNECT, conn_id=self._conn_id, delay=retry_after)
            )
            self._open_sub.disposable = self._after(retry_after, self._open_after_wait)
        else:
            wait = "never (a connection cap)" if retry_after == float("inf") else f"in {retry_after:.3g}s"
            self._open_failed(
                RateLimitExceeded(f"the connect limit allows the next connection {wait}", retry_after)
            )

    def _open_after_wait(self) -> None:
        if self._sm.state is not _S.CONNECTING:
            return
        limiter = self._limiter
        assert limiter is not None
        decision = limiter.acquire_connect(self._conn_id, self._now())
        if not decision.allowed:
            self._connect_refused(decision.retry_after)
            return
        self._conn_held = True
        self._open_link()

    def _open_link(self) -> None:
        self._open_sub.disposable = self._transport.open(self.url, self._options, self._sched).subscribe(
            on_next=self._attach, on_error=self._open_failed
        )

    def _attach(self, link: Link) -> None:
        if self._sm.state is not _S.CONNECTING:  # closed while opening
            link.close(1000, "")
            return
        self._link = link
        self._set_state(_S.CONNECTED)
        self._link_sub.disposable = link.inbound.subscribe(
            on_next=self._on_frame, on_error=self._link_failed, on_completed=self._link_closed
        )
        self._start_heartbeats(link)
        now = self._now()
        self._emit(Connected(at=now, url=self.url, attempt=self._attempt))
        if self._dropped_at is not None:  # a drop (in this lifecycle or before a manual reconnect)
            self._emit(Reconnected(at=now, attempt=self._attempt, downtime=now - self._dropped_at))
            self._restoring = set(self._registry.to_subscribe())
            self._restored = ([], [])
            if not self._restoring:
                self._restore_done()
        self._ever_connected = True
        self._dropped_at = None
        self._attempt = 0
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.set_result(None)
        if self._session_observer is not None:
            self._session_observer.on_next(link)
        self._flush_outbound()
        self._schedule_subscription_flush()

    def _open_failed(self, error: Exception) -> None:
        if self._sm.state is not _S.CONNECTING:
            return
        reason = DisconnectReason.NETWORK_ERROR
        if isinstance(error, HandshakeRejected) and error.status in (418, 429):
            reason = DisconnectReason.RATE_LIMITED
            self._violation(f"http_{error.status}", error.retry_after)
        elif isinstance(error, RateLimitExceeded):
            reason = DisconnectReason.RATE_LIMITED
        self._release_connection()
        self._move(_S.ERROR)
        session = self._take_session()
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.set_error(error)
        try:
            self._publish_state()
            self._emit(Disconnected(at=self._now(), reason=reason, detail=str(error)))
            if not self._reconnect_pending_possible():
                self._fail_outbound(ConnectionLost(f"connect failed: {error}"))
        finally:
            self._end_session(error, session)

    def _reconnect_pending_possible(self) -> bool:
        """Whether queued work may still go out after a reconnection (policy set, host keeps it)."""
        return self._keep_outbound and self._policy is not None and self._ever_connected and not self._closed

    def _link_closed(self) -> None:
        link = self._link
        code = link.close_code if link is not None else None
        reason = link.close_reason if link is not None else ""
        if self._sm.state is _S.DISCONNECTING:
            self._finish_close()
            return
        why = DisconnectReason.REMOTE_CLOSED
        if code == 1008:
            why = DisconnectReason.RATE_LIMITED
            self._violation("close_1008")
        error = ConnectionClosed(code, reason)
        self._dropped(error, why, code, reason or f"closed by the venue with code {code}")

    def _link_failed(self, error: Exception) -> None:
        if self._sm.state is _S.DISCONNECTING:
            self._finish_close()
            return
        code: int | None = None
        if isinstance(error, HeartbeatTimeout):
            why, code = DisconnectReason.HEARTBEAT_TIMEOUT, 1011
        elif isinstance(error, MessageTooBig):
            why, code = DisconnectReason.PROTOCOL_ERROR, 1009
        elif isinstance(error, ProtocolError):
            why, code = DisconnectReason.PROTOCOL_ERROR, error.code
        else:
            why = DisconnectReason.NETWORK_ERROR
        self._dropped(error, why, code, str(error))

    def _dropped(self, error: Exception, why: DisconnectReason, code: int | None, detail: str) -> None:
        """The connection ended without the host asking: settle the client's state, then tell.

        1. Bookkeeping: the link is torn down, the state machine moved (ERROR, or DISCONNECTED
           for 1000/1001), subscriptions and sequence records told, and last the pending
           requests failed with ``ConnectionLost``.
        2. Notifications: ``state`` observers, ``Disconnected``, then ``OutboundFailed`` for
           queued messages (unless kept for a reconnection).
        3. The session ends, even if step 2 raised: with a policy, ``ReconnectProposed`` and
           the host's ``approve``.
        """
        self._teardown_link()
        now = self._now()
        if self._dropped_at is None:
            self._dropped_at = now
        clean = code in (1000, 1001)
        self._move(_S.DISCONNECTED if clean else _S.ERROR)
        session = self._take_session()
        self._registry.connection_lost()
        self._sub_request.clear()
        self._unsub_request.clear()
        self._restoring = None
        if self._tracker is not None:
            self._tracker.disconnected(now)
        lost = ConnectionLost(f"connection lost before the reply: {detail}")
        lost.__cause__ = error
        self._fail_pending(lost)
        try:
            self._publish_state()
            self._emit(Disconnected(at=now, reason=why, code=code, detail=detail))
            if not self._reconnect_pending_possible():
                self._fail_outbound(lost)
        finally:
            self._end_session(error, session)

    def _untrusted(self, detail: str) -> None:
        """rxws's own state can no longer be trusted: close with 1011 and handle it as a drop.

        The drop reports ``Disconnected(reason=INTERNAL_ERROR, code=1011, detail=...)``; a
        reconnection is proposed as for any drop the policy's ``retry_on`` accepts.
        """
        link = self._link
        if link is None or self._sm.state is not _S.CONNECTED:
            return
        link.close(1011, "internal error")
        error = ConnectionClosed(1011, detail, by_peer=False)
        self._dropped(error, DisconnectReason.INTERNAL_ERROR, 1011, detail)

    def _teardown_link(self) -> None:
        self._stop_heartbeats()
        self._release_connection()
        self._link_sub.disposable = Disposable()
        self._link = None
        self._flush_timer.disposable = Disposable()

    def _close(self, result: CommandResult[None]) -> None:
        state = self._sm.state
        if self._closed and state is not _S.DISCONNECTING:
            result.set_result(None)
            return
        self._closed = True
        self._lifecycle.disposable = Disposable()
        if state in (_S.CONNECTED, _S.CONNECTING):
            self._set_state(_S.DISCONNECTING)
            self._open_sub.disposable = Disposable()
            link = self._link
            if link is None:
                self._finish_close()
                return
            link.close(1000, "").subscribe(on_error=lambda _e: self._finish_close())
            self._timers.add(self._after(self._close_timeout, self._close_timed_out))
        else:
            self._finish_close()

    def _close_timed_out(self) -> None:
        if self._sm.state is _S.DISCONNECTING and self._link is not None:
            log.warning("peer did not answer the close frame within %ss; aborting", self._close_timeout)
            self._link.abort()
            self._finish_close()

    def _finish_close(self) -> None:
        if self._sm.state is _S.DISCONNECTED and self._state_subject.is_stopped:
            return
        was_connected = self._sm.state is _S.DISCONNECTING and self._link is not None
        self._teardown_link()
        self._open_sub.disposable = Disposable()
        self._timers.dispose()
        self._deadline_timer.dispose()
        self._move(_S.DISCONNECTED)
        closed = ConnectionLost("the client was closed")
        self._fail_pending(closed)
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.set_error(closed)
        self._publish_state()
        if was_connected:
            self._emit(
                Disconnected(
                    at=self._now(), reason=DisconnectReason.USER, code=1000, detail="closed by the host"
                )
            )
        self._fail_outbound(closed)
        for subject in list(self._topics.values()):
            subject.on_completed()
        self._topics.clear()
        self._messages.on_completed()
        if self._limiter_unlisten is not None:
            self._limiter_unlisten()
            self._limiter_unlisten = None
        self._rate_events.on_completed()
        self._events_subject.on_completed()
        self._state_subject.on_completed()
        if self._close_result is not None:
            self._close_result.set_result(None)
