"""The connection lifecycle: connect, the attempt a reconnect policy retries, drops, and close.

:class:`Lifecycle` owns the client's connection state: every change goes through the one
transition table (:mod:`rxws.core.state`). A connection attempt is an observable that opens a new
:class:`~rxws._session.Session`, emits it once it serves, and errors when it ends by itself.
Without a policy an attempt ends the lifecycle; with one,
:func:`~rxws.operators.retry_with_backoff` re-subscribes it after the host approves.

Host code cannot break a drop: when a connection ends, the client first settles its own state
(the session tore its link down; the state machine moves; subscriptions and sequence records are
told; pending requests fail with ``ConnectionLost``), then notifies (``state`` observers,
``Disconnected``, then ``OutboundFailed`` for queued messages), and last ends the attempt, which
proposes a reconnection (``ReconnectProposed``, then the host's ``approve``). Every stream
isolates its observers, and the attempt ends even if a notification raised.
"""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import ClientContext, log
from rxws._command import CommandResult
from rxws._requests import Requests
from rxws._session import Session
from rxws._subject import FastBehaviorSubject
from rxws._watching import Topics
from rxws.core.state import ConnectionState, StateMachine
from rxws.events import Connected, Disconnected, DisconnectReason, Reconnected, ReconnectProposed
from rxws.exceptions import ConnectionLost, NotConnected, UsageError
from rxws.ratelimit.identity import connection_id
from rxws.reconnect import ReconnectPolicy

__all__: list[str] = []

_S = ConnectionState


