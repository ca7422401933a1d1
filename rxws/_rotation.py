"""Make-before-break rotation: a new connection takes over from the serving one, losing nothing.

:class:`Rotation` opens a second :class:`~rxws._session.Session` (through the connect limiter,
with the same open steps, e.g. a login), subscribes it to the topics the serving one carries,
and routes both sessions' data through one :class:`~rxws.core.merge.TopicMerge` per topic, ahead
of the router (and so of the gap tracker): every message reaches the host once. A topic
*switches* once the new session caught up with the merged stream; from then on the old
session's copies of it are discarded, and once the new one is at the merged mark it takes the
topic alone:

- sequenced: the new session's messages that arrive before the old one delivered every number
  before the new one's first are held (:class:`~rxws._join_gate.JoinGate`, bounded) and merged
  as soon as it has, on whichever session's message moves the mark (so a stream whose last
  messages come from the old session completes the rotation too);
- keyed: the new session received a copy of a message the old one delivered, or (the new one
  ahead) the old one received a copy of one the new one delivered;
- neither: at the new session's first message after ``overlap`` seconds (reported as
  unsequenced: a duplicate or a loss at that instant cannot be ruled out);
- a topic quiet on both sessions for the whole overlap switches at its end, unless it has
  sequence numbers delivered before (an old session lagging more than the overlap may still
  carry numbers only it has): that one waits for the rules above, or the deadline.
  Limit: a keyed (or plain) topic quiet on both sessions through the overlap while the old
  session lags more than the overlap loses the old one's copies still in flight (they come
  after the switch); a sequenced one would not (above).

Once every topic switched, the new session serves, the old one's unwritten frames move to it,
and the old one closes with 1000 (``Rotated``).

**Every rotation ends within ``timeout`` seconds of its start** (the client passes
``open_timeout + subscribe_timeout + rotation_overlap``), with ``Rotated`` or
``RotationFailed``. At that deadline, topics on which the new session received nothing at all
(e.g. a sparse topic whose only message came on the old session before the new one subscribed:
a copy in flight on the new one would be ``timeout`` seconds late) and topics without sequence
or key switch, and the rotation completes if no other topic is left; otherwise it fails,
leaving the old session serving (e.g. the new one could not open or subscribe, or the old one
never delivered the numbers before the new one's first). It is abandoned (``RotationFailed``
too) if the old session drops or the client closes meanwhile. (Un)subscriptions the host asks
for during a rotation wait and go out on whichever session serves after it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import ClientContext, log
from rxws._command import CommandResult
from rxws._join_gate import HELD_LIMIT, JoinGate
from rxws._lifecycle import Lifecycle
from rxws._requests import Requests
from rxws._session import Session, SessionOwner
from rxws._watching import Topics
from rxws.core.merge import TopicMerge
from rxws.events import DisconnectReason, Rotated, RotationFailed, RotationStarted, VenueNotice
from rxws.exceptions import ConnectionLost, NotConnected, VenueError
from rxws.protocols.base import MessageKind, Seq, make_seq
from rxws.reconnect import ReconnectPolicy

__all__: list[str] = []

_OLD, _NEW = 0, 1
Route = Callable[[Hashable], Callable[[Any], None] | None]


def _discard(_message: Any) -> None:
    """A switched topic's copy on the old session: the new one delivers it."""


