"""How a session opens: :class:`SessionOpening` takes one connection from nothing to serving.

It asks the connect limiter (through the session's
:class:`~rxws._session_budget.ConnectionBudget`): on *not now* it waits a short while (a
``Throttled`` event) or fails with a clear error (``PenaltyActive``, ``RateLimitExceeded``); on
*yes* it opens the link through the transport, hands the link to the session, and runs the *open
steps* in order (e.g. a login), each an observable that must complete before the next. It owns the
opening's timer and subscriptions; the session owns the link, and tells its owner how the opening
ended (:class:`~rxws._session.Session` reports ``session_opened`` or ``session_open_failed``).
"""

from __future__ import annotations

from collections.abc import Callable

from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import ClientContext
from rxws._session_budget import ConnectionBudget
from rxws._session_config import SessionConfig
from rxws.events import DisconnectReason
from rxws.exceptions import HandshakeRejected, PenaltyActive, RateLimitExceeded
from rxws.ratelimit.base import Action, Decision
from rxws.ratelimit.events import Throttled
from rxws.transport.base import Link

__all__ = ["SessionOpening"]


class SessionOpening:
    """The opening of one session's link (see the module docstring).

    Active from :meth:`start` until it reports ``opened`` or ``failed``, or is cancelled; an
    answer that comes after that (a limiter's decision, a link, a step's end) changes nothing.

    Args:
        ctx: the client's shared context.
        config: the session's settings (transport, URL, open steps, the longest connect wait).
        budget: the connection's account at the rate limiter (and its conn id).
        attach: take the transport's link; returns False when the session will not have it
            (and closed it).
        opened: every open step completed.
        failed: the opening failed (the limiter, the transport or an open step), with the error.
    """

    def __init__(
        self,
        ctx: ClientContext,
        config: SessionConfig,
        budget: ConnectionBudget,
        *,
        attach: Callable[[Link], bool],
        opened: Callable[[], None],
        failed: Callable[[Exception], None],
    ) -> None:
        self._ctx = ctx
        self._config = config
        self._budget = budget
        self._attach = attach
        self._opened = opened
        self._failed = failed
        self._session: object = None  # what each open step is called with
        self._active = False
        self._link: Link | None = None
        self._open_sub = SerialDisposable()
        self._steps_sub = SerialDisposable()
        self._step_at = -1  # the open step running
        self.handshake_started: float | None = None  # the client's clock

    def start(self, session: object) -> None:
        """Ask the connect limiter, then open; the open steps are called with ``session``."""
        self._session = session
        self._active = True
        self._budget.ask_connect(self._connect_decided)  # awaited on the loop when a ledger decides

    def cancel(self) -> None:
        """Stop: the session closes or ended (a wait, a handshake or a step running is disposed)."""
        self._active = False
        self._link = None
        self._open_sub.disposable = Disposable()
        self._steps_sub.disposable = Disposable()

    def reason(self, error: Exception) -> DisconnectReason:
        """Why an opening that failed with ``error`` failed; a venue's HTTP 418 or 429 is also a
        violation, reported to the limiter."""
        if isinstance(error, HandshakeRejected) and error.status in (418, 429):
            self._budget.violation(f"http_{error.status}", error.retry_after)
            return DisconnectReason.RATE_LIMITED
        if isinstance(error, RateLimitExceeded):
            return DisconnectReason.RATE_LIMITED
        return DisconnectReason.NETWORK_ERROR

    def _connect_decided(self, decision: Decision | Exception) -> None:
        if not self._active:  # closed while a ledger decided: a slot granted is given back
            if isinstance(decision, Decision) and decision.allowed:
                self._budget.release_connection()
        elif isinstance(decision, Exception):
            self._failed(decision)
        elif not decision.allowed:
            self._connect_refused(decision.retry_after)
        else:
            self._open_link()

    def _connect_refused(self, retry_after: float) -> None:
        """The limiter said not now: wait a short while, or fail with a clear error."""
        ctx = self._ctx
        remaining = self._budget.penalty_remaining()
        if remaining > 0:
            self._failed(PenaltyActive(f"the venue's penalty has {remaining:.3g}s to run", remaining))
        elif retry_after <= self._config.max_connect_wait:
            ctx.emit_rate(
                Throttled(
                    at=ctx.now(), action=Action.CONNECT, conn_id=self._budget.conn_id, delay=retry_after
                )
            )
            self._open_sub.disposable = ctx.after(retry_after, self._open_after_wait)
        else:
            wait = "never (a connection cap)" if retry_after == float("inf") else f"in {retry_after:.3g}s"
            self._failed(
                RateLimitExceeded(f"the connect limit allows the next connection {wait}", retry_after)
            )

    def _open_after_wait(self) -> None:
        if not self._active:
            return
        self._budget.ask_connect(self._connect_decided)

    def _open_link(self) -> None:
        config = self._config
        self.handshake_started = self._ctx.now()  # the venue clock reads the handshake's round trip
        self._open_sub.disposable = config.transport.open(
            config.url, config.options, self._ctx.sched
        ).subscribe(on_next=self._linked, on_error=self._failed)

    def _linked(self, link: Link) -> None:
        if not self._attach(link):  # closed while opening
            return
        self._link = link
        self._run_step(0)

    def _run_step(self, index: int) -> None:
        if not self._active:
            return
        if index == len(self._config.open_steps):
            self._active = False
            self._link = None
            self._opened()
            return
        try:
            step = self._config.open_steps[index](self._session)
        except Exception as exc:
            self._step_failed(exc)
            return
        self._step_at = index
        subscription = step.subscribe(
            on_error=self._step_failed,
            on_completed=lambda: self._run_step(index + 1),
            scheduler=self._ctx.sched,
        )
        if self._step_at == index and self._active:  # a step done at once started the next
            self._steps_sub.disposable = subscription

    def _step_failed(self, error: Exception) -> None:
        if not self._active:
            return
        link = self._link
        if link is not None:
            link.close(1000, "open step failed")
        self._failed(error)