class Lifecycle:
    """The connection state machine and the sessions it opens, one at a time.

    Args:
        ctx: the client's shared context.
        url: the venue's URL (for ``Connected``).
        policy: the host's reconnect policy, or None.
        keep_outbound: keep unwritten frames across an approved reconnection.
        requests: failed with ``ConnectionLost`` when a connection ends.
        topics: told when a connection serves and when it ends.
        new_session: builds the session of one attempt from its connection id.
        on_closed: completes the client's other streams once it is closed.
        on_serving: told when a session starts serving (after a connect or a reconnection).
        on_lost: told when the serving session drops or the client closes (a rotation aborts).
    """

    def __init__(
        self,
        ctx: ClientContext,
        *,
        url: str,
        policy: ReconnectPolicy | None,
        keep_outbound: bool,
        requests: Requests,
        topics: Topics,
        new_session: Callable[[str], Session],
        on_closed: Callable[[], None],
        on_serving: Callable[[Session], None] = lambda _session: None,
        on_lost: Callable[[str], None] = lambda _why: None,
    ) -> None:
        self._ctx = ctx
        self._url = url
        self._policy = policy
        self._keep_outbound = keep_outbound
        self._requests = requests
        self._topics = topics
        self._new_session = new_session
        self._on_closed = on_closed
        self._on_serving = on_serving
        self._on_lost = on_lost
        self._sm = StateMachine()
        self.state_subject: FastBehaviorSubject[ConnectionState] = FastBehaviorSubject(
            _S.DISCONNECTED, ctx.observer_failed(None, "state")
        )
        self._session: Session | None = None
        self._attempt = 0
        self._retries = SerialDisposable()  # one subscription per connect() (retried under a policy)
        self._attempt_observer: abc.ObserverBase[Session] | None = None
        self._connect_waiters: list[CommandResult[None]] = []
        self._close_result: CommandResult[None] | None = None
        self._ever_connected = False
        self._live = False
        self._dropped_at: float | None = None
        self.closed = False

    # What the client reads ---------------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._sm.state

    @property
    def session(self) -> Session | None:
        """The session of the current (or last) attempt."""
        return self._session

    def serving(self) -> Session | None:
        """The session that serves now (CONNECTED), or None."""
        session = self._session
        if session is not None and self._sm.state is _S.CONNECTED and session.serving:
            return session
        return None

    def outbound(self) -> Session:
        """The session a frame goes to now: the serving one, or the one a kept queue waits in.

        Raises:
            NotConnected: closed, or not connected and no approved reconnection may follow.
        """
        if self.closed:
            raise NotConnected("the client is closed")
        state = self._sm.state
        session = self._session
        if session is not None and (
            state is _S.CONNECTED or (self._reconnect_pending_possible() and self._live)
        ):
            return session
        raise NotConnected(f"not connected (state {state}); await client.connect() first")

    # Connecting ------------------------------------------------------------------------------------
    def manual_reconnect(self, result: CommandResult[None]) -> None:
        """Reconnect now, by the host's own decision (cancels a pending backoff wait)."""
        if self._sm.state in (_S.ERROR, _S.DISCONNECTED) and not self.closed:
            self._retries.disposable = Disposable()
        self.connect(result)

    def connect(self, result: CommandResult[None]) -> None:
        """Open the connection; ``result`` completes once CONNECTED."""
        if self.closed:
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
            self._start()

    def _start(self) -> None:
        """Subscribe the connection's lifecycle: one attempt, retried when a policy approves."""
        self._ever_connected = False  # in this lifecycle: its first connect is not retried
        self._live = True
        source: Observable[Session] = Observable(self._subscribe_attempt)
        policy = self._policy
        if policy is not None:
            source = source.pipe(
                policy.retrying(
                    wanted=lambda: self._ever_connected and not self.closed,
                    on_proposal=self._proposed,
                    on_denied=self._ctx.emit,
                    scheduler=self._ctx.sched,
                )
            )
        self._retries.disposable = source.subscribe(on_error=self._ended, scheduler=self._ctx.sched)

    def _subscribe_attempt(
        self, observer: abc.ObserverBase[Session], _: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self._attempt_observer = observer
        self._open()

        def dispose() -> None:
            if self._attempt_observer is observer:  # only the current attempt cancels an open:
                self._attempt_observer = None  # an ended one must not cancel its successor's
                session = self._session
                if self._sm.state is _S.CONNECTING and session is not None:
                    session.close()

        return Disposable(dispose)

    def _proposed(self, proposal: ReconnectProposed) -> None:
        self._ctx.emit(proposal)

    def _ended(self, error: Exception) -> None:
        """No more attempts (none asked for, denied, or exhausted): settle what waited for one."""
        log.info("%s: connection lifecycle ended: %s", self._ctx.name, error)
        self._live = False
        if self._session is not None:
            self._session.fail_unwritten(ConnectionLost(f"no reconnection: {error}"))

    def _take_attempt(self) -> abc.ObserverBase[Session] | None:
        """Detach the current attempt's observer (ended later by :meth:`_end_attempt`)."""
        observer, self._attempt_observer = self._attempt_observer, None
        return observer

    @staticmethod
    def _end_attempt(error: Exception, observer: abc.ObserverBase[Session] | None) -> None:
        if observer is not None:
            observer.on_error(error)

    def next_conn_id(self) -> str:
        """A new connection id, unique in the process (and in the fleet with a shared ledger):
        two clients of one URL sharing a limiter are two connections to it."""
        return connection_id(self._ctx.name, self._ctx.limiter)

    def promote(self, session: Session) -> None:
        """A rotation's new session serves from now on (the state stays CONNECTED)."""
        self._session = session

    def _open(self) -> None:
        self._set_state(_S.CONNECTING)
        self._attempt += 1
        previous = self._session
        session = self._new_session(self.next_conn_id())
        if previous is not None:  # frames kept for after the reconnection go out first
            session.adopt_unwritten(previous.take_unwritten())
        self._session = session
        session.open()

    # What sessions report ------------------------------------------------------------------------
    def session_opened(self, session: Session) -> None:
        """``session`` opened (and ran its open steps): the client is CONNECTED on it."""
        if session is not self._session or self._sm.state is not _S.CONNECTING:  # closed while opening
            session.close()
            return
        ctx = self._ctx
        self._set_state(_S.CONNECTED)
        now = ctx.now()
        ctx.emit(Connected(at=now, url=self._url, attempt=self._attempt))
        if self._dropped_at is not None:  # a drop (in this lifecycle or before a manual reconnect)
            ctx.emit(Reconnected(at=now, attempt=self._attempt, downtime=now - self._dropped_at))
            self._topics.restore_start()
        self._ever_connected = True
        self._dropped_at = None
        self._attempt = 0
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.set_result(None)
        if self._attempt_observer is not None:
            self._attempt_observer.on_next(session)
        session.ready()
        self._topics.flush_soon()
        self._on_serving(session)

    def session_open_failed(self, session: Session, error: Exception, reason: DisconnectReason) -> None:
        """``session`` could not open: ERROR, ``Disconnected``, and the attempt ends."""
        if session is not self._session or self._sm.state is not _S.CONNECTING:
            return
        self._move(_S.ERROR)
        attempt = self._take_attempt()
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.set_error(error)
        try:
            self._publish_state()
            self._ctx.emit(Disconnected(at=self._ctx.now(), reason=reason, detail=str(error)))
            if not self._reconnect_pending_possible():
                session.fail_unwritten(ConnectionLost(f"connect failed: {error}"))
        finally:
            self._end_attempt(error, attempt)

    def _reconnect_pending_possible(self) -> bool:
        """Whether queued work may still go out after a reconnection (policy set, host keeps it)."""
        return self._keep_outbound and self._policy is not None and self._ever_connected and not self.closed

    def session_dropped(
        self, session: Session, error: Exception, why: DisconnectReason, code: int | None, detail: str
    ) -> None:
        """The serving connection ended without the host asking: settle the client's state, then tell.

        1. Bookkeeping (the session already tore its link down): the state machine moves (ERROR,
           or DISCONNECTED for 1000/1001), subscriptions and sequence records are told, and last
           the pending requests fail with ``ConnectionLost``.
        2. Notifications: ``state`` observers, ``Disconnected``, then ``OutboundFailed`` for
           queued messages (unless kept for a reconnection).
        3. The attempt ends, even if step 2 raised: with a policy, ``ReconnectProposed`` and
           the host's ``approve``.
        """
        if session is not self._session:
            return
        self._on_lost(f"the serving connection dropped: {detail}")
        now = self._ctx.now()
        if self._dropped_at is None:
            self._dropped_at = now
        clean = code in (1000, 1001)
        self._move(_S.DISCONNECTED if clean else _S.ERROR)
        attempt = self._take_attempt()
        self._topics.connection_lost(now)
        lost = ConnectionLost(f"connection lost before the reply: {detail}")
        lost.__cause__ = error
        self._requests.fail_all(lost)
        try:
            self._publish_state()
            self._ctx.emit(Disconnected(at=now, reason=why, code=code, detail=detail))
            if not self._reconnect_pending_possible():
                session.fail_unwritten(lost)
        finally:
            self._end_attempt(error, attempt)

    def untrusted(self, detail: str) -> None:
        """rxws's own state can no longer be trusted: close with 1011 and handle it as a drop.

        The drop reports ``Disconnected(reason=INTERNAL_ERROR, code=1011, detail=...)``; a
        reconnection is proposed as for any drop the policy's ``retry_on`` accepts.
        """
        session = self._session
        if session is not None and self._sm.state is _S.CONNECTED:
            session.untrusted(detail)

    # Closing -------------------------------------------------------------------------------------
    def close(self, result: CommandResult[None]) -> None:
        """Close for good: the session closes (1000, bounded wait), then every stream completes."""
        state = self._sm.state
        if self.closed and state is not _S.DISCONNECTING:
            result.set_result(None)
            return
        self.closed = True
        self._close_result = result
        self._on_lost("the client is closing")
        self._retries.disposable = Disposable()
        state = self._sm.state
        session = self._session
        if state in (_S.CONNECTED, _S.CONNECTING):
            self._set_state(_S.DISCONNECTING)
            if session is None or session.ended:
                self._finish_close(False)
                return
            session.close()
        else:
            self._finish_close(False)

    def session_closed(self, session: Session, had_link: bool) -> None:
        """``session`` finished closing: when the client is closing, it is closed now."""
        if session is self._session and self._sm.state is _S.DISCONNECTING:
            self._finish_close(had_link)

    def _finish_close(self, was_connected: bool) -> None:
        if self._sm.state is _S.DISCONNECTED and self.state_subject.is_stopped:
            return
        self._requests.stop()
        self._move(_S.DISCONNECTED)
        closed = ConnectionLost("the client was closed")
        self._requests.fail_all(closed)
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter.set_error(closed)
        self._publish_state()
        ctx = self._ctx
        if was_connected:
            ctx.emit(
                Disconnected(
                    at=ctx.now(), reason=DisconnectReason.USER, code=1000, detail="closed by the host"
                )
            )
        if self._session is not None:
            self._session.fail_unwritten(closed)
        self._on_closed()
        self.state_subject.on_completed()
        if self._close_result is not None:
            self._close_result.set_result(None)

    # State ---------------------------------------------------------------------------------------
    def _move(self, target: ConnectionState) -> None:
        """Move the state machine now; ``state`` observers are told later (:meth:`_publish_state`)."""
        if self._sm.state is not target:
            self._sm.to(target)

    def _set_state(self, target: ConnectionState) -> None:
        if self._sm.state is target:
            return
        self._publish_state()  # a state moved to but not told yet (a drop's bookkeeping) goes first
        self._sm.to(target)
        self.state_subject.on_next(target)

    def _publish_state(self) -> None:
        """Tell ``state`` observers the current state, unless they already saw it."""
        state = self._sm.state
        if self.state_subject.value is not state:
            self.state_subject.on_next(state)