class Rotation:
    """Rotates the serving connection (see the module docstring); one rotation at a time.

    Args:
        ctx: the client's shared context.
        lifecycle: gives the serving session, connection ids, and takes the new session.
        topics: the router and the topics to move.
        requests: where the new session's subscribe requests wait.
        new_session: builds a session reporting to the given owner.
        policy: the host's reconnect policy (``rotate_on_notice``), or None.
        overlap: seconds both sessions deliver before unsequenced topics switch.
        timeout: seconds the new session has to open, subscribe and catch up.
        subscribe_timeout: seconds a subscribe waits for its ack.
        max_age: rotate each connection after this many seconds of service (None: never).
    """

    def __init__(
        self,
        ctx: ClientContext,
        *,
        lifecycle: Lifecycle,
        topics: Topics,
        requests: Requests,
        new_session: Callable[[str, SessionOwner], Session],
        policy: ReconnectPolicy | None,
        overlap: float,
        timeout: float,
        subscribe_timeout: float,
        max_age: float | None,
    ) -> None:
        self._ctx = ctx
        self._lifecycle = lifecycle
        self._topics = topics
        self._requests = requests
        self._new_session = new_session
        self._policy = policy
        self._overlap = overlap
        self._timeout = timeout
        self._subscribe_timeout = subscribe_timeout
        self._max_age = max_age
        self._age_timer = SerialDisposable()
        self._timer = SerialDisposable()
        self._deadline = SerialDisposable()
        self._reset()

    def _reset(self) -> None:
        self._old: Session | None = None
        self._new: Session | None = None
        self._reason = ""
        self._waiters: list[CommandResult[None]] = []
        self._merges: dict[str, TopicMerge] = {}
        self._seen: dict[str, set[int]] = {}  # topic -> the sessions that received it
        self._plain: set[str] = set()  # topics whose messages have neither sequence nor key
        self._new_keys: dict[str, set[Hashable]] = {}  # keys the new session delivered, unswitched
        self._switched: dict[str, bool] = {}  # topic -> switched without sequence or key
        self._aligned: set[str] = set()  # switched, and the new session is at the merged mark
        self._unacked: set[str] = set()
        self._batches: dict[Hashable, list[str]] = {}
        self._subscribed_at: float | None = None
        self._overlap_over = False
        self._gate = JoinGate()

    @property
    def active(self) -> bool:
        """A rotation is running."""
        return self._new is not None

    @property
    def session(self) -> Session | None:
        """The connection a running rotation opened (None when none runs)."""
        return self._new

    # Triggers ------------------------------------------------------------------------------------
    def serving(self, session: Session) -> None:
        """``session`` started serving: rotate it when it reaches ``max_age``."""
        if self._max_age is None:
            return
        self._age_timer.disposable = self._ctx.after(self._max_age, lambda: self._aged(session))

    def _aged(self, session: Session) -> None:
        if self._lifecycle.serving() is session:
            self.start("max_age", None)

    def notice(self, session: Session, notice: VenueNotice) -> None:
        """A venue notice on ``session``: rotate when it says the connection will end and the
        host's policy says so."""
        policy = self._policy
        if policy is None or notice.notice not in ("shutdown", "maintenance"):
            return
        if self._lifecycle.serving() is not session:
            return
        decide = policy.rotate_on_notice
        if decide is True or (callable(decide) and decide(notice)):
            self.start("notice", None)

    def start(self, reason: str, result: CommandResult[None] | None) -> None:
        """Start a rotation (or join the running one)."""
        if self._new is not None:
            if result is not None:
                self._waiters.append(result)
            return
        old = self._lifecycle.serving()
        if old is None:
            error = NotConnected(f"not connected (state {self._lifecycle.state}): nothing to rotate")
            if result is None:
                log.info("%s: %s rotation skipped: %s", self._ctx.name, reason, error)
                return
            result.set_error(error)
            return
        ctx = self._ctx
        self._reason = reason
        if result is not None:
            self._waiters.append(result)
        self._old = old
        new = self._new_session(self._lifecycle.next_conn_id(), self)
        self._new = new
        self._topics.pause(True)
        old.hand_over(route=self._route_for(_OLD))
        ctx.emit(RotationStarted(at=ctx.now(), reason=reason, conn_id=new.conn_id))
        self._deadline.disposable = ctx.after(self._timeout, self._too_slow)
        new.open()

    # The new session (SessionOwner) --------------------------------------------------------------
    def session_opened(self, session: Session) -> None:
        """The new session opened: subscribe it to every topic the old one carries."""
        if session is not self._new:
            session.close()
            return
        session.hand_over(route=self._route_for(_NEW))
        session.ready()
        topics = self._topics.rotating()
        protocol = self._ctx.protocol
        for topic in topics:
            merge = self._merges[topic] = TopicMerge()
            merge.set_primary(_OLD)
            last = self._topics.last_seq(topic)
            if last is not None:  # what the old session delivered so far marks the merge
                merge.offer(_OLD, make_seq(last, last))
            merge.add_source(_NEW)
            self._gate.arm(topic, _NEW)
            self._seen[topic] = set()
        self._unacked = set(topics)
        if not topics:
            self._subscribed()
            return
        for batch in protocol.batches(topics):
            decision = session.budget.acquire_subscribe(len(batch))
            if not decision.allowed:
                self._fail(VenueError(None, f"the subscription budget refused {len(batch)} topics"))
                return
            request_id = self._requests.next_id()
            frame = protocol.encode(protocol.subscribe_message(batch, request_id))
            session.note_requests("subscribe", batch, request_id)
            self._batches[request_id] = batch
            session.exchange(frame, request_id, self._subscribe_timeout).subscribe(
                on_next=lambda reply, b=batch: self._acked(b, protocol.reply_error(reply)),  # type: ignore[misc]
                on_error=self._fail,
            )

    def session_open_failed(self, session: Session, error: Exception, reason: DisconnectReason) -> None:
        """The new session could not open: the old one keeps serving."""
        if session is self._new:
            self._fail(error)

    def session_dropped(
        self, session: Session, error: Exception, why: DisconnectReason, code: int | None, detail: str
    ) -> None:
        """The new session dropped before it took over: the old one keeps serving."""
        if session is self._new:
            self._fail(error)

    def session_closed(self, session: Session, had_link: bool) -> None:
        """A session this rotation closed finished closing: nothing follows."""

    def control(self, session: Session, kind: MessageKind, message: Any) -> bool:
        """Acks by topic (OKX) on the new session; True when the message was one."""
        if session is not self._new or kind is not MessageKind.ACK:
            return False
        protocol = self._ctx.protocol
        topics = protocol.ack_topics(message)
        for topic in topics:
            request_id = session.take_request("subscribe", topic)
            batch = self._batches.get(request_id) if request_id is not None else None
            if batch is not None and topic in batch:
                batch.remove(topic)
                if not batch:
                    del self._batches[request_id]
                    self._requests.discard(request_id)
        self._acked(topics, protocol.reply_error(message))
        return True

    def _acked(self, topics: Sequence[str], error: VenueError | None) -> None:
        if self._new is None:
            return
        if error is not None:
            self._fail(error)
            return
        self._unacked.difference_update(topics)
        if not self._unacked and self._subscribed_at is None:
            self._subscribed()

    def _subscribed(self) -> None:
        self._subscribed_at = self._ctx.now()
        self._timer.disposable = self._ctx.after(self._overlap, self._overlap_ended)
        self._maybe_done()

    def _overlap_ended(self) -> None:
        self._overlap_over = True
        for topic, seen in self._seen.items():
            if not seen and topic not in self._switched and self._merges[topic].mark is None:
                self._switched[topic] = False  # quiet on both sessions all along: nothing to lose
                self._aligned.add(topic)
        self._maybe_done()

    # Both sessions' data, merged --------------------------------------------------------------------
    def _route_for(self, source: int) -> Route:
        route = self._topics.route
        merges = self._merges

        def routed(key: Hashable) -> Callable[[Any], None] | None:
            sink = route(key)
            if sink is None:
                return None
            merge = merges.get(key) if isinstance(key, str) else None
            if merge is None:
                return sink if source == _OLD else _discard
            return lambda message: self._offer(source, key, merge, sink, message)  # type: ignore[arg-type]

        return routed

    def _offer(
        self, source: int, topic: str, merge: TopicMerge, sink: Callable[[Any], None], message: Any
    ) -> None:
        switched = self._switched
        if source == _OLD and topic in switched:
            return  # the new session carries this topic now
        protocol = self._ctx.protocol
        seq = protocol.sequence(message)
        self._seen[topic].add(source)
        gate = self._gate
        if source == _NEW and gate.held:
            if seq is None:
                gate.unsequenced(topic, _NEW)
            elif gate.holds(topic, _NEW):  # the old one may still deliver numbers before it
                gate.hold(topic, _NEW, seq, message)
                self._release(topic, merge, sink)
                return
        key = protocol.dedupe_key(message) if seq is None else None
        if seq is None and key is None:
            self._plain.add(topic)
        if source == _NEW and seq is None and key is None and self._overlap_over and topic not in switched:
            merge.set_primary(_NEW)
            switched[topic] = True
        delivered = merge.offer(source, seq, key)
        if delivered:
            sink(message)
        if source == _OLD:
            if delivered and gate.held:  # the mark moved: the new one's held messages may be due
                self._release(topic, merge, sink)
            elif key is not None and not delivered and key in self._new_keys.get(topic, ()):
                self._old_reached_new(topic, merge)
            return
        self._took(topic, merge, seq, key, delivered)

    def _release(self, topic: str, merge: TopicMerge, sink: Callable[[Any], None]) -> None:
        """Merge the new session's held messages on ``topic`` once the mark reached the first."""
        held = self._gate.due(topic, _NEW, merge.mark)
        if held is None:
            return
        delivered = False
        for seq, message in held:  # in order: copies of what the old one delivered, then the rest
            delivered = merge.offer(_NEW, seq)
            if delivered:
                sink(message)
        self._took(topic, merge, held[-1][0], None, delivered)

    def _took(self, topic: str, merge: TopicMerge, seq: Seq | None, key: Hashable, delivered: bool) -> None:
        """The new session's latest message on ``topic`` was merged: switch, take over when due."""
        if topic in self._aligned:
            return
        switched = self._switched
        # sequenced: merged means caught up (its numbers continue the delivered ones); keyed: only
        # a copy of what the old one delivered proves the old one has nothing the new one lacks
        if topic not in switched and (seq is not None or (key is not None and not delivered)):
            switched[topic] = False
            self._new_keys.pop(topic, None)
        elif key is not None and topic not in switched:  # ahead of the old one: remember (bounded)
            keys = self._new_keys.setdefault(topic, set())
            if len(keys) < HELD_LIMIT:
                keys.add(key)
        # it takes over alone once at the mark (a switch behind the mark goes on through the merge,
        # its copies of what the old one delivered dropped, until it reaches the mark)
        if topic in switched and ((seq is None and key is None) or merge.caught_up(_NEW)):
            self._aligned.add(topic)
            self._maybe_done()

    def _old_reached_new(self, topic: str, merge: TopicMerge) -> None:
        """The old session received a copy of a keyed message the new one delivered: it has
        delivered everything it had before the new one's stream (in order), so the topic
        switches (and the new one, ahead, takes over)."""
        del self._new_keys[topic]
        self._switched[topic] = False
        if merge.caught_up(_NEW):
            self._aligned.add(topic)
            self._maybe_done()

    # Ending ----------------------------------------------------------------------------------------
    def _maybe_done(self) -> None:
        if self._subscribed_at is None or len(self._aligned) < len(self._merges):
            return
        old, new = self._old, self._new
        assert old is not None and new is not None
        ctx = self._ctx
        now = ctx.now()
        switched, waiters, started = dict(self._switched), self._waiters, self._subscribed_at
        self._timer.disposable = Disposable()
        self._deadline.disposable = Disposable()
        self._reset()
        old.hand_over(route=lambda _key: _discard)
        new.hand_over(owner=self._lifecycle, route=self._topics.route)
        self._lifecycle.promote(new)
        new.adopt_unwritten(old.take_unwritten())
        self._topics.pause(False)
        old.close(1000, "rotated")
        ctx.emit(
            Rotated(
                at=now,
                overlap=now - started,
                switched=tuple(sorted(switched)),
                unsequenced=tuple(sorted(t for t, plain in switched.items() if plain)),
                conn_id=new.conn_id,
            )
        )
        for waiter in waiters:
            waiter.set_result(None)
        self.serving(new)

    def _too_slow(self) -> None:
        missing = sorted(set(self._merges) - self._aligned)
        blocked = [
            t for t in missing if t in self._switched or (_NEW in self._seen[t] and t not in self._plain)
        ]
        if not blocked and self._subscribed_at is not None:  # the rest switch now (module docstring)
            for topic in missing:
                self._switched[topic] = topic in self._plain
                self._aligned.add(topic)
            self._maybe_done()
            return
        missing = blocked or missing
        self._fail(
            ConnectionLost(f"the new connection did not take over within {self._timeout:g}s: {missing}")
        )

    def _fail(self, error: Exception) -> None:
        """The new session cannot take over: it closes, the old one goes on serving alone."""
        old, new = self._old, self._new
        if new is None:
            return
        ctx = self._ctx
        reason, waiters = self._reason, self._waiters
        self._timer.disposable = Disposable()
        self._deadline.disposable = Disposable()
        self._reset()
        new.close(1000, "rotation failed")
        if old is not None:
            old.hand_over(route=self._topics.route)
        self._topics.pause(False)
        log.warning("%s: rotation failed, the old connection keeps serving: %s", ctx.name, error)
        ctx.emit(RotationFailed(at=ctx.now(), reason=reason, detail=str(error)[:200]))
        for waiter in waiters:
            waiter.set_error(error)

    def abandon(self, why: str) -> None:
        """The old session dropped or the client closes: the rotation stops (the new session closes)."""
        self._age_timer.disposable = Disposable()
        if self._new is not None:
            self._fail(ConnectionLost(f"rotation abandoned: {why}"))
