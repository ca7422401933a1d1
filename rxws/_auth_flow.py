"""The login flow: sign with the venue's clock, send the dialect's login frames, read the replies.

:class:`Authenticator` knows nothing about sockets. The session hands it an ``exchange(frame, key,
timeout) -> Observable[reply]`` that sends a pre-built frame and yields the first inbound message
whose :meth:`~rxws.protocols.base.VenueProtocol.login_reply_key` is ``key`` (or errors with
``RequestTimeout`` / ``ConnectionLost``). The flow:

1. build the frames with ``protocol.login_frames(credentials, now_ms, request_id)``, ``now_ms``
   being the venue's time as the :class:`~rxws.core.clock.VenueClock` estimates it;
2. send them one after the other; each reply stating a server time feeds the clock (and a
   ``ClockSkew`` event when the offset nears ``protocol.auth_window``);
3. all accepted: ``Authenticated``, the observable emits ``None`` and completes; a refusal:
   ``AuthFailed(code, detail)`` and the observable fails with
   :class:`~rxws.exceptions.AuthenticationError` (``refused=True``); no answer in time or a lost
   link: ``AuthFailed(refused=False)`` and ``AuthenticationError(refused=False)``.

Nothing retries: after a refusal :meth:`Authenticator.ready` fails every waiter until the host
logs in again (an approved reconnect). Deribit's token is renewed with :meth:`refresh_if_due`, meant
for a keepalive task (``client.every``). The credentials and every refresh token are registered with
:mod:`rxws._redact` (a login signature is not: it expires with its timestamp, and registering one
per login would grow the mask list without bound); none reaches an event or an exception.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.subject import BehaviorSubject

from rxws._redact import redact
from rxws.auth import Credentials, register_secret
from rxws.core.clock import SkewRule, VenueClock
from rxws.events import Authenticated, AuthFailed, ClockSkew, Event
from rxws.exceptions import AuthenticationError
from rxws.protocols.base import LoginStep, VenueProtocol

__all__ = ["Authenticator", "Exchange"]

Exchange = Callable[[Any, Hashable, float], Observable[Any]]
"""``exchange(frame, key, timeout)``: send ``frame``, yield the reply correlated by ``key``."""

_FIRST_ID = 9_007_199_000_000_000  # request ids far above a session's own counter, below 2**53


class Authenticator:
    """Logs one connection in, and keeps what the login returned (token expiry).

    Args:
        protocol: the venue dialect (builds frames, reads replies).
        credentials: what to sign with.
        clock: the venue clock estimate, shared with the client (fed by login replies).
        emit: where ``Authenticated``, ``AuthFailed`` and ``ClockSkew`` events go.
        timeout: seconds each login reply may take.
        wall: local Unix time in seconds (``time.time``; a virtual clock in tests).
        now: the event clock (the client's scheduler time) that stamps each event's ``at``
            (default: ``wall``).
        refresh_margin: renew a token this many seconds before it expires (at most half its life).
        request_ids: ids for login requests (by default a counter far above the session's ids).
    """

    def __init__(
        self,
        protocol: VenueProtocol,
        credentials: Credentials,
        clock: VenueClock,
        emit: Callable[[Event], None],
        *,
        timeout: float = 10.0,
        wall: Callable[[], float] = time.time,
        now: Callable[[], float] | None = None,
        refresh_margin: float = 60.0,
        request_ids: Iterator[Hashable] | None = None,
    ) -> None:
        self.protocol = protocol
        self.clock = clock
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self.logins = 0
        self.refreshes = 0
        self.failures = 0
        self._credentials = credentials
        self._emit = emit
        self._wall = wall
        self._now = now or wall
        self._ids: Iterator[Hashable] = request_ids if request_ids is not None else itertools.count(_FIRST_ID)
        self._skew = SkewRule(protocol.auth_window)
        self._refresh_token: str | None = None
        self._expires_at: float | None = None
        self._life: float | None = None
        # None: not logged in (yet); True: logged in; an AuthenticationError: the last login failed.
        self._status: BehaviorSubject[bool | AuthenticationError | None] = BehaviorSubject(None)

    def __repr__(self) -> str:
        return f"Authenticator({self.protocol.name}, authenticated={self.authenticated})"

    # State ----------------------------------------------------------------------------------------
    @property
    def authenticated(self) -> bool:
        """Whether the current connection is logged in."""
        return self._status.value is True

    @property
    def expires_at(self) -> float | None:
        """Local Unix time when the venue's authorization ends (None: the venue said nothing)."""
        return self._expires_at

    def reset(self) -> None:
        """The connection ended: not logged in any more (a refusal stays until the next login)."""
        self._refresh_token = None
        self._expires_at = None
        if self._status.value is True:
            self._status.on_next(None)

    def ready(self) -> Observable[None]:
        """Emits ``None`` once logged in and completes (at once when already logged in); fails
        with the :class:`AuthenticationError` of a failed login. For private watches and requests
        that must wait for the login."""

        def status_to_ready(status: bool | AuthenticationError | None) -> Observable[None]:
            if isinstance(status, AuthenticationError):
                return reactivex.throw(status)
            return reactivex.of(None)

        return self._status.pipe(
            ops.filter(lambda s: s is not None),
            ops.take(1),
            ops.flat_map(status_to_ready),
        )

    def check_skew(self) -> bool:
        """Emit ``ClockSkew`` when the clock's current estimate nears ``protocol.auth_window``
        (once per excursion); call after feeding the clock elsewhere (a handshake ``Date``, a pong).
        Returns whether an event was emitted."""
        offset = self.clock.offset
        if offset is None or not self._skew.check(offset):
            return False
        self._emit(ClockSkew(at=self._now(), offset=offset, window=self.protocol.auth_window))
        return True

    # Login ----------------------------------------------------------------------------------------
    def login(self, exchange: Exchange) -> Observable[None]:
        """Log in over ``exchange`` (module docstring); built anew on each subscription."""

        def start() -> Observable[None]:
            now_ms = int(self.clock.now_venue(self._wall()) * 1000)
            steps = self.protocol.login_frames(self._credentials, now_ms, next(self._ids))
            return self._run(exchange, steps, refreshed=False)

        return reactivex.defer(lambda _scheduler: start())

    def refresh_due(self, local_now: float | None = None) -> bool:
        """Whether a refreshable authorization is within ``refresh_margin`` of its end."""
        if self._refresh_token is None or self._expires_at is None or not self.authenticated:
            return False
        now = self._wall() if local_now is None else local_now
        return now >= self._expires_at - self._margin

    def refresh(self, exchange: Exchange) -> Observable[None]:
        """Renew the authorization with the venue's refresh token (Deribit ``refresh_token``
        grant); emits ``None`` at once when the dialect or the login gave nothing to renew."""

        def start() -> Observable[None]:
            token = self._refresh_token
            steps = [] if token is None else self.protocol.refresh_frames(token, next(self._ids))
            if not steps:
                return reactivex.of(None)
            return self._run(exchange, steps, refreshed=True)

        return reactivex.defer(lambda _scheduler: start())

    def refresh_if_due(self, exchange: Exchange) -> Observable[None]:
        """:meth:`refresh` when :meth:`refresh_due`, else ``None`` at once (for ``client.every``)."""
        return reactivex.defer(
            lambda _s: self.refresh(exchange) if self.refresh_due() else reactivex.of(None)
        )

    # Internals ------------------------------------------------------------------------------------
    @property
    def _margin(self) -> float:
        life = self._life or 0.0
        return min(self.refresh_margin, life / 2)

    def _run(self, exchange: Exchange, steps: list[LoginStep], *, refreshed: bool) -> Observable[None]:
        if not refreshed and isinstance(self._status.value, AuthenticationError):
            self._status.on_next(None)  # a new login: waiters wait for its outcome
        one_by_one = [self._step(exchange, step) for step in steps]
        expiry: list[float | None] = [None]

        def remember(expires_in: float | None) -> None:
            if expires_in is not None:
                expiry[0] = expires_in

        def done(_: Any) -> None:
            self._accepted(expiry[0], refreshed)

        return reactivex.concat(*one_by_one).pipe(
            ops.do_action(on_next=remember),
            ops.to_list(),
            ops.do_action(on_next=done),
            ops.map(lambda _: None),
            ops.catch(lambda exc, _src: self._failed(exc)),
        )

    def _step(self, exchange: Exchange, step: LoginStep) -> Observable[float | None]:
        def send() -> Observable[float | None]:
            sent = self._wall()
            return exchange(step.frame, step.key, self.timeout).pipe(
                ops.take(1),
                ops.map(lambda reply: self._read(reply, sent)),
            )

        return reactivex.defer(lambda _scheduler: send())

    def _read(self, reply: Any, sent: float) -> float | None:
        received = self._wall()
        server_ms = self.protocol.server_time_ms(reply)
        if server_ms is not None and received >= sent:
            self.clock.add_server_time(server_ms, sent, received)
            self.check_skew()
        result = self.protocol.login_result(reply)
        if not result.ok:
            raise AuthenticationError(result.code, redact(result.detail)[:200], refused=True)
        if result.refresh_token is not None:
            token = result.refresh_token.get_secret_value()
            register_secret(token)
            self._refresh_token = token
        if result.expires_in is not None:
            self._life = result.expires_in
            self._expires_at = received + result.expires_in
        return result.expires_in

    def _accepted(self, expires_in: float | None, refreshed: bool) -> None:
        if refreshed:
            self.refreshes += 1
        else:
            self.logins += 1
        self._status.on_next(True)
        self._emit(Authenticated(at=self._now(), expires_in=expires_in, refreshed=refreshed))

    def _failed(self, exc: Exception) -> Observable[None]:
        if isinstance(exc, AuthenticationError):
            error = exc
        else:
            detail = f"{type(exc).__name__}: {redact(str(exc))}"[:200]
            error = AuthenticationError(None, detail, refused=False)
            error.__cause__ = exc
        self.failures += 1
        self._refresh_token = None
        self._expires_at = None
        self._status.on_next(error)
        self._emit(AuthFailed(at=self._now(), code=error.code, detail=error.detail, refused=error.refused))
        return reactivex.throw(error)
