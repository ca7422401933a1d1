"""The client's composition root: :class:`ClientParts` builds every part of one client and wires them.

:class:`~rxws.client.WebSocketClient` is the facade (the host's commands and streams);
:func:`check_arguments` checks its constructor's arguments before anything is built, and
:class:`ClientParts` builds the parts, each owning its state — Requests, Topics, Lifecycle,
Private, Rotation, Inbound, Redundancy (with ``redundancy=2``) — and carries what one part tells
another through the callbacks each was given: a session serves, the serving session is lost, the
client closed, a new connection's :class:`~rxws._session.Session` is wanted. The parts meet
through those method calls only; none reads another's attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import reactivex
from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxws._client_base import ClientContext
from rxws._command import CommandResult
from rxws._inbound import Inbound
from rxws._lifecycle import Lifecycle
from rxws._private import Private
from rxws._redundancy import Redundancy
from rxws._requests import Requests
from rxws._rotation import Rotation
from rxws._session import Session, SessionOwner
from rxws._session_config import SessionConfig
from rxws._subject import FastSubject
from rxws._watching import Topics
from rxws.auth import Credentials
from rxws.core.correlation import IdGenerator
from rxws.events import HeartbeatMissed
from rxws.exceptions import UsageError
from rxws.operators._idle import idle_watchdog
from rxws.protocols.base import VenueProtocol
from rxws.ratelimit.pairing import check_pairing
from rxws.ratelimit.venue import WebSocketRateLimiter
from rxws.reconnect import ReconnectPolicy

__all__ = ["ClientParts", "check_arguments"]


def check_arguments(
    protocol: object,
    *,
    reconnect: object,
    rate_limiter: WebSocketRateLimiter | None,
    request_timeout: float,
    close_timeout: float,
    max_connection_age: float | None,
    rotation_overlap: float,
    redundancy: int,
) -> None:
    """Check the client's arguments that no part checks itself, before any part is built.

    Raises:
        UsageError: an argument of the wrong type or out of range, a combination not supported
            yet (rotation with ``redundancy=2``), or a rate-limit preset built for another venue's
            dialect.
    """
    if not isinstance(protocol, VenueProtocol):
        raise UsageError(f"protocol must be a VenueProtocol instance, got {protocol!r}")
    if max_connection_age is not None and not max_connection_age > 0:
        raise UsageError(f"max_connection_age must be > 0 or None, got {max_connection_age!r}")
    if redundancy not in (1, 2):
        raise UsageError(f"redundancy must be 1 or 2, got {redundancy!r}")
    if redundancy == 2 and max_connection_age is not None:
        raise UsageError("max_connection_age (rotation) is not combined with redundancy=2 yet")
    if not rotation_overlap >= 0:
        raise UsageError(f"rotation_overlap must be >= 0, got {rotation_overlap!r}")
    for label, value in (("request_timeout", request_timeout), ("close_timeout", close_timeout)):
        if not value > 0:
            raise UsageError(f"{label} must be > 0, got {value!r}")
    if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
        raise UsageError(f"reconnect must be a ReconnectPolicy or None, got {reconnect!r}")
    check_pairing(protocol, rate_limiter)  # a preset built for another venue's dialect: UsageError


class ClientParts:
    """Every part of one client, built and wired (see the module docstring).

    Args:
        ctx: the client's shared context (name, dialect, scheduler, limiter, stats, streams).
        url: the venue's URL, checked.
        config: how each session opens and keeps its link; every session's login (Private's
            open step) runs before the steps it names.
        reconnect: the host's reconnection policy, or None.
        id_generator: request ids.
        max_in_flight: requests that may wait for their reply at once.
        request_timeout: the default deadline of a request and of ``verify()``.
        subscribe_timeout: seconds a subscribe or unsubscribe waits for its ack.
        detect_gaps: track each topic's sequence numbers.
        keep_outbound: on a drop, keep queued outbound messages for after a reconnection.
        max_connection_age: rotate each connection once it served this long (None: never).
        rotation_overlap: seconds both connections deliver during a rotation.
        redundancy: 1, or 2 for a twin connection on the same topics.
        credentials: log every connection in (None: no login).
        login_timeout: seconds each login reply may take.
    """

    def __init__(
        self,
        ctx: ClientContext,
        url: str,
        config: SessionConfig,
        *,
        reconnect: ReconnectPolicy | None,
        id_generator: IdGenerator,
        max_in_flight: int,
        request_timeout: float,
        subscribe_timeout: float,
        detect_gaps: bool,
        keep_outbound: bool,
        max_connection_age: float | None,
        rotation_overlap: float,
        redundancy: int,
        credentials: Credentials | None,
        login_timeout: float,
    ) -> None:
        self.ctx = ctx
        self.config = dataclasses.replace(
            config, open_steps=(lambda session: self.private.open_step(session), *config.open_steps)
        )
        self.messages: FastSubject[Any] = FastSubject(ctx.observer_failed(None, "messages"))
        limiter = ctx.limiter
        self._limiter_unlisten = None if limiter is None else limiter.add_listener(ctx.rate_events.on_next)
        self.requests = Requests(
            ctx,
            id_generator,
            max_in_flight=max_in_flight,
            on_subscribed=lambda topics, error: self.topics.subscribed(topics, error),
            on_unsubscribed=lambda topics, error: self.topics.unsubscribed(topics, error),
        )
        self.topics = Topics(
            ctx,
            url,
            self.requests,
            serving=lambda: self.lifecycle.serving(),
            closed=lambda: self.lifecycle.closed,
            subscribe_timeout=subscribe_timeout,
            request_timeout=request_timeout,
            detect_gaps=detect_gaps,
            covered=self._covered,
            mirror=self._mirror,
        )
        self.lifecycle = Lifecycle(
            ctx,
            url=url,
            policy=reconnect,
            keep_outbound=keep_outbound,
            requests=self.requests,
            topics=self.topics,
            new_session=self.new_session,
            on_closed=self._complete_streams,
            on_serving=self._serving,
            on_lost=self._lost,
        )
        self.private = Private(ctx, credentials, login_timeout, self.topics, self.lifecycle)
        self.rotation = Rotation(
            ctx,
            lifecycle=self.lifecycle,
            topics=self.topics,
            requests=self.requests,
            new_session=self.new_session,
            policy=reconnect,
            overlap=rotation_overlap,
            timeout=config.max_connect_wait + subscribe_timeout + rotation_overlap,
            subscribe_timeout=subscribe_timeout,
            max_age=max_connection_age,
        )
        self.inbound = Inbound(
            ctx,
            requests=self.requests,
            topics=self.topics,
            lifecycle=self.lifecycle,
            rotation=self.rotation,
            server_time=self.private.server_time,
        )
        self.redundancy = (
            None
            if redundancy == 1
            else Redundancy(
                ctx,
                lifecycle=self.lifecycle,
                topics=self.topics,
                requests=self.requests,
                new_session=self.new_session,
                policy=reconnect,
                subscribe_timeout=subscribe_timeout,
            )
        )

    def new_session(self, conn_id: str, owner: SessionOwner | None = None) -> Session:
        """The session of one connection (an attempt of the lifecycle, or a rotation's new one)."""
        owner = owner or self.lifecycle
        route, messages = self.topics.route, self.messages
        return Session(
            self.ctx,
            owner,
            self.inbound,
            conn_id,
            self.config,
            requests=self.requests,
            route=route,
            messages=messages,
        )

    def close(self, result: CommandResult[None]) -> None:
        """Close the client (on its loop); with a twin, the close completes once both closed."""
        if self.redundancy is None:
            self.lifecycle.close(result)
        else:
            self.redundancy.close_with(self.lifecycle.close, result)

    def outbound_queue_depth(self) -> int:
        """Frames waiting to be written, over every connection (serving, rotation's, twin)."""
        twin = self.redundancy.twin if self.redundancy is not None else None
        sessions = {self.lifecycle.session, self.rotation.session, twin}
        return sum(session.queued for session in sessions if session is not None)

    def watch(
        self, topics: tuple[str, ...], model: type[BaseModel] | None, idle_timeout: float | None
    ) -> Observable[Any]:
        """The stream behind ``client.watch()``: each subscription attaches to ``topics``' subjects
        on the client's loop (unless a refused login already failed a private topic), and with
        ``idle_timeout`` a silence is reported as a ``HeartbeatMissed`` event."""
        ctx, topics_part = self.ctx, self.topics

        def subscribe(
            observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            disposable = CompositeDisposable()
            if self.private.refused(topics, observer):  # a private topic after a refused login
                return disposable
            ctx.run(lambda: topics_part.attach_watch(topics, model, observer, disposable), None)
            return Disposable(lambda: ctx.run(disposable.dispose, None))

        stream: Observable[Any] = Observable(subscribe)
        if idle_timeout is None:
            return stream
        label = ",".join(topics)

        def on_idle(silent_for: float) -> None:
            ctx.emit(HeartbeatMissed(at=ctx.now(), silent_for=silent_for, topic=label))

        def watched(_scheduler: abc.SchedulerBase | None) -> Observable[Any]:
            return stream.pipe(idle_watchdog(idle_timeout, on_idle, scheduler=ctx.scheduler))

        return reactivex.defer(watched)

    # What one part tells the others ------------------------------------------------------------
    def _serving(self, session: Session) -> None:
        """The lifecycle's session serves (a connect or a reconnection)."""
        if self.redundancy is not None:
            self.redundancy.serving(session)
        self.rotation.serving(session)

    def _covered(self) -> bool:  # a twin serves: a primary drop loses no data
        return self.redundancy is not None and self.redundancy.covered()

    def _mirror(self, kind: str, topics: Sequence[str]) -> None:
        if self.redundancy is not None:
            self.redundancy.mirror(kind, topics)

    def _lost(self, why: str) -> None:
        """The serving session dropped, or the client closes."""
        self.rotation.abandon(why)
        self.private.lost()
        if self.redundancy is not None:
            if self.lifecycle.closed:
                self.redundancy.stop(why)
            else:
                self.redundancy.primary_lost()

    def _complete_streams(self) -> None:
        """The client closed: every stream but ``state`` completes (the lifecycle ends that one)."""
        self.private.close()
        self.topics.complete()
        self.messages.on_completed()
        if self._limiter_unlisten is not None:
            self._limiter_unlisten()
            self._limiter_unlisten = None
        self.ctx.rate_events.on_completed()
        self.ctx.events.on_completed()
