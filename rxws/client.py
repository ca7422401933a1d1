"""WebSocketClient: the composition root that wires a transport, a protocol, a limiter and the
sans-I/O core into observables.

Threading: every public command may be called from any thread; the work is marshalled onto the
client's loop (or runs inline under a virtual-time scheduler), and observers are always called on
the client's scheduler. The host decides every lifecycle step: nothing reconnects without a
:class:`~rxws.reconnect.ReconnectPolicy` whose ``approve`` said yes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from threading import get_ident as _get_ident
from types import TracebackType
from typing import Any

import reactivex
from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxws._client_base import ClientStats, _Pending, _plain, _zero
from rxws._command import CommandResult
from rxws._heartbeat import _HeartbeatMixin
from rxws._lifecycle import _LifecycleMixin
from rxws._outbound import _OutboundMixin
from rxws._redact import DEFAULT_SECRET_HEADERS
from rxws._subject import FastBehaviorSubject, FastSubject
from rxws._time import clock_of
from rxws._topics import unique_topics
from rxws._watching import _WatchingMixin
from rxws.core.correlation import IdGenerator, PendingTable, monotonic_ids
from rxws.core.routing import Router
from rxws.core.sequence import SequenceTracker
from rxws.core.state import ConnectionState, StateMachine
from rxws.core.subscriptions import SubscriptionRegistry
from rxws.events import (
    Event,
    HeartbeatMissed,
    VenueNotice,
)
from rxws.exceptions import DecodeError, RateLimitExceeded, UsageError
from rxws.operators._idle import idle_watchdog
from rxws.protocols.base import MessageKind, VenueProtocol
from rxws.ratelimit.events import RateLimitEvent
from rxws.ratelimit.pairing import check_pairing
from rxws.ratelimit.venue import WebSocketRateLimiter
from rxws.reconnect import ReconnectPolicy
from rxws.subscriptions import SubscriptionManager
from rxws.transport.base import Frame, Link, LinkOptions, Transport, validate_url

__all__ = ["ClientStats", "WebSocketClient"]

log = logging.getLogger("rxws.client")

_S = ConnectionState
_DATA, _REPLY, _ACK, _UNACK, _CONTROL, _ERROR = (
    MessageKind.DATA,
    MessageKind.REPLY,
    MessageKind.ACK,
    MessageKind.UNACK,
    MessageKind.CONTROL,
    MessageKind.ERROR,
)


class WebSocketClient(_LifecycleMixin, _WatchingMixin, _OutboundMixin, _HeartbeatMixin):
    """A reactive WebSocket client for one venue connection.

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
    ) -> None:
        if not isinstance(protocol, VenueProtocol):
            raise UsageError(f"protocol must be a VenueProtocol instance, got {protocol!r}")
        for label, value in (("request_timeout", request_timeout), ("close_timeout", close_timeout)):
            if not value > 0:
                raise UsageError(f"{label} must be > 0, got {value!r}")
        self.url = validate_url(url)
        self.protocol = protocol
        self.name = name or url
        if transport is None:
            from rxws.transport.websockets import WebsocketsTransport

            transport = WebsocketsTransport()
        self._transport = transport
        if not isinstance(write_high_water, int) or write_high_water < 1:
            raise UsageError(f"write_high_water must be a positive number of bytes, got {write_high_water!r}")
        if isinstance(secret_headers, str):
            raise UsageError(f"secret_headers must be a sequence of header names, got {secret_headers!r}")
        self._options = LinkOptions(
            headers=dict(headers or {}),
            secret_headers=(*DEFAULT_SECRET_HEADERS, *secret_headers),
            write_high_water=write_high_water,
            subprotocols=tuple(subprotocols),
            max_size=max_size,
            ping_interval=None,  # the client pings itself (rxws._heartbeat): on its scheduler,
            ping_timeout=None,  # through the rate limiter, testable in virtual time
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ssl=ssl,
        )
        if reconnect is not None and not isinstance(reconnect, ReconnectPolicy):
            raise UsageError(f"reconnect must be a ReconnectPolicy or None, got {reconnect!r}")
        self._policy = reconnect
        check_pairing(protocol, rate_limiter)  # a preset built for another venue's dialect: UsageError
        self._limiter = rate_limiter
        for label, period in (("ping_interval", ping_interval), ("ping_timeout", ping_timeout)):
            if period is not None and not period > 0:
                raise UsageError(f"{label} must be > 0 or None, got {period!r}")
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._hb_timer = SerialDisposable()
        self._hb_deadline = SerialDisposable()
        self._app_timer = SerialDisposable()
        self._hb_token = 0
        self._app_frames = 0
        self._app_pinged = False
        self._max_connect_wait = open_timeout if open_timeout is not None else 10.0
        self._request_timeout = request_timeout
        self._subscribe_timeout = subscribe_timeout
        self._close_timeout = close_timeout
        self._max_in_flight = max_in_flight
        self._max_outbound_queue = max_outbound_queue
        self._keep_outbound = keep_outbound_on_drop
        self._next_id = id_generator or monotonic_ids()

        # Loop and scheduler binding
        self._scheduler: abc.SchedulerBase | None = scheduler
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner: int | None = None
        if isinstance(scheduler, AsyncIOScheduler):
            self._loop = scheduler._loop
        elif scheduler is None:
            with contextlib.suppress(RuntimeError):
                self._bind(asyncio.get_running_loop())
        self._now: Callable[[], float] = clock_of(self._scheduler) if self._scheduler else _zero

        # Core state
        self._sm = StateMachine()
        self._pending: PendingTable[_Pending] = PendingTable()
        self._router = Router()
        self._route = self._router.lookup
        self._registry = SubscriptionRegistry()
        self._tracker: SequenceTracker | None = SequenceTracker() if detect_gaps else None
        self._topics: dict[str, FastSubject[Any]] = {}
        self.stats = ClientStats()

        # Streams
        # Every stream isolates its observers: one that raises is reported (ObserverFailed, a
        # WARNING log, stats.observer_failures) and the client and the other observers go on.
        self._reporting_events_failure = False
        self._state_subject: FastBehaviorSubject[ConnectionState] = FastBehaviorSubject(
            _S.DISCONNECTED, self._observer_failed(None, "state")
        )
        self._events_subject: FastSubject[Event] = FastSubject(self._observer_failed(None, "events"))
        self._messages: FastSubject[Any] = FastSubject(self._observer_failed(None, "messages"))
        self._rate_events: FastSubject[RateLimitEvent] = FastSubject(
            self._observer_failed(None, "rate_limit_events")
        )
        self._limiter_unlisten = (
            None if rate_limiter is None else rate_limiter.add_listener(self._rate_events.on_next)
        )
        self._conn_held = False

        # Connection
        self._link: Link | None = None
        self._conn_id = ""
        self._conn_seq = 0
        self._link_sub = SerialDisposable()
        self._open_sub = SerialDisposable()
        self._timers = CompositeDisposable()
        self._connect_waiters: list[CommandResult[None]] = []
        self._close_result: CommandResult[None] | None = None
        self._close_lock = threading.Lock()
        self._closed = False
        self._outq: deque[tuple[Frame, CommandResult[None] | None, Hashable]] = deque()
        self._flush_timer = SerialDisposable()
        self._deadline_timer = SerialDisposable()
        self._armed_at: float | None = None
        self._sub_request: dict[str, Hashable] = {}  # topic -> the subscribe request carrying it
        self._unsub_request: dict[str, Hashable] = {}  # topic -> the unsubscribe request carrying it
        self._sub_flush_scheduled = False
        # Lifecycle: one subscription per connect() (with retries when a policy is set)
        self._lifecycle = SerialDisposable()
        self._session_observer: abc.ObserverBase[Link] | None = None
        self._ever_connected = False
        self._lifecycle_live = False
        self._dropped_at: float | None = None
        self._attempt = 0
        self._restoring: set[str] | None = None
        self._restored: tuple[list[str], list[str]] = ([], [])

    # ------------------------------------------------------------------------------------------
    # Observables
    @property
    def state(self) -> Observable[ConnectionState]:
        """Connection states, replaying the current one to each new subscriber.

        Safe to subscribe from any thread. An observer that raises is isolated (an
        ``ObserverFailed(stream="state")`` event and a WARNING log); the client goes on.
        """
        return self._state_subject

    @property
    def state_value(self) -> ConnectionState:
        """The current connection state."""
        return self._sm.state

    @property
    def events(self) -> Observable[Event]:
        """Lifecycle, subscription, gap and diagnostic events (frozen pydantic models).

        An observer that raises is isolated: ``ObserverFailed(stream="events")`` goes to the
        observers (the one that raised included), a WARNING is logged, and the client's own
        handling of whatever the event reported is already done (see ``_dropped``). If it raises
        again on that ``ObserverFailed``, that is logged and counted only.
        """
        return self._events_subject

    @property
    def rate_limit_events(self) -> Observable[RateLimitEvent]:
        """What the rate limiter did: throttles, queueing, rejections, violations, penalties.

        The limiter may be shared with other clients, so observers may be called from the
        thread of whichever client acted. An observer that raises is isolated and reported as
        ``ObserverFailed(stream="rate_limit_events")`` on this client's loop.
        """
        return self._rate_events

    @property
    def messages(self) -> Observable[Any]:
        """Every decoded inbound message, routed or not. An observer that raises is isolated."""
        return self._messages

    @property
    def subscriptions(self) -> SubscriptionManager:
        """The topics the host wants and where each stands; snapshot, restore, verify."""
        return self._subscription_manager()

    @property
    def pending_requests(self) -> int:
        """Requests waiting for their reply."""
        return len(self._pending)

    @property
    def scheduler(self) -> abc.SchedulerBase | None:
        return self._scheduler

    # ------------------------------------------------------------------------------------------
    # Commands
    def connect(self) -> CommandResult[None]:
        """Open the connection; completes once CONNECTED, errors with the translated cause.

        Called with no running asyncio loop and no ``scheduler=``, it cannot do anything: the
        result fails with a :class:`UsageError` saying so (also raised when awaited), and a
        WARNING is logged in case nobody looks at the result.
        """
        result: CommandResult[None] = CommandResult("connect")
        self._run(lambda: self._connect(result), result)
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
        self._run(lambda: self._close(result), result)
        if result.done and not self._closed:  # could not even start (no loop): let a retry try
            with self._close_lock:
                if self._close_result is result:
                    self._close_result = None
        return result

    def send(self, message: Any) -> CommandResult[None]:
        """Send a raw message (encoded by the protocol), still rate-limited; completes once written."""
        result: CommandResult[None] = CommandResult("send")
        self._run(lambda: self._send(message, result), result)
        return result

    def request(self, method: str, params: Any = None, *, timeout: float | None = None) -> CommandResult[Any]:
        """Send a request with a unique id; the result is the venue's reply.

        Errors with :class:`RequestTimeout` after ``timeout`` seconds, :class:`VenueError` on an
        error reply, :class:`ConnectionLost` when the connection drops first, and
        :class:`~rxws.exceptions.EncodeError` when ``params`` cannot be encoded.

        Cancelling the task that awaits the result (``task.cancel()``, ``asyncio.wait_for``
        timing out), when nobody else waits for it, withdraws the request: it leaves the
        pending table (freeing its ``max_in_flight`` slot; a reply that still comes is a late
        reply), is not sent if it was still queued (counted as dropped), and is counted in
        ``stats.requests_cancelled``.
        """
        result: CommandResult[Any] = CommandResult("request", method)
        deadline = self._request_timeout if timeout is None else timeout
        if not deadline > 0:
            raise UsageError(f"timeout must be > 0, got {timeout!r}")
        if self._owner == _get_ident():  # on the client's loop (the hot path): no marshalling
            try:
                self._request(method, params, deadline, result)
            except Exception as exc:
                result.set_error(exc)
        else:
            self._run(lambda: self._request(method, params, deadline, result), result)
        return result

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
        if self._closed:
            raise UsageError("the client is closed; create a new one")

        def subscribe(
            observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            disposable = CompositeDisposable()
            self._run(lambda: self._attach_watch(unique, model, observer, disposable), None)
            return Disposable(lambda: self._run(disposable.dispose, None))

        stream: Observable[Any] = Observable(subscribe)
        if idle_timeout is None:
            return stream
        label = ",".join(unique)

        def on_idle(silent_for: float) -> None:
            self._emit(HeartbeatMissed(at=self._now(), silent_for=silent_for, topic=label))

        def watched(_scheduler: abc.SchedulerBase | None) -> Observable[Any]:
            return stream.pipe(idle_watchdog(idle_timeout, on_idle, scheduler=self._scheduler))

        return reactivex.defer(watched)

    async def __aenter__(self) -> WebSocketClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------------
    # Connecting and closing
    def reconnect(self) -> CommandResult[None]:
        """Reconnect now, by hand: the host's own decision, no proposal asked.

        Cancels a pending backoff wait. When connected, completes at once.
        """
        result: CommandResult[None] = CommandResult("reconnect")
        self._run(lambda: self._manual_reconnect(result), result)
        return result

    # ------------------------------------------------------------------------------------------
    # Inbound: the hot path
    def _on_frame(self, frame: Frame) -> None:
        """Decode, classify and dispatch one inbound frame.

        Nothing raised here is lost: an exception is reported by :meth:`_internal_error`
        (``InternalError`` event, counter, WARNING log); the frame is skipped and the next one
        is handled, unless rxws's own bookkeeping raised (then the connection is closed, 1011).
        The ``try`` costs nothing while nothing raises.
        """
        self.stats.frames_in += 1
        protocol = self.protocol
        try:
            try:
                message = protocol.decode(frame)
            except DecodeError as exc:
                self._decode_failed(str(exc), frame)
                return
            kind, key = protocol.classify(message)
            if kind is _DATA:
                sink = self._route(key)
                if sink is not None:
                    sink(message)
                else:
                    self._unrouted(key, message)
            elif kind is _REPLY:
                self._on_reply(key, message)
            else:
                self._on_other(kind, key, message)
            if self._messages._observers:
                self._messages.on_next(message)
        except Exception as exc:
            try:
                self._internal_error(exc, frame)
            except Exception:  # the report (or the 1011 close) failed too: the log is the last word
                log.exception("%s: handling an inbound failure failed", self.name)

    def _request_abandoned(self, request_id: Hashable, result: CommandResult[Any]) -> None:
        """Every waiter of a request gave up: withdraw it (runs on the client's loop)."""
        entry = self._pending.get(request_id)
        if entry is None or entry.result is not result:  # answered, failed or timed out meanwhile
            return
        self._pending.cancel(request_id)
        self.stats.requests_cancelled += 1
        result.set_error(asyncio.CancelledError(f"request {request_id!r} cancelled by its caller"))

    def _on_other(self, kind: MessageKind, key: Any, message: Any) -> None:
        self._check_rate_signal(message)
        reply = self.protocol.auto_reply(message)
        if reply is not None:
            try:
                self._write(self.protocol.encode(reply), None)
            except RateLimitExceeded as exc:  # the outbound queue is full (already an event)
                log.warning("%s: automatic reply not queued: %s", self.name, exc)
        if kind is _ACK:
            self._on_ack_topics(self.protocol.ack_topics(message), self.protocol.reply_error(message))
        elif kind is _UNACK:
            self._on_ack_topics(
                self.protocol.ack_topics(message), self.protocol.reply_error(message), unsubscribe=True
            )
        elif kind is _ERROR:
            error = self.protocol.reply_error(message)
            self._emit(
                VenueNotice(
                    at=self._now(),
                    code=None if error is None else _plain(error.code),
                    detail=str(error.message if error is not None else message)[:200],
                )
            )
        elif kind is MessageKind.NOTICE:
            code, detail = self.protocol.notice_detail(message)
            self._emit(VenueNotice(at=self._now(), code=code, detail=detail, notice=str(key)))
        elif kind is not _CONTROL:
            self._unrouted(None, message)
