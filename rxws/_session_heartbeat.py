"""One connection's heartbeats: protocol-level pings with a deadline, and the venue's application-level ping.

Both run on the client's scheduler, so they are testable in virtual time, and both pass the rate
limiter like any other frame (Binance counts pings and pongs against its 5 messages per second).

* Protocol pings: every ``ping_interval`` the client pings; no pong within ``ping_timeout`` means
  the connection is half-open — ``HeartbeatMissed``, then ``Disconnected(HEARTBEAT_TIMEOUT)``.
  A half-open connection is therefore detected within ``ping_interval + ping_timeout``.
* Application heartbeats, for venues that want a text ping (OKX ``ping``, Bybit ``{"op":"ping"}``):
  every ``protocol.heartbeat_interval`` the client sends ``protocol.heartbeat_message()``; if
  nothing at all arrives during the next interval, the connection is declared dead the same way.
* Pongs the transport sends by itself to the venue's pings are charged to the limiter afterwards.
* Back-pressure: while the link is above its write high-water mark a due ping waits for the drain
  (its pong deadline runs from when it was due, so a venue that stops reading for longer than
  ``ping_timeout`` is declared dead); application pings wait in the outbound queue like any frame.
"""

from __future__ import annotations

from collections.abc import Callable

from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import ClientContext, log
from rxws._session_budget import ConnectionBudget
from rxws._session_writer import SessionWriter
from rxws.events import HeartbeatMissed
from rxws.exceptions import HeartbeatTimeout, NotConnected, RateLimitExceeded
from rxws.transport.base import Link

__all__: list[str] = []


class SessionHeartbeat:
    """Keeps one link honest: pings with deadlines, application heartbeats, pong accounting.

    ``on_dead`` is called with a :class:`~rxws.exceptions.HeartbeatTimeout` when the link stopped
    answering (the link is aborted right after); ``frames_in`` counts the frames the link brought.
    """

    def __init__(
        self,
        ctx: ClientContext,
        budget: ConnectionBudget,
        writer: SessionWriter,
        *,
        ping_interval: float | None,
        ping_timeout: float | None,
        frames_in: Callable[[], int],
        on_dead: Callable[[Exception], None],
    ) -> None:
        self._ctx = ctx
        self._budget = budget
        self._writer = writer
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._frames_in = frames_in
        self._on_dead = on_dead
        self._link: Link | None = None
        self._hb_timer = SerialDisposable()
        self._hb_deadline = SerialDisposable()
        self._app_timer = SerialDisposable()
        self._token = 0
        self._app_frames = 0
        self._app_pinged = False
        self.app_ping_at: float | None = None  # when the last application heartbeat was written
        self._ping_waiting = False  # a ping is due but the link is above its mark: it goes at the drain
        self._pong_due = False  # a pong deadline runs: later pings keep it (the earliest decides)

    def start(self, link: Link) -> None:
        """Start pinging ``link``."""
        ctx = self._ctx
        self._link = link
        link.on_control_sent = self._control_sent
        self._ping_waiting = False
        self._pong_due = False
        self._token += 1
        if self._ping_interval is not None:
            self._hb_timer.disposable = ctx.after(self._ping_interval, self._ping_tick)
        interval = ctx.protocol.heartbeat_interval
        if interval is not None and interval > 0:
            self._app_frames = self._frames_in()
            self._app_pinged = False
            self._app_timer.disposable = ctx.after(interval, self._app_tick)

    def stop(self) -> None:
        """Stop every timer; nothing more is sent or declared."""
        self._link = None
        self._ping_waiting = False
        self._pong_due = False
        self._token += 1
        self._hb_timer.disposable = Disposable()
        self._hb_deadline.disposable = Disposable()
        self._app_timer.disposable = Disposable()

    # Protocol-level pings -------------------------------------------------------------------
    def _ping_tick(self) -> None:
        link = self._link
        if link is None or self._ping_interval is None:
            return
        ctx = self._ctx
        token = self._token
        if self._writer.blocked:  # above its mark: the ping waits for the drain, its deadline runs
            if not self._ping_waiting:
                self._ping_waiting = True
                self._arm_pong_deadline(token)
            return
        decision = self._budget.acquire_message()
        if not decision.allowed:  # the ping waits its turn like any frame
            self._hb_timer.disposable = ctx.after(decision.retry_after, self._ping_tick)
            return
        try:
            written = link.ping(lambda: self._pong(token))
        except NotConnected:
            return
        ctx.stats.frames_out += 1
        if not written:
            self._writer.mark_blocked()
        if not self._ping_waiting:  # a ping that waited keeps the deadline it got when it was due
            self._arm_pong_deadline(token)
        self._ping_waiting = False
        self._hb_timer.disposable = ctx.after(self._ping_interval, self._ping_tick)

    def _arm_pong_deadline(self, token: int) -> None:
        """Start the pong deadline, unless an earlier unanswered ping's deadline is running: a new
        ping must not push back the deadline of one already overdue (``ping_interval`` shorter than
        ``ping_timeout`` would otherwise never detect a half-open link)."""
        if self._ping_timeout is not None and not self._pong_due:
            self._pong_due = True
            timeout = self._ping_timeout
            self._hb_deadline.disposable = self._ctx.after(timeout, lambda: self._missed(token, timeout))

    def resume(self) -> None:
        """The link drained: send the ping that waited for it."""
        if self._ping_waiting:
            self._ping_tick()

    def _pong(self, token: int) -> None:
        if token == self._token:
            self._pong_due = False
            self._hb_deadline.disposable = Disposable()

    # Application-level heartbeats --------------------------------------------------------------
    def _app_tick(self) -> None:
        ctx = self._ctx
        protocol = ctx.protocol
        interval = protocol.heartbeat_interval
        if self._link is None or not interval:
            return
        frames = self._frames_in()
        if self._app_pinged and frames == self._app_frames:
            self._missed(self._token, interval)
            return
        message = protocol.heartbeat_message()
        if message is not None:
            try:
                self._writer.write(protocol.encode(message), None)
                self._app_pinged = True
                self.app_ping_at = ctx.now()  # a pong stating the venue's time is read against it
            except RateLimitExceeded as exc:  # the outbound queue is full (already an event)
                log.warning("%s: heartbeat not queued: %s", ctx.name, exc)
        self._app_frames = frames
        self._app_timer.disposable = ctx.after(interval, self._app_tick)

    # Outcome ---------------------------------------------------------------------------------
    def _missed(self, token: int, silent_for: float) -> None:
        link = self._link
        if token != self._token or link is None:
            return
        ctx = self._ctx
        log.warning("%s: no heartbeat answer within %gs; dropping the connection", ctx.name, silent_for)
        ctx.emit(HeartbeatMissed(at=ctx.now(), silent_for=silent_for))
        self._on_dead(HeartbeatTimeout(f"no answer to the heartbeat within {silent_for:g}s (half-open)"))
        link.abort()

    def _control_sent(self, kind: str) -> None:
        """The transport answered the venue's ping by itself: charge the frame to the budget."""
        self._ctx.stats.frames_out += 1
        self._budget.charge_message()
