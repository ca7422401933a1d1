"""One connection: :class:`Session` owns a link and everything that lives and dies with it.

A session opens its link (through the connect limiter) and runs its *open steps* (e.g. a login)
with its :class:`~rxws._session_open.SessionOpening`, and then serves: frames in are decoded,
classified and dispatched here (:meth:`Session.on_frame`, the whole inbound path in one place),
frames out pass its :class:`~rxws._session_writer.SessionWriter`, and its
:class:`~rxws._session_heartbeat.SessionHeartbeat` keeps the link honest. It also knows the
subscribe and unsubscribe requests in flight on it (topic → request id, for venues whose acks name
topics instead of ids) and the connection's identity towards the rate limiter.

A session decides nothing about the client's lifecycle: it reports to its owner (the client's
lifecycle, through the :class:`SessionOwner` methods) that it opened, failed to open, dropped or
closed, and the owner decides what follows; replies, acks, notices and unrouted data go to its
:class:`SessionInbound` (the client). A session ends once; a new connection is a new session.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

from reactivex import Observable
from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import ClientContext, _Pending, log
from rxws._command import CommandResult
from rxws._requests import Requests
from rxws._session_budget import ConnectionBudget
from rxws._session_config import SessionConfig
from rxws._session_heartbeat import SessionHeartbeat
from rxws._session_open import SessionOpening
from rxws._session_writer import Entry, SessionWriter
from rxws._subject import FastSubject
from rxws.events import DisconnectReason
from rxws.exceptions import (
    ConnectionClosed,
    DecodeError,
    HeartbeatTimeout,
    MessageTooBig,
    NotConnected,
    ProtocolError,
    RateLimitExceeded,
)
from rxws.protocols.base import MessageKind, decode_detail, fast_decoder
from rxws.transport.base import Frame, Link

__all__ = ["OpenStep", "Session", "SessionInbound", "SessionOwner"]

_DATA, _REPLY = MessageKind.DATA, MessageKind.REPLY

OpenStep = Callable[["Session"], Observable[Any]]
"""A step run after the link opens and before the session serves (e.g. a login): it completes
when done; an error fails the opening with that error."""


class SessionOwner(Protocol):
    """What a session reports to the part that decides what follows (the client's lifecycle)."""

    def session_opened(self, session: Session) -> None:
        """The link is open and every open step completed."""

    def session_open_failed(self, session: Session, error: Exception, reason: DisconnectReason) -> None:
        """The link could not be opened, or an open step failed (the link is closed again)."""

    def session_dropped(
        self, session: Session, error: Exception, why: DisconnectReason, code: int | None, detail: str
    ) -> None:
        """The open link ended without being asked to."""

    def session_closed(self, session: Session, had_link: bool) -> None:
        """:meth:`Session.close` finished."""


class SessionInbound(Protocol):
    """Where a session's decoded frames go when they are not data for a routed topic."""

    def session_reply(self, session: Session, key: Hashable, message: Any) -> None:
        """A reply to a request, keyed by the dialect's correlation key."""

    def session_control(self, session: Session, kind: MessageKind, key: Any, message: Any) -> None:
        """Anything else (after the session checked it for a rate-limit signal and answered it
        when the dialect auto-replies): acks by topic, venue errors and notices, control frames."""

    def session_unrouted(self, key: Any, message: Any) -> None:
        """Data for a topic nobody watches (or with no topic)."""

    def session_internal_error(self, session: Session, error: Exception, frame: Frame) -> None:
        """Handling ``frame`` raised ``error``."""


class Session:
    """One connection to the venue (see the module docstring).

    Interface: :meth:`open`, :meth:`ready`, :meth:`close`, :meth:`untrusted`, :meth:`write`,
    :meth:`exchange`, :meth:`on_frame`, :meth:`hand_over` (a new owner or route), the venue-side
    subscription requests (:meth:`note_requests`, :meth:`take_request`, :meth:`settle_requests`),
    the limiter's view of this connection (:attr:`budget`, a
    :class:`~rxws._session_budget.ConnectionBudget`), and the unwritten frames (:meth:`take_unwritten`, :meth:`adopt_unwritten`, :meth:`fail_unwritten`).
    """

    def __init__(
        self,
        ctx: ClientContext,
        owner: SessionOwner,
        inbound: SessionInbound,
        conn_id: str,
        config: SessionConfig,
        *,
        requests: Requests,
        route: Callable[[Hashable], Callable[[Any], None] | None],
        messages: FastSubject[Any],
    ) -> None:
        self._ctx = ctx
        self._owner = owner
        self._inbound = inbound
        self.conn_id = conn_id
        self._config = config
        self._requests = requests
        self._route = route
        self._screen: Callable[[Frame], bool] | None = None
        self._messages = messages
        self.budget = ConnectionBudget(ctx, conn_id)
        # The default JSON decoding, bound to orjson.loads itself when it can be (see on_frame).
        fast = fast_decoder(ctx.protocol)
        self._decode: Callable[[Frame], Any] = ctx.protocol.decode if fast is None else fast
        self._fast_decode = fast is not None
        self._phase = "new"  # new -> opening -> open -> (closing ->) ended
        self._link: Link | None = None
        self._link_sub = SerialDisposable()
        self._close_timer = SerialDisposable()
        self.opened_at: float | None = None  # when it started serving (the client's clock)
        self.frames_in = 0
        self._login_keys: set[Hashable] = set()  # keys of exchanges waiting (see _login_reply)
        self._requested: dict[str, dict[str, Hashable]] = {"subscribe": {}, "unsubscribe": {}}
        self._writer = SessionWriter(
            ctx,
            self.budget,
            max_queue=config.max_outbound_queue,
            is_pending=requests.__contains__,
            on_drained=self._drained,
        )
        self._heartbeat = SessionHeartbeat(
            ctx,
            self.budget,
            self._writer,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            frames_in=lambda: self.frames_in,
            on_dead=self._link_failed,
        )
        self._opening = SessionOpening(
            ctx, config, self.budget, attach=self._attach, opened=self._opened, failed=self._open_failed
        )

    # What the owner reads ------------------------------------------------------------------------
    @property
    def link(self) -> Link | None:
        """The open link, or None."""
        return self._link

    @property
    def serving(self) -> bool:
        """Open, every open step done, not closing."""
        return self._phase == "open"

    @property
    def ended(self) -> bool:
        """Closed, dropped or failed to open."""
        return self._phase == "ended"

    @property
    def app_ping_at(self) -> float | None:
        """When the last application heartbeat went out (scheduler time), or None."""
        return self._heartbeat.app_ping_at

    @property
    def queued(self) -> int:
        """Frames waiting to be written."""
        return self._writer.queued

    @property
    def holding(self) -> bool:
        """A frame took the link above its mark and completes at the drain."""
        return self._writer.holding

    @property
    def blocked(self) -> bool:
        """The link is above its write high-water mark."""
        return self._writer.blocked

    def __repr__(self) -> str:
        return f"<Session {self.conn_id} {self._phase}>"

    # Opening (see rxws._session_open) ------------------------------------------------------------
    def open(self) -> None:
        """Open the link: through the connect limiter, then the transport, then the open steps."""
        self._phase = "opening"
        self._opening.start(self)

    @property
    def handshake_started(self) -> float | None:
        """When the link's handshake began (the client's clock), or None before it did."""
        return self._opening.handshake_started

    def _attach(self, link: Link) -> bool:
        if self._phase != "opening" or self._link is not None:  # closed while opening
            link.close(1000, "")
            return False
        self._link = link
        self._link_sub.disposable = link.inbound.subscribe(
            on_next=self.on_frame, on_error=self._link_failed, on_completed=self._link_closed
        )
        self._writer.attach(link)
        self._heartbeat.start(link)
        return True

    def _opened(self) -> None:
        """Every open step completed: the session serves."""
        self._phase = "open"
        self.opened_at = self._ctx.now()
        self._owner.session_opened(self)

    def _open_failed(self, error: Exception) -> None:
        if self._phase != "opening":
            return
        reason = self._opening.reason(error)  # a venue's 418/429 is a violation, told to the limiter
        self._teardown()
        self._owner.session_open_failed(self, error, reason)

    def hand_over(
        self,
        owner: SessionOwner | None = None,
        route: Callable[[Hashable], Callable[[Any], None] | None] | None = None,
        screen: Callable[[Frame], bool] | None = None,
    ) -> None:
        """From now on, report to ``owner`` and/or route data through ``route`` (a rotation
        routes both sessions through its merge, then gives the new one to the lifecycle); with
        ``route``, ``screen`` sees each frame first and returns True for a copy it counted
        (redundant connections: :class:`~rxws._copies.Copies`), which is not decoded."""
        if owner is not None:
            self._owner = owner
        if route is not None:
            self._route = route
            self._screen = screen

    def ready(self) -> None:
        """The owner took the session into service: the host's queued frames go out."""
        if self._phase == "open":
            self._writer.ready()

    # Ending --------------------------------------------------------------------------------------
    def _link_closed(self) -> None:
        link = self._link
        code = link.close_code if link is not None else None
        reason = link.close_reason if link is not None else ""
        if self._phase == "closing":
            self._finish_close()
            return
        if self._phase == "opening":
            self._open_failed(ConnectionClosed(code, reason))
            return
        why = DisconnectReason.REMOTE_CLOSED
        if code == 1008:
            why = DisconnectReason.RATE_LIMITED
            self.budget.violation("close_1008")
        self._dropped(
            ConnectionClosed(code, reason), why, code, reason or f"closed by the venue with code {code}"
        )

    def _link_failed(self, error: Exception) -> None:
        if self._phase == "closing":
            self._finish_close()
            return
        if self._phase == "opening":
            self._open_failed(error)
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
        if self._phase != "open":
            return
        self._teardown()
        self._owner.session_dropped(self, error, why, code, detail)

    def untrusted(self, detail: str) -> None:
        """The client's state can no longer be trusted: close with 1011, reported as a drop."""
        link = self._link
        if link is None or self._phase != "open":
            return
        link.close(1011, "internal error")
        error = ConnectionClosed(1011, detail, by_peer=False)
        self._dropped(error, DisconnectReason.INTERNAL_ERROR, 1011, detail)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close: the close frame, a bounded wait for the venue's answer, then ``session_closed``."""
        if self._phase in ("closing", "ended"):
            return
        self._phase = "closing"
        self._opening.cancel()
        self._heartbeat.stop()
        self._writer.detach()
        link = self._link
        if link is None:
            self._finish_close()
            return
        link.close(code, reason).subscribe(on_error=lambda _e: self._finish_close())
        self._close_timer.disposable = self._ctx.after(self._config.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        link = self._link
        if self._phase == "closing" and link is not None:
            log.warning(
                "peer did not answer the close frame within %ss; aborting", self._config.close_timeout
            )
            link.abort()
            self._finish_close()

    def _finish_close(self) -> None:
        if self._phase == "ended":
            return
        had_link = self._link is not None
        self._teardown()
        self._owner.session_closed(self, had_link)

    def _teardown(self) -> None:
        self._phase = "ended"
        self._heartbeat.stop()
        self.budget.release_connection()
        self._link_sub.disposable = Disposable()
        self._opening.cancel()
        self._close_timer.disposable = Disposable()
        self._link = None
        self._writer.detach()
        for requested in self._requested.values():
            requested.clear()

    # Inbound: the hot path -----------------------------------------------------------------------
    def on_frame(self, frame: Frame) -> None:
        """Decode, classify and dispatch one inbound frame.

        Nothing raised here is lost: an exception goes to the owner's ``session_internal_error``
        (an ``InternalError`` event, a counter, a WARNING log); the frame is skipped and the next
        one is handled. The ``try`` costs nothing while nothing raises.
        """
        self.frames_in += 1
        ctx = self._ctx
        ctx.stats.frames_in += 1
        protocol = ctx.protocol
        try:
            screen = self._screen
            if screen is not None and screen(frame):  # a copy the merge counted (hand_over)
                if self._messages._observers:  # the same text decoded before: it decodes again
                    self._messages.on_next(self._decode(frame))
                return
            try:
                message = self._decode(frame)
            except DecodeError as exc:
                ctx.decode_failed(str(exc), frame)
                return
            except ValueError as exc:  # orjson's own error, when bound directly (fast_decoder)
                if not self._fast_decode:
                    raise  # a dialect's decode raised it: not a decoding failure but its bug
                ctx.decode_failed(decode_detail(exc), frame)
                return
            kind, key = protocol.classify(message)
            if ctx.instruments:  # the only cost without a sink: one truth test
                ctx.frame_seen(frame, key if kind is _DATA else None, message)
            if kind is _DATA:
                sink = self._route(key)
                if sink is not None:
                    sink(message)
                else:
                    self._inbound.session_unrouted(key, message)
            elif kind is _REPLY:
                if self._login_keys and self._login_reply(protocol.login_reply_key(message), message):
                    return  # a login reply keyed by its op (Bybit's ``auth`` carrying a req_id)
                self._inbound.session_reply(self, key, message)
            else:
                if self._login_keys and self._login_reply(protocol.login_reply_key(message), message):
                    return
                self.budget.check_rate_signal(message)
                reply = protocol.auto_reply(message)
                if reply is not None:
                    try:
                        self._writer.write(protocol.encode(reply), None, early=self._phase == "opening")
                    except RateLimitExceeded as exc:  # the outbound queue is full (already an event)
                        log.warning("%s: automatic reply not queued: %s", ctx.name, exc)
                self._inbound.session_control(self, kind, key, message)
            if self._messages._observers:
                self._messages.on_next(message)
        except Exception as exc:
            try:
                self._inbound.session_internal_error(self, exc, frame)
            except Exception:  # the report (or the 1011 close) failed too: the log is the last word
                log.exception("%s: handling an inbound failure failed", ctx.name)

    # Outbound ------------------------------------------------------------------------------------
    def write(self, frame: Frame, done: CommandResult[None] | None, request_id: Hashable = None) -> None:
        """Write ``frame`` (or queue it: see :meth:`SessionWriter.write`)."""
        self._writer.write(frame, done, request_id)

    def exchange(self, frame: Frame, key: Hashable, timeout: float) -> Observable[Any]:
        """Send a pre-built ``frame`` and wait for the reply the dialect correlates by ``key``.

        Usable by open steps (the frame passes ahead of the host's queued frames) and once
        serving. The result is the whole decoded reply; it errors with ``RequestTimeout`` after
        ``timeout``, and with ``NotConnected`` when the session has no open link.
        """
        result: CommandResult[Any] = CommandResult("exchange", repr(key))
        if self._link is None or self._phase not in ("opening", "open"):
            result.set_error(NotConnected(f"session {self.conn_id} has no open link"))
            return result
        if not isinstance(frame, str | bytes):  # a message (a dialect's login step): encoded here
            frame = self._ctx.protocol.encode(frame)
        self._requests.expect(key, _Pending("exchange", result, timeout))
        self._login_keys.add(key)
        result.subscribe(lambda _m: self._login_keys.discard(key), lambda _e: self._login_keys.discard(key))
        try:
            self._writer.write(frame, None, key, early=self._phase == "opening")
        except Exception as exc:
            self._requests.discard(key)
            result.set_error(exc)
        return result

    def _login_reply(self, key: Hashable, message: Any) -> bool:
        """A reply an exchange waits for that the dialect does not classify as a reply (OKX's
        ``login`` event, Bybit's ``auth`` op): it settles the exchange."""
        if key is None or key not in self._login_keys:
            return False
        self._login_keys.discard(key)
        self._inbound.session_reply(self, key, message)
        if self._messages._observers:
            self._messages.on_next(message)
        return True

    def take_unwritten(self) -> deque[Entry]:
        """Hand over the unwritten frames (kept across a reconnection)."""
        return self._writer.take_unwritten()

    def adopt_unwritten(self, entries: deque[Entry]) -> None:
        """Write a previous session's unwritten frames first, once serving."""
        self._writer.adopt(entries)
        if self._phase == "open":
            self._writer.flush()

    def fail_unwritten(self, error: Exception) -> None:
        """Fail every unwritten frame with ``error`` (one ``OutboundFailed``)."""
        self._writer.fail(error)

    def _drained(self) -> None:
        self._heartbeat.resume()

    # Venue-side subscriptions ----------------------------------------------------------------------
    def note_requests(self, kind: str, topics: Sequence[str], request_id: Hashable) -> None:
        """``topics`` were (un)subscribed (``kind``) by the request ``request_id`` on this link."""
        by_topic = self._requested[kind]
        for topic in topics:
            by_topic[topic] = request_id

    def take_request(self, kind: str, topic: str) -> Hashable | None:
        """The request that carried ``topic`` (acked now), forgotten."""
        return self._requested[kind].pop(topic, None)

    def settle_requests(self, kind: str, topics: Sequence[str]) -> None:
        """``topics``' (un)subscribe requests were settled."""
        by_topic = self._requested[kind]
        for topic in topics:
            by_topic.pop(topic, None)
