"""WebSocketClient: the facade over the client's parts, which wire a transport, a protocol, a limiter
and the sans-I/O core into observables (built and wired in :mod:`rxws._assembly`).

Threading: every public command may be called from any thread; the work is marshalled onto the
client's loop (or runs inline under a virtual-time scheduler), and observers are always called on
the client's scheduler. The host decides every lifecycle step: nothing reconnects without a
:class:`~rxws.reconnect.ReconnectPolicy` whose ``approve`` said yes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from threading import get_ident as _get_ident
from types import TracebackType
from typing import Any, Literal, overload

from pydantic import BaseModel
from reactivex import Observable, abc

from rxws import _display
from rxws._assembly import ClientParts, check_arguments
from rxws._client_base import ClientContext, ClientStats
from rxws._command import CommandResult
from rxws._every import KeepaliveTask
from rxws._expect import Match, expect
from rxws._instrument import TimedRequest
from rxws._replay import ReplayStream
from rxws._session import OpenStep, Session
from rxws._session_config import session_config
from rxws._topics import unique_topics
from rxws.auth import Credentials
from rxws.core.clock import VenueClock
from rxws.core.correlation import IdGenerator, monotonic_ids
from rxws.core.state import ConnectionState
from rxws.events import Event
from rxws.exceptions import UsageError
from rxws.protocols.base import VenueProtocol
from rxws.ratelimit.events import RateLimitEvent
from rxws.ratelimit.venue import WebSocketRateLimiter
from rxws.reconnect import ReconnectPolicy
from rxws.subscriptions import SubscriptionManager
from rxws.transport.base import Transport, validate_url

__all__ = ["ClientStats", "WebSocketClient"]


class WebSocketClient:
    """A reactive WebSocket client for one venue connection.

    The client owns what outlives a connection — the lifecycle and the host's policy
    (:mod:`rxws._lifecycle`), the topics, registry and router (:mod:`rxws._watching`), the pending
    requests (:mod:`rxws._requests`), the limiter, counters and event streams — and each
    connection is a :class:`~rxws._session.Session` (link, heartbeats, writer, back-pressure).

    Args:
        url: ``ws://`` or ``wss://`` URL of the venue; checked here, before any I/O.
        protocol: the venue dialect (e.g. :class:`rxws.protocols.GenericJson`).
        transport: how links are opened; the native ``websockets`` transport by default.
        scheduler: where timers run and observers are called; by default an asyncio scheduler
            bound to the loop running when the client is created or first connected. Pass a
            ``TestScheduler`` with a ``MemoryTransport`` to run in virtual time.
        reconnect: ``None`` (never reconnect) or a :class:`~rxws.reconnect.ReconnectPolicy`.
        rate_limiter: a :class:`~rxws.ratelimit.WebSocketRateLimiter` every connect, frame and
            subscription passes through; may be shared by several clients.
        keep_outbound_on_drop: on a drop, keep queued outbound messages (and accept new ones)
            for after an approved reconnection, instead of failing them with ConnectionLost.
        detect_gaps: track each watched topic's sequence numbers (read through the protocol)
            and report ``GapDetected`` for jumps, duplicates, regressions and disconnect windows.
        write_high_water: bytes the link may hold unwritten before sends wait in the outbound
            queue (whose bound, ``max_outbound_queue``, then covers every unwritten frame).
        secret_headers: more header names (beyond :data:`rxws._redact.DEFAULT_SECRET_HEADERS`:
            ``X-MBX-APIKEY``, ``OK-ACCESS-KEY``, ``Authorization``...) whose values are masked in
            logs, reprs and error messages.
        open_steps: run in order on every new connection after its link opens and before it
            serves (and before subscriptions are restored), e.g. a login; each is called with the
            :class:`~rxws._session.Session` (``session.exchange(frame, key, timeout)``) and
            returns an observable that completes when done; an error fails that opening.
        max_connection_age: rotate each connection (make before break, see :meth:`rotate`) once
            it served this many seconds; set it under the venue's own cut
            (``protocol.max_connection_age``: Binance 24 h). None: never by age.
        rotation_overlap: seconds both connections deliver during a rotation before topics
            without sequence numbers or dedupe keys switch to the new one.
        redundancy: 2 holds a twin connection on the same topics, merged (each message once);
            a drop of either loses nothing; see :mod:`rxws._redundancy`. Not combined with
            rotation yet.
        credentials: log every connection in (the first, each reconnection, a rotation's new
            one, the twin) as its first open step, before any subscription; private topics and
            requests wait for it. A refusal fails its waiters with ``AuthenticationError`` and is
            not retried without the host's approval (see :mod:`rxws._private`).
        login_timeout: seconds each login reply may take.
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: VenueProtocol,
        transport: Transport | None = None,
        scheduler: abc.SchedulerBase | None = None,
        reconnect: ReconnectPolicy | None = None,
        rate_limiter: WebSocketRateLimiter | None = None,
        # Timeouts
        request_timeout: float = 10.0,
        subscribe_timeout: float = 10.0,
        open_timeout: float | None = 10.0,
        close_timeout: float = 5.0,
        # Heartbeats (protocol-level ping; None disables)
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        # Limits
        max_size: int | None = 2**20,
        max_in_flight: int = 10_000,
        max_outbound_queue: int = 10_000,
        write_high_water: int = 2**16,
        # On a drop: keep queued outbound messages for after an approved reconnect, or fail them
        keep_outbound_on_drop: bool = False,
        # Report GapDetected for sequence jumps and disconnect windows on watched topics
        detect_gaps: bool = True,
        # Protocol details
        headers: Mapping[str, str] | None = None,
        secret_headers: Sequence[str] = (),
        subprotocols: Sequence[str] = (),
        ssl: object | None = None,
        id_generator: IdGenerator | None = None,
        name: str | None = None,
        open_steps: Sequence[OpenStep] = (),
        # Rotation (make before break): by age, by venue notice (see ReconnectPolicy), by rotate()
        max_connection_age: float | None = None,
        rotation_overlap: float = 1.0,
        # Redundancy: 2 keeps a twin connection on the same topics, merged message by message
        redundancy: int = 1,
        # Private streams: log in on every connection (see rxws._private)
        credentials: Credentials | None = None,
        login_timeout: float = 10.0,
    ) -> None:
        check_arguments(  # UsageError before anything is built
            protocol,
            reconnect=reconnect,
            rate_limiter=rate_limiter,
            request_timeout=request_timeout,
            close_timeout=close_timeout,
            max_connection_age=max_connection_age,
            rotation_overlap=rotation_overlap,
            redundancy=redundancy,
        )
        self.url = validate_url(url)
        self.protocol = protocol
        self.name = name or url
        config = session_config(
            self.url,
            transport,
            headers=headers,
            secret_headers=secret_headers,
            subprotocols=subprotocols,
            write_high_water=write_high_water,
            max_size=max_size,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ssl=ssl,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_outbound_queue=max_outbound_queue,
            open_steps=open_steps,
        )
        self._options = config.options
        self._request_timeout = request_timeout
        self._close_result: CommandResult[None] | None = None
        self._close_lock = threading.Lock()

        # The parts (rxws._assembly): each owns its state; they meet through method calls only
        parts = ClientParts(
            ClientContext(self.name, protocol, scheduler, rate_limiter),
            self.url,
            config,
            reconnect=reconnect,
            id_generator=id_generator or monotonic_ids(),
            max_in_flight=max_in_flight,
            request_timeout=request_timeout,
            subscribe_timeout=subscribe_timeout,
            detect_gaps=detect_gaps,
            keep_outbound=keep_outbound_on_drop,
            max_connection_age=max_connection_age,
            rotation_overlap=rotation_overlap,
            redundancy=redundancy,
            credentials=credentials,
            login_timeout=login_timeout,
        )
        self._parts = parts
        self._ctx = ctx = parts.ctx
        self.stats: ClientStats = ctx.stats
        self._messages = parts.messages
        self._requests, self._topics, self._lifecycle = parts.requests, parts.topics, parts.lifecycle
        self._private, self._rotation, self._inbound = parts.private, parts.rotation, parts.inbound
        self._redundancy = parts.redundancy
        self._manager = SubscriptionManager(self._topics)
        _display.track(self)  # recent events, for the notebook view (_repr_html_)

    # ------------------------------------------------------------------------------------------
    # Observables
    @property
    def state(self) -> Observable[ConnectionState]:
        """Connection states, replaying the current one to each new subscriber.

        Safe to subscribe from any thread. An observer that raises is isolated (an
        ``ObserverFailed(stream="state")`` event and a WARNING log); the client goes on.
        """
        return self._lifecycle.state_subject

    @property
    def state_value(self) -> ConnectionState:
        """The current connection state."""
        return self._lifecycle.state

    @property
    def events(self) -> Observable[Event]:
        """Lifecycle, subscription, gap and diagnostic events (frozen pydantic models).

        An observer that raises is isolated: ``ObserverFailed(stream="events")`` goes to the
        observers (the one that raised included), a WARNING is logged, and the client's own
        handling of whatever the event reported is already done (see ``_dropped``). If it raises
        again on that ``ObserverFailed``, that is logged and counted only.
        """
        return self._ctx.events

    @property
    def rate_limit_events(self) -> Observable[RateLimitEvent]:
        """What the rate limiter did: throttles, queueing, rejections, violations, penalties.

        The limiter may be shared with other clients, so observers may be called from the
        thread of whichever client acted. An observer that raises is isolated and reported as
        ``ObserverFailed(stream="rate_limit_events")`` on this client's loop.
        """
        return self._ctx.rate_events

    @property
    def messages(self) -> Observable[Any]:
        """Every decoded inbound message, routed or not. An observer that raises is isolated."""
        return self._messages

    @property
    def subscriptions(self) -> SubscriptionManager:
        """The topics the host wants and where each stands; snapshot, restore, verify."""
        return self._manager

    @property
    def pending_requests(self) -> int:
        """Requests waiting for their reply."""
        return len(self._requests)

    @property
    def clock(self) -> VenueClock:
        """The venue's clock estimate (handshake ``Date``, server times in replies and pongs, and
        ``clock.add_sample`` for a host source); logins sign with it."""
        return self._private.clock

    @property
    def outbound_queue_depth(self) -> int:
        """Frames waiting to be written, over every connection (serving, rotation's, twin)."""
        return self._parts.outbound_queue_depth()

    def add_instrumentation(self, sink: Any) -> abc.DisposableBase:
        """Call ``sink`` (a :class:`rxws.metrics.ClientInstrumentation`) per inbound frame and per
        request end (outcomes: :func:`rxws._instrument.outcome_of`); dispose the result to stop.
        Without a sink, each frame costs one truth test; a sink that raises is isolated."""
        return self._ctx.add_instrument(sink)

    @property
    def conn_id(self) -> str | None:
        """The connection's id at the rate limiter, unique in the fleet (None before a connect)."""
        session = self._lifecycle.session
        return None if session is None else session.conn_id

    @property
    def connection_age(self) -> float | None:
        """Seconds the serving connection has served (a rotation starts a new one), or None."""
        session = self._lifecycle.serving()
        opened = None if session is None else session.opened_at
        return None if opened is None else self._ctx.now() - opened

    @property
    def scheduler(self) -> abc.SchedulerBase | None:
        """The scheduler timers run on and observers are called on (bound by the first command)."""
        return self._ctx.scheduler

    # ------------------------------------------------------------------------------------------
    # Commands
    def connect(self) -> CommandResult[None]:
        """Open the connection; completes once CONNECTED, errors with the translated cause.

        Called with no running asyncio loop and no ``scheduler=``, it cannot do anything: the
        result fails with a :class:`UsageError` saying so (also raised when awaited), and a
        WARNING is logged in case nobody looks at the result.
        """
        result: CommandResult[None] = CommandResult("connect")
        self._ctx.run(lambda: self._lifecycle.connect(result), result)
        return result

    def close(self) -> CommandResult[None]:
        """Close gracefully (close frame 1000, bounded wait), completing every stream. Idempotent.

        Safe from several threads at once: exactly one close starts, and every caller gets the
        same result. A close that could not start (no loop, see :meth:`connect`) is not kept:
        the next call tries again.
        """
        with self._close_lock:
            if self._close_result is not None:
                return self._close_result
            result: CommandResult[None] = CommandResult("close")
            self._close_result = result
        self._ctx.run(lambda: self._close(result), result)
        if result.done and not self._lifecycle.closed:  # could not even start (no loop): let a retry try
            with self._close_lock:
                if self._close_result is result:
                    self._close_result = None
        return result

    def send(self, message: Any) -> CommandResult[None]:
        """Send a raw message (encoded by the protocol), still rate-limited; completes once written."""
        result: CommandResult[None] = CommandResult("send")
        self._ctx.run(lambda: self._send(message, result), result)
        return result

    @overload
    def request(
        self, method: str, params: Any = None, *, timeout: float | None = None, stream: Literal[False] = False
    ) -> CommandResult[Any]: ...
    @overload
    def request(
        self, method: str, params: Any = None, *, timeout: float | None = None, stream: Literal[True]
    ) -> ReplayStream[Any]: ...
    def request(
        self, method: str, params: Any = None, *, timeout: float | None = None, stream: bool = False
    ) -> CommandResult[Any] | ReplayStream[Any]:
        """Send a request with a unique id; the result is the venue's reply.

        With ``stream=True``: an observable of every part of a multi-frame reply (the dialect's
        ``is_partial``), completed by the final one, failing as the plain result would.

        Errors with :class:`RequestTimeout` after ``timeout`` seconds, :class:`VenueError` on an
        error reply, :class:`ConnectionLost` when the connection drops first, and
        :class:`~rxws.exceptions.EncodeError` when ``params`` cannot be encoded.

        Cancelling the task that awaits the result (``task.cancel()``, ``asyncio.wait_for``
        timing out), when nobody else waits for it, withdraws the request: it leaves the
        pending table (freeing its ``max_in_flight`` slot; a reply that still comes is a late
        reply), is not sent if it was still queued (counted as dropped), and is counted in
        ``stats.requests_cancelled``.
        """
        ctx = self._ctx
        result: CommandResult[Any] = (
            TimedRequest(ctx, method) if ctx.instruments else CommandResult("request", method)
        )
        deadline = self._request_timeout if timeout is None else timeout
        if not deadline > 0:
            raise UsageError(f"timeout must be > 0, got {timeout!r}")
        if stream:
            parts: ReplayStream[Any] = ReplayStream()
            result.subscribe(on_error=parts.end)  # a failure before the final part (timeout, drop...)
            ctx.run(lambda: self._request(method, params, deadline, result, parts), result)
            return parts
        if self._ctx.owner == _get_ident():  # on the client's loop (the hot path): no marshalling
            try:
                self._request(method, params, deadline, result)
            except Exception as exc:
                result.set_error(exc)
        else:
            self._ctx.run(lambda: self._request(method, params, deadline, result), result)
        return result

    def expect(self, match: Match, *, timeout: float, count: int = 1) -> CommandResult[Any]:
        """The next ``count`` inbound messages ``match`` (a predicate, or a routing key) accepts,
        within ``timeout``; subscribed now, before what provokes them (:func:`rxws._expect.expect`)."""
        sched = self._ctx.scheduler
        return expect(
            self.messages, match, timeout=timeout, count=count, protocol=self.protocol, scheduler=sched
        )

    def _repr_html_(self) -> str:
        return _display.client_html(self, limiter=self._ctx.limiter)

    def __repr__(self) -> str:
        return _display.client_text(self)

    def watch(
        self, *topics: str, model: type[BaseModel] | None = None, idle_timeout: float | None = None
    ) -> Observable[Any]:
        """The merged stream of ``topics``' messages, reference-counted.

        The first observer of a topic sends the subscribe (topics of one tick batched), the last
        dispose sends the unsubscribe. With ``model``, each message is validated into it; one
        that fails becomes a ``DecodeFailed`` event and is skipped. With ``idle_timeout``, a
        silence of that many seconds on the stream is reported once as a ``HeartbeatMissed``
        event naming the topics (an idle-data watchdog; the host decides what it means).
        """
        if idle_timeout is not None and not idle_timeout > 0:
            raise UsageError(f"idle_timeout must be > 0 or None, got {idle_timeout!r}")
        unique = unique_topics(topics)
        if self._lifecycle.closed:
            raise UsageError("the client is closed; create a new one")
        return self._parts.watch(unique, model, idle_timeout)

    def every(
        self, period: float, action: Callable[[], Any], *, name: str | None = None, immediately: bool = False
    ) -> KeepaliveTask:
        """Run ``action`` (a callable, observable factory or coroutine function) every ``period``
        seconds while CONNECTED; a failed run is a ``KeepaliveFailed`` event; :meth:`close`
        disposes every task. Returns the :class:`~rxws._every.KeepaliveTask` (a disposable)."""
        return self._private.every(period, action, name=name, immediately=immediately)

    async def __aenter__(self) -> WebSocketClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------------
    # Connecting and closing
    def rotate(self) -> CommandResult[None]:
        """Move to a new connection without losing or repeating a message (make before break).

        A new connection opens beside the serving one (through the connect limiter, with the
        same open steps), subscribes the same topics, and takes each topic over once it caught up
        by sequence number (or dedupe key; topics with neither switch after ``rotation_overlap``
        seconds and are reported as unsequenced); then the old connection closes with 1000.
        Events: ``RotationStarted``, then ``Rotated(overlap, switched, unsequenced)``, or
        ``RotationFailed`` when the new connection cannot open, subscribe or catch up (the old
        one keeps serving, and the result errors with the cause). Errors with ``NotConnected``
        when not connected; a call during a rotation joins it.
        """
        result: CommandResult[None] = CommandResult("rotate")
        if self._redundancy is not None:
            result.set_error(UsageError("rotate() is not combined with redundancy=2 yet"))
            return result
        self._ctx.run(lambda: self._rotation.start("host", result), result)
        return result

    def reconnect(self) -> CommandResult[None]:
        """Reconnect now, by hand: the host's own decision, no proposal asked.

        Cancels a pending backoff wait. When connected, completes at once.
        """
        result: CommandResult[None] = CommandResult("reconnect")
        self._ctx.run(lambda: self._lifecycle.manual_reconnect(result), result)
        return result

    # ------------------------------------------------------------------------------------------
    # Commands, carried out on the client's loop
    def _close(self, result: CommandResult[None]) -> None:
        self._parts.close(result)

    def _send(self, message: Any, result: CommandResult[None]) -> None:
        session = self._lifecycle.outbound()
        session.write(self.protocol.encode(message), result)

    def _request(
        self, method: str, params: Any, timeout: float, result: CommandResult[Any], parts: Any = None
    ) -> None:
        self._requests.request(self._lifecycle.outbound(), method, params, timeout, result, parts)

    # ------------------------------------------------------------------------------------------
    # For tests and benchmarks that look inside (not API)
    @property
    def _session(self) -> Session | None:
        return self._lifecycle.session
