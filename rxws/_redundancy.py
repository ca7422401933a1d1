"""Redundant connections: a twin session subscribed to the same topics, merged message by message.

With ``WebSocketClient(..., redundancy=2)``, :class:`Redundancy` keeps a second
:class:`~rxws._session.Session` (the *twin*) beside the one the lifecycle serves on (the
*primary*). The twin subscribes every wanted topic (and follows each later subscribe and
unsubscribe); both sessions' data pass one :class:`~rxws.core.merge.TopicMerge` per topic ahead of
the router and the gap tracker, so the host sees each message once (by sequence number, else by
the dialect's dedupe key; a channel with neither is taken from one session only, the primary while
it serves). A session that joins a topic late (the twin, or the primary back after a drop) is
held back until the merge reached its first number (:class:`~rxws._join_gate.JoinGate`), so the
other's earlier numbers are not superseded. When one session drops, the other carries on: the tracker opens a disconnect window
only when no session is left serving, so ``GapDetected`` reports only what both missed.

The twin counts against the connect and subscription budgets like any connection. A twin that
drops (or cannot open) is re-established only through the host's policy, as the primary is: each
attempt is a ``ReconnectProposed`` its ``approve`` sees (without a policy, it is not replaced).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxws._client_base import ClientContext, log
from rxws._command import CommandResult
from rxws._copies import Copies
from rxws._join_gate import JoinGate
from rxws._lifecycle import Lifecycle
from rxws._requests import Requests
from rxws._session import Session, SessionOwner
from rxws._watching import Topics
from rxws.core.merge import TopicMerge
from rxws.events import Disconnected, DisconnectReason
from rxws.exceptions import ConnectionLost
from rxws.protocols.base import counter_field, make_seq
from rxws.reconnect import ReconnectPolicy

__all__: list[str] = []

_PRIMARY, _TWIN = 0, 1
Sink = Callable[[Any], None]


class Redundancy:
    """Keeps the twin session and merges both sessions' data (see the module docstring)."""

    def __init__(
        self,
        ctx: ClientContext,
        *,
        lifecycle: Lifecycle,
        topics: Topics,
        requests: Requests,
        new_session: Callable[[str, SessionOwner], Session],
        policy: ReconnectPolicy | None,
        subscribe_timeout: float,
    ) -> None:
        self._ctx = ctx
        self._lifecycle = lifecycle
        self._topics = topics
        self._requests = requests
        self._new_session = new_session
        self._policy = policy
        self._subscribe_timeout = subscribe_timeout
        self._merges: dict[str, TopicMerge] = {}
        self._sinks: tuple[dict[Hashable, tuple[Sink, Sink]], dict[Hashable, tuple[Sink, Sink]]] = ({}, {})
        self._twin: Session | None = None
        self._twin_topics: set[str] = set()
        self._attempt: abc.ObserverBase[Session] | None = None
        self._retries = SerialDisposable()
        self._stopped = False
        self._gate = JoinGate()
        # The copies of frames one session delivered, taken without decoding on the other.
        self._copies = Copies(topics.route, self._gate)
        self._closed_done: tuple[Session, Callable[[], None]] | None = None

    # What the client asks --------------------------------------------------------------------
    @property
    def twin(self) -> Session | None:
        """The twin connection (opening or serving), or None."""
        return self._twin

    def covered(self) -> bool:
        """Whether the twin serves (so a primary drop loses no data)."""
        twin = self._twin
        return twin is not None and twin.serving

    def serving(self, primary: Session) -> None:
        """The lifecycle's session serves: route it through the merge; open the twin if none."""
        primary.hand_over(route=self._route_for(_PRIMARY), screen=self._copies.screen(_PRIMARY))
        if self.covered():  # back beside a serving twin: held back until the merge reaches it
            for topic in self._twin_topics:
                self._gate.arm(topic, _PRIMARY)
        if self._twin is None and not self._stopped:
            self._start_twin()

    def primary_lost(self) -> None:
        """The primary dropped: unsequenced channels come from the twin from now on."""
        for merge in self._merges.values():
            merge.remove_source(_PRIMARY)
        self._gate.release(_PRIMARY)
        self._merge_held(_TWIN)  # the twin is alone: nothing to wait for

    def mirror(self, kind: str, topics: Sequence[str]) -> None:
        """The primary (un)subscribed ``topics``: the twin follows."""
        self._copies.clear()  # a dialect may route by what is subscribed: copies are judged anew
        twin = self._twin
        if twin is None or not twin.serving:
            return
        if kind == "subscribe":
            self._subscribe(twin, [t for t in topics if t not in self._twin_topics])
        else:
            self._unsubscribe(twin, [t for t in topics if t in self._twin_topics])

    def stop(self, why: str, done: Callable[[], None] = lambda: None) -> None:
        """The client closes: the twin closes too (``done`` once it has) and is not replaced."""
        if self._stopped:
            done()
            return
        self._stopped = True
        self._retries.disposable = Disposable()
        twin, self._twin = self._twin, None
        log.info("%s: redundant connection stopped: %s", self._ctx.name, why)
        if twin is None or twin.ended:
            done()
            return
        self._closed_done = (twin, done)
        twin.close(1000, "")

    def close_with(
        self, close_primary: Callable[[CommandResult[None]], None], result: CommandResult[None]
    ) -> None:
        """Close the twin and (``close_primary``) the primary; ``result`` completes once both closed."""
        remaining = [2]

        def closed(_: Any = None) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                result.set_result(None)

        primary: CommandResult[None] = CommandResult("close")
        primary.subscribe(on_next=closed, on_error=result.set_error)
        self.stop("the client is closing", closed)
        close_primary(primary)

    # The twin's attempts, retried through the host's policy -----------------------------------------
    def _start_twin(self) -> None:
        source: Observable[Session] = Observable(self._subscribe_attempt)
        policy = self._policy
        if policy is not None:
            source = source.pipe(
                policy.retrying(
                    wanted=lambda: not self._stopped,
                    on_proposal=self._ctx.emit,
                    on_denied=self._ctx.emit,
                    scheduler=self._ctx.sched,
                )
            )
        self._retries.disposable = source.subscribe(on_error=self._given_up, scheduler=self._ctx.sched)

    def _subscribe_attempt(
        self, observer: abc.ObserverBase[Session], _: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self._attempt = observer
        twin = self._new_session(self._lifecycle.next_conn_id(), self)
        self._twin = twin
        twin.open()
        return Disposable()

    def _given_up(self, error: Exception) -> None:
        log.info("%s: the redundant connection is not replaced: %s", self._ctx.name, error)
        self._twin = None

    def _ended(self, session: Session, error: Exception, reason: DisconnectReason, code: int | None) -> None:
        if session is not self._twin:
            return
        ctx = self._ctx
        for merge in self._merges.values():
            merge.remove_source(_TWIN)
        self._twin_topics.clear()
        self._gate.release(_TWIN)
        self._merge_held(_PRIMARY)  # the primary is alone
        if self._lifecycle.serving() is None:
            self._topics.data_lost(ctx.now())  # neither session serves: a window both miss
        detail = f"redundant connection {session.conn_id}: {error}"
        ctx.emit(Disconnected(at=ctx.now(), reason=reason, code=code, detail=detail[:200]))
        observer, self._attempt = self._attempt, None
        if observer is not None:
            observer.on_error(error)

    # SessionOwner (the twin) ---------------------------------------------------------------------
    def session_opened(self, session: Session) -> None:
        """The twin opened: route it through the merge and subscribe every wanted topic."""
        if session is not self._twin or self._stopped:
            session.close()
            return
        session.hand_over(route=self._route_for(_TWIN), screen=self._copies.screen(_TWIN))
        session.ready()
        self._subscribe(session, self._topics.registry.wanted())

    def session_open_failed(self, session: Session, error: Exception, reason: DisconnectReason) -> None:
        """The twin could not open."""
        self._ended(session, error, reason, None)

    def session_dropped(
        self, session: Session, error: Exception, why: DisconnectReason, code: int | None, detail: str
    ) -> None:
        """The twin dropped: the primary carries on alone until the host approves a new twin."""
        self._ended(session, error, why, code)

    def session_closed(self, session: Session, had_link: bool) -> None:
        """The twin closed at the client's close: the close may complete."""
        pending = self._closed_done
        if pending is not None and pending[0] is session:
            self._closed_done = None
            pending[1]()

    # The twin's subscriptions (acked apart from the registry, which follows the primary) ------------
    def _subscribe(self, twin: Session, topics: Sequence[str]) -> None:
        protocol = self._ctx.protocol
        self._copies.clear()
        for batch in protocol.batches(list(topics)) if topics else ():
            if not twin.budget.acquire_subscribe(len(batch)).allowed:
                log.warning("%s: the subscription budget refused the twin %s", self._ctx.name, batch)
                continue
            self._twin_topics.update(batch)
            primary = self._lifecycle.serving()
            for topic in batch:
                merge = self._merge(topic)
                merge.add_source(_TWIN)
                if primary is not None:
                    self._gate.arm(topic, _TWIN)
            self._exchange(twin, "subscribe", batch, protocol.subscribe_message)

    def _unsubscribe(self, twin: Session, topics: Sequence[str]) -> None:
        protocol = self._ctx.protocol
        self._copies.clear()
        for batch in protocol.batches(list(topics)) if topics else ():
            self._twin_topics.difference_update(batch)
            twin.budget.release_subscriptions(len(batch))
            self._exchange(twin, "unsubscribe", batch, protocol.unsubscribe_message)

    def _exchange(
        self, twin: Session, kind: str, batch: list[str], build: Callable[[list[str], Any], Any]
    ) -> None:
        request_id = self._requests.next_id()
        frame = self._ctx.protocol.encode(build(batch, request_id))
        twin.note_requests(kind, batch, request_id)

        def settled(reply: Any) -> None:
            twin.settle_requests(kind, batch)
            error = self._ctx.protocol.reply_error(reply)
            if error is not None:
                self._refused(twin, kind, batch, error)

        twin.exchange(frame, request_id, self._subscribe_timeout).subscribe(
            on_next=settled, on_error=lambda exc: self._refused(twin, kind, batch, exc)
        )

    def _refused(self, twin: Session, kind: str, batch: list[str], error: Exception) -> None:
        if isinstance(error, ConnectionLost):
            return  # the twin dropped: reported as such
        log.warning("%s: the twin's %s of %s failed: %s", self._ctx.name, kind, batch, error)
        if kind == "subscribe":  # the primary still carries these topics
            self._twin_topics.difference_update(batch)
            twin.budget.release_subscriptions(len(batch))

    # Both sessions' data, merged ----------------------------------------------------------------------
    def _merge(self, topic: str) -> TopicMerge:
        merge = self._merges.get(topic)
        if merge is None:
            merge = self._merges[topic] = TopicMerge()
        return merge

    def _release(self, topic: str, source: int, merge: TopicMerge, sink: Sink) -> None:
        """Merge ``source``'s held messages on ``topic`` once the mark reached the first of them."""
        due = self._gate.due(topic, source, merge.mark)
        for seq, message in due or ():
            if merge.offer(source, seq):
                sink(message)

    def _merge_held(self, source: int) -> None:
        """``source`` is alone: merge what it held back (what the other one did not deliver)."""
        for topic, due in self._gate.release(source):
            sink = self._topics.route(topic)
            merge = self._merges.get(topic)
            if sink is None or merge is None:
                continue  # nobody watches the topic any more
            for seq, message in due:
                if merge.offer(source, seq):
                    sink(message)

    def _route_for(self, source: int) -> Callable[[Hashable], Sink | None]:
        route = self._topics.route
        cache = self._sinks[source]
        protocol = self._ctx.protocol
        sequence, dedupe_key = protocol.sequence, protocol.dedupe_key
        field = counter_field(protocol)
        gate = self._gate
        held = gate.held
        remember = self._copies.remember

        def routed(key: Hashable) -> Sink | None:
            sink = route(key)
            if sink is None:
                return None
            cached = cache.get(key)
            if cached is not None and cached[0] is sink:
                return cached[1]
            topic = key if isinstance(key, str) else str(key)
            merge = self._merge(topic)
            offer, offer_number = merge.offer, merge.offer_number

            def merged(message: Any) -> None:
                if field is None:
                    seq = sequence(message)
                else:  # counter_field's contract: sequence() is Seq(n, n) for an int n there, else None
                    number = message.get(field) if type(message) is dict else None
                    if type(number) is int and not held:
                        # The hot path (no late joiner held back): the path below for Seq(n, n),
                        # judged by the merge without building the Seq, remembered as n.
                        if offer_number(source, number):
                            remember(source, key, topic, merge, number, None)
                            sink(message)
                            if held:  # the host's observer subscribed meanwhile: as below
                                self._release(topic, _TWIN - source, merge, sink)
                        return
                    seq = make_seq(number, number) if type(number) is int else None
                if held and (topic, source) in held:
                    if seq is not None:  # a late joiner: held until the merge reaches it
                        gate.hold(topic, source, seq, message)
                        self._release(topic, source, merge, sink)
                        return
                    gate.unsequenced(topic, source)
                dedupe = None if seq is not None else dedupe_key(message)
                if offer(source, seq, dedupe):
                    remember(
                        source, key, topic, merge, seq, dedupe
                    )  # its copy on the other session: not decoded
                    sink(message)
                    if held:  # the mark moved: the other's held messages may be due
                        self._release(topic, _TWIN - source, merge, sink)

            cache[key] = (sink, merged)
            return merged

        return routed
