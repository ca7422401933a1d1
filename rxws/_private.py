"""Private streams: every session's login, the venue clock, private topics, keepalive tasks.

:class:`Private` is the client's part for issue 13. Its :meth:`Private.open_step` is the first
open step of every session (the first connect, every approved reconnect, a rotation's new session,
the redundant twin): it reads the handshake's ``Date`` into the :class:`~rxws.core.clock.VenueClock`
and, with credentials, logs in (:class:`~rxws._auth_flow.Authenticator`, signing with the venue-time
estimate). A session serves only once its login is accepted, so subscriptions (and their restore
after a reconnection) and requests always go out after it.

A refusal on the lifecycle's session fails that opening with
:class:`~rxws.exceptions.AuthenticationError`; every private topic (``protocol.is_private``) the
host wanted fails with it (nothing private is restored) and a private ``watch()`` fails at once
until a login is accepted again. The refusal is not retried by default: ``default_retry_on``
refuses it as it refuses an HTTP 401/403, since a wrong key replayed on every backoff step is how
an account or an IP gets banned; a host whose policy's ``retry_on`` accepts it still approves each
attempt. A refusal on a rotation's new session or on the twin fails only that session (the
serving one stays logged in).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler import VirtualTimeScheduler

from rxws._auth_flow import Authenticator
from rxws._client_base import ClientContext
from rxws._every import KeepaliveTask, every
from rxws._lifecycle import Lifecycle
from rxws._session import Session
from rxws._watching import Topics
from rxws.auth import Credentials
from rxws.core.clock import VenueClock
from rxws.core.state import ConnectionState
from rxws.exceptions import AuthenticationError, UsageError
from rxws.protocols.base import VenueProtocol

__all__: list[str] = []

TOKEN_REFRESH_PERIOD = 15.0
"""Seconds between checks whether the venue's token (Deribit) is due for a refresh."""


def _done(observer: abc.ObserverBase[Any], _scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
    observer.on_completed()
    return Disposable()


_DONE: Observable[Any] = Observable(_done)  # completes at once, on the caller's stack


class Private:
    """Logins, the venue clock, private topics and keepalive tasks (module docstring).

    Args:
        ctx: the client's shared context.
        credentials: what every session logs in with (None: no login).
        login_timeout: seconds each login reply may take.
        topics: the topics (private ones fail on a refusal).
        lifecycle: which session is the lifecycle's, the serving one, and the connection states
            (keepalive tasks run while CONNECTED).
    """

    def __init__(
        self,
        ctx: ClientContext,
        credentials: Credentials | None,
        login_timeout: float,
        topics: Topics,
        lifecycle: Lifecycle,
    ) -> None:
        if not login_timeout > 0:
            raise UsageError(f"login_timeout must be > 0, got {login_timeout!r}")
        if credentials is not None and not isinstance(credentials, Credentials):
            raise UsageError("credentials must be an rxws.Credentials")
        self._ctx = ctx
        self._topics = topics
        self._lifecycle = lifecycle
        self._state: Observable[ConnectionState] = lifecycle.state_subject
        self.clock = VenueClock()
        self.keepalives: set[KeepaliveTask] = set()
        self.refusal: AuthenticationError | None = None
        self._refresh: KeepaliveTask | None = None
        self.auth = (
            None
            if credentials is None
            else Authenticator(
                ctx.protocol,
                credentials,
                self.clock,
                ctx.emit,
                timeout=login_timeout,
                wall=self.wall,
                now=lambda: ctx.now(),
            )
        )

    def wall(self) -> float:
        """Local Unix time: the virtual clock under a virtual-time scheduler, else ``time.time``."""
        if isinstance(self._ctx.scheduler, VirtualTimeScheduler):
            return self._ctx.now()
        return time.time()

    # Opening a session ----------------------------------------------------------------------------
    def open_step(self, session: Session) -> Observable[Any]:
        """The first open step of every session: the handshake's clock sample, then the login."""
        self._handshake_date(session)
        auth = self.auth
        if auth is None:
            return _DONE
        if self._refresh is None and _refreshes(self._ctx.protocol):
            self._refresh = self.every(TOKEN_REFRESH_PERIOD, self._refresh_token, name="token_refresh")
        primary = session is self._lifecycle.session

        def accepted() -> None:
            if primary:
                self.refusal = None

        def failed(error: Exception) -> None:
            if primary and isinstance(error, AuthenticationError) and error.refused:
                self.refusal = error
                self._fail_private(error)

        return auth.login(session.exchange).pipe(ops.do_action(on_completed=accepted, on_error=failed))

    def _handshake_date(self, session: Session) -> None:
        link, started = session.link, session.handshake_started
        if link is None or started is None:
            return
        date = next((v for k, v in link.response_headers.items() if k.lower() == "date"), None)
        if not date:
            return
        received = self.wall()
        sent = received - max(0.0, self._ctx.now() - started)
        if self.clock.add_date_header(date, sent, received) is not None and self.auth is not None:
            self.auth.check_skew()

    def server_time(self, message: Any, sent: float | None) -> None:
        """A message stating the venue's time (a private pong) answering what was sent at ``sent``
        (the client's scheduler time): a clock sample at the round trip's midpoint."""
        if sent is None:
            return
        server_ms = self._ctx.protocol.server_time_ms(message)
        rtt = self._ctx.now() - sent
        if server_ms is None or rtt < 0:
            return
        received = self.wall()
        self.clock.add_server_time(server_ms, received - rtt, received)
        if self.auth is not None:
            self.auth.check_skew()

    def lost(self) -> None:
        """The serving connection ended: it is not logged in any more."""
        if self.auth is not None:
            self.auth.reset()

    # Private topics -------------------------------------------------------------------------------
    def refused(self, topics: Sequence[str], observer: abc.ObserverBase[Any]) -> bool:
        """Fail ``observer`` at once with the last login's refusal when one of ``topics`` is
        private (nothing is retried by itself); returns whether it did."""
        refusal = self.refusal
        if refusal is None or not any(map(self._ctx.protocol.is_private, topics)):
            return False
        observer.on_error(refusal)
        return True

    def _fail_private(self, error: AuthenticationError) -> None:
        private = [t for t in self._topics.registry.wanted() if self._ctx.protocol.is_private(t)]
        if private:
            self._topics.subscribed(private, error)

    # Keepalive tasks ------------------------------------------------------------------------------
    def every(
        self, period: float, action: Callable[[], Any], *, name: str | None = None, immediately: bool = False
    ) -> KeepaliveTask:
        """A :class:`~rxws._every.KeepaliveTask` on the client's scheduler while CONNECTED."""
        ctx = self._ctx
        if ctx.scheduler is None:
            ctx.run(lambda: None, None)  # binds to the running loop, or raises UsageError
        task = every(
            period,
            action,
            scheduler=ctx.sched,
            connected=self._state.pipe(ops.map(lambda s: s is ConnectionState.CONNECTED)),
            emit=ctx.emit,
            name=name,
            loop=ctx.loop,
            immediately=immediately,
        )
        self.keepalives.add(task)
        return task

    def close(self) -> None:
        """The client closes: every keepalive task is disposed."""
        tasks, self.keepalives = self.keepalives, set()
        for task in tasks:
            task.dispose()

    def _refresh_token(self) -> Observable[None] | None:
        session = self._lifecycle.serving()
        if self.auth is None or session is None:
            return None
        return self.auth.refresh_if_due(session.exchange)


def _refreshes(protocol: VenueProtocol) -> bool:
    """Whether the dialect renews a login with a refresh token (Deribit)."""
    return type(protocol).refresh_frames is not VenueProtocol.refresh_frames
