"""Topics and subscriptions: ``watch()``, batching, acks, restore after reconnect, gaps.

:class:`Topics` owns what the host wants and outlives every connection: the registry
(:mod:`rxws.core.subscriptions`), the router, one subject per topic (a
:class:`~rxws._topics.TopicSubject`, which reports sequence gaps, when gaps are tracked), and the
sequence tracker. The registry decides what to (un)subscribe; :class:`Topics` batches one tick's
decisions into as few messages as the venue allows, settles them on the venue's acks, and
restores every desired topic after an approved reconnection. It also
carries out what :class:`rxws.subscriptions.SubscriptionManager` (``client.subscriptions``) asks:
pinning restored topics, and asking the venue for its own list of subscriptions. Subscriptions go
out on the serving :class:`~rxws._session.Session`, which remembers which of its requests carried
which topic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxws._client_base import ClientContext, _Pending, log
from rxws._command import CommandResult
from rxws._requests import Requests
from rxws._session import Session
from rxws._subject import FastSubject
from rxws._topics import MergedTopicObserver, TopicSubject, typed
from rxws.core.routing import Router
from rxws.core.sequence import SequenceTracker, TopicMark
from rxws.core.subscriptions import SubscriptionRegistry, TopicState
from rxws.events import (
    SubscriptionChanged,
    SubscriptionDrift,
    SubscriptionFailed,
    SubscriptionsRestored,
)
from rxws.exceptions import (
    AuthenticationError,
    DecodeError,
    NotConnected,
    RateLimitExceeded,
    SubscriptionLimitExceeded,
    UsageError,
    VenueError,
)
from rxws.ratelimit.base import Action
from rxws.ratelimit.events import Throttled

__all__: list[str] = []


class Topics:
    """Topic streams and the venue subscriptions behind them (see the module docstring).

    Args:
        ctx: the client's shared context.
        url: the venue's URL (for snapshots).
        requests: where subscribe requests wait for their acks.
        serving: the session subscriptions go out on now (None while not connected).
        closed: whether the client is closed.
        subscribe_timeout: seconds a subscribe or unsubscribe waits for its ack.
        request_timeout: the default deadline of ``verify()``.
        detect_gaps: track each topic's sequence numbers.
        covered: whether another session still delivers the topics when the serving one drops
            (a redundant twin): then no disconnect window opens.
        mirror: told of every (un)subscribe batch sent, for a redundant twin to follow.
    """

    def __init__(
        self,
        ctx: ClientContext,
        url: str,
        requests: Requests,
        *,
        serving: Callable[[], Session | None],
        closed: Callable[[], bool],
        subscribe_timeout: float,
        request_timeout: float,
        detect_gaps: bool,
        covered: Callable[[], bool] = lambda: False,
        mirror: Callable[[str, Sequence[str]], None] = lambda _kind, _topics: None,
    ) -> None:
        self._ctx = ctx
        self.url = url
        self.protocol = ctx.protocol
        self._requests = requests
        self._serving = serving
        self._closed = closed
        self._covered = covered
        self._mirror = mirror
        self._subscribe_timeout = subscribe_timeout
        self.request_timeout = request_timeout
        self.router = Router()
        self.route = self.router.lookup
        self.registry = SubscriptionRegistry()
        self.tracker: SequenceTracker | None = SequenceTracker() if detect_gaps else None
        self._topics: dict[str, FastSubject[Any]] = {}
        self._restoring: set[str] | None = None
        self._restored: tuple[list[str], list[str]] = ([], [])
        self._flush_scheduled = False
        self._paused = False

    # What SubscriptionManager reads -------------------------------------------------------------
    def now(self) -> float:
        """The client's clock."""
        return self._ctx.now()

    def closed(self) -> bool:
        """Whether the client is closed."""
        return self._closed()

    def run(self, fn: Callable[[], None], result: CommandResult[Any] | None) -> None:
        """Run ``fn`` on the client's loop."""
        self._ctx.run(fn, result)

    # Watching ------------------------------------------------------------------------------------
    def attach_watch(
        self,
        topics: tuple[str, ...],
        model: type[BaseModel] | None,
        observer: abc.ObserverBase[Any],
        disposable: CompositeDisposable,
    ) -> None:
        """Add ``observer`` to ``topics``' streams; the first observer of a topic subscribes it."""
        if self._closed():
            observer.on_completed()
            return
        over = self.over_cap(topics)
        if over is not None:
            observer.on_error(over)
            return
        merged: Any
        if len(topics) == 1 and model is None:
            merged = observer  # one topic, no model: the observer itself, one call less per message
        else:
            merged = MergedTopicObserver(observer, len(topics), typed(observer, model, topics, self._invalid))
        registry = self.registry
        ctx = self._ctx
        for topic in topics:
            subject = self._topic_subject(topic)
            disposable.add(subject.subscribe(merged))
            if registry.acquire(topic):
                ctx.emit(SubscriptionChanged(at=ctx.now(), topic=topic, state="DESIRED"))
            disposable.add(Disposable(lambda t=topic: self._release(t)))  # type: ignore[misc]
        self.flush_soon()

    def over_cap(self, topics: Sequence[str]) -> SubscriptionLimitExceeded | None:
        """The error when ``topics`` would take this connection past the venue's topic cap, or
        past its cap on the characters of all subscribed topics (Bybit: 21,000 in ``args``)."""
        protocol = self._ctx.protocol
        cap = protocol.max_topics_per_connection
        registry = self.registry
        if cap is not None:
            new = registry.count_new(topics)
            if new and registry.wanted_count + new > cap:
                return SubscriptionLimitExceeded(
                    f"{new} more topic(s) would take this connection past the venue's cap of {cap} "
                    f"({registry.wanted_count} already wanted); spread them with rxws.pool.ConnectionPool"
                )
        chars_cap: int | None = getattr(protocol, "max_chars_per_connection", None)
        if chars_cap is None:
            return None
        fresh = [t for t in dict.fromkeys(topics) if (r := registry.get(t)) is None or not r.wanted]
        if not fresh:
            return None
        chars = protocol.topic_chars
        added = sum(map(chars, fresh))
        used = sum(map(chars, registry.wanted()))  # O(wanted): bounded by the cap itself
        if used + added <= chars_cap:
            return None
        return SubscriptionLimitExceeded(
            f"{len(fresh)} more topic(s) ({added} characters) would take this connection's "
            f"subscriptions past the venue's cap of {chars_cap} characters ({used} already wanted); "
            "spread them with rxws.pool.ConnectionPool"
        )

    def _topic_subject(self, topic: str) -> FastSubject[Any]:
        """The topic's subject, created (and routed, and tracked) on first use."""
        subject = self._topics.get(topic)
        if subject is None:
            tracker = self.tracker
            if tracker is None:
                subject = FastSubject(self._ctx.observer_failed(topic))
                self.router.add(topic, subject.on_next)
            else:
                tracked = TopicSubject(topic, self._ctx, tracker, self._ctx.observer_failed(topic))
                self.router.add(topic, tracked.sink)
                subject = tracked
            self._topics[topic] = subject
        return subject

    def _invalid(self, topic: str | None, error: ValidationError, message: Any) -> None:
        detail = f"validation failed: {error.error_count()} error(s): {error.errors()[0]['msg']}"
        self._ctx.decode_failed(detail, str(message)[:80], topic)

    def _release(self, topic: str) -> None:
        registry = self.registry
        unsubscribe = registry.release(topic)
        if not registry.is_pinned(topic):
            self._forget_topic(topic)
        if unsubscribe:
            self.flush_soon()

    def _forget_topic(self, topic: str) -> None:
        """Drop the topic's subject, route and sequence record once nobody observes it."""
        subject = self._topics.get(topic)
        if subject is not None and not subject.has_observers:
            del self._topics[topic]
            self.router.remove(topic)
            if self.tracker is not None:
                self.tracker.forget(topic)

    # Subscribing on the serving session ----------------------------------------------------------
    def flush_soon(self) -> None:
        """Send this tick's (un)subscriptions on the next tick, batched."""
        if self._flush_scheduled or self._ctx.scheduler is None:
            return
        self._flush_scheduled = True
        self._ctx.after(0.0, self._flush)

    def pause(self, paused: bool) -> None:
        """Hold (un)subscriptions back while a rotation moves the topics to a new session; send
        what waited once it ends."""
        self._paused = paused
        if not paused:
            self.flush_soon()

    def rotating(self) -> list[str]:
        """The topics a new session must subscribe to take over: sent or acked on the serving one."""
        return self.registry.in_state(TopicState.CONFIRMED, TopicState.PENDING)

    def last_seq(self, topic: str) -> int | None:
        """The last sequence number delivered on ``topic`` (None: none, or gaps not tracked)."""
        mark = None if self.tracker is None else self.tracker.mark(topic)
        return None if mark is None else mark.last_seq

    def _flush(self) -> None:
        """Coalesce this tick's watches and disposals into as few messages as the venue allows."""
        self._flush_scheduled = False
        session = self._serving()
        if session is None or self._paused:
            return
        registry = self.registry
        protocol = self._ctx.protocol
        unsubscribes = registry.take_unsubscribes()
        if unsubscribes:
            for batch in protocol.batches(unsubscribes):
                self._send_subscription(session, "unsubscribe", batch)
        topics = registry.to_subscribe()
        if topics:
            for batch in protocol.batches(topics):
                if not self._admit_subscribe(session, batch):
                    return
                registry.sent(batch)
                self._send_subscription(session, "subscribe", batch)

    def _admit_subscribe(self, session: Session, batch: list[str]) -> bool:
        """The limiter's SUBSCRIBE decision for one batch: send, wait, or refuse past the cap."""
        decision = session.budget.acquire_subscribe(len(batch))
        if decision.allowed:
            return True
        if decision.retry_after == float("inf"):
            cap = SubscriptionLimitExceeded(
                f"the venue allows no more topics on this connection ({len(batch)} refused)"
            )
            self.registry.sent(batch)
            self.subscribed(batch, cap)
            return True  # go on: a smaller batch may still fit under the cap
        ctx = self._ctx
        ctx.emit_rate(
            Throttled(
                at=ctx.now(), action=Action.SUBSCRIBE, conn_id=session.conn_id, delay=decision.retry_after
            )
        )
        self._flush_scheduled = True
        ctx.after(decision.retry_after, self._flush)
        return False

    def _send_subscription(self, session: Session, kind: str, batch: list[str]) -> None:
        requests = self._requests
        protocol = self._ctx.protocol
        request_id = requests.next_id()
        if kind == "subscribe":
            message = protocol.subscribe_message(batch, request_id)
        else:
            message = protocol.unsubscribe_message(batch, request_id)
        requests.expect(request_id, _Pending(kind, None, self._subscribe_timeout, tuple(batch)))
        session.note_requests(kind, batch, request_id)
        self._mirror(kind, batch)
        try:
            session.write(protocol.encode(message), None)
        except RateLimitExceeded as exc:  # the outbound queue is full: these topics fail, visibly
            requests.discard(request_id)
            if kind == "subscribe":
                self.subscribed(batch, exc)
            else:
                self.unsubscribed(batch, VenueError(None, f"unsubscribe not sent: {exc}"))

    def subscribed(self, topics: Sequence[str], error: Exception | None) -> None:
        """The venue acked (``error`` None) or refused a subscribe of ``topics``."""
        ctx = self._ctx
        session = self._serving()
        if session is not None:
            session.settle_requests("subscribe", topics)
        restoring = self._restoring
        if restoring is not None:
            done = [t for t in topics if t in restoring]
            if done:
                (self._restored[0] if error is None else self._restored[1]).extend(done)
                restoring.difference_update(done)
                if not restoring:
                    self._restore_done()
        registry = self.registry
        if error is None:
            orphans = registry.confirmed(topics)
            for topic in topics:
                ctx.emit(SubscriptionChanged(at=ctx.now(), topic=topic, state="CONFIRMED"))
            if orphans:
                self.flush_soon()
            return
        code = error.code if isinstance(error, VenueError | AuthenticationError) else None
        detail = error.message if isinstance(error, VenueError) else str(error)
        if session is not None and not isinstance(error, SubscriptionLimitExceeded):
            session.budget.release_subscriptions(len(topics))
        registry.failed(topics, detail)
        for topic in topics:
            ctx.emit(SubscriptionFailed(at=ctx.now(), topic=topic, code=code, detail=detail))
            subject = self._topics.pop(topic, None)
            self.router.remove(topic)
            if subject is not None:
                refused: Exception
                if isinstance(error, VenueError):
                    refused = VenueError(code, f"subscribe {topic!r} refused: {detail}", error.payload)
                elif isinstance(error, AuthenticationError):  # a refused login: private topics fail
                    refused = error
                else:
                    refused = SubscriptionLimitExceeded(f"subscribe {topic!r} refused: {detail}")
                subject.on_error(refused)
            if registry.is_pinned(topic):
                self._topic_subject(topic)  # still wanted: routed again for a later retry

    def unsubscribed(self, topics: Sequence[str], error: VenueError | None) -> None:
        """The venue acked (``error`` None) or refused an unsubscribe of ``topics``."""
        session = self._serving()
        if session is not None:
            session.settle_requests("unsubscribe", topics)
            if error is None:
                session.budget.release_subscriptions(len(topics))
        if error is not None:
            log.warning("unsubscribe %s refused: %s", list(topics), error)
        again = self.registry.unsubscribed(topics)
        if again:
            self.flush_soon()

    def on_ack_topics(
        self, session: Session, topics: Sequence[str], error: VenueError | None, *, unsubscribe: bool = False
    ) -> None:
        """(Un)subscription acks keyed by topic (venues whose acks carry no request id, e.g. OKX).

        Each acked topic is taken out of the request that carried it; once every topic of a
        request is acked, the request is settled and its deadline no longer applies.
        """
        kind = "unsubscribe" if unsubscribe else "subscribe"
        requests = self._requests
        for topic in topics:
            request_id = session.take_request(kind, topic)
            entry = None if request_id is None else requests.get(request_id)
            if entry is not None:
                entry.topics = tuple(t for t in entry.topics if t != topic)
                if not entry.topics:
                    requests.discard(request_id)
        if unsubscribe:
            self.unsubscribed(topics, error)
        else:
            self.subscribed(topics, error)

    # Connections coming and going ------------------------------------------------------------------
    def restore_start(self) -> None:
        """A reconnection: every wanted topic is subscribed again; ``SubscriptionsRestored`` follows."""
        self._restoring = set(self.registry.to_subscribe())
        self._restored = ([], [])
        if not self._restoring:
            self._restore_done()

    def _restore_done(self) -> None:
        confirmed, failed = self._restored
        self._restoring = None
        self._restored = ([], [])
        ctx = self._ctx
        ctx.emit(SubscriptionsRestored(at=ctx.now(), confirmed=tuple(confirmed), failed=tuple(failed)))

    def connection_lost(self, now: float) -> None:
        """The serving connection ended: nothing is subscribed at the venue any more."""
        self.registry.connection_lost()
        self._restoring = None
        if not self._covered():
            self.data_lost(now)

    def data_lost(self, now: float) -> None:
        """No session delivers data any more: every tracked topic opens a disconnect window."""
        if self.tracker is not None:
            self.tracker.disconnected(now)

    def complete(self) -> None:
        """The client closed: every topic stream completes."""
        for subject in list(self._topics.values()):
            subject.on_completed()
        self._topics.clear()

    # Asked through client.subscriptions ------------------------------------------------------------
    def pin(self, topics: Sequence[str], marks: Mapping[str, TopicMark]) -> None:
        """Want ``topics`` with no observer yet: routed (data reaches ``messages``), subscribed."""
        if self._closed():
            raise UsageError("the client is closed; create a new one")
        over = self.over_cap(topics)
        if over is not None:
            raise over
        tracker = self.tracker
        # marks only for topics not tracked yet: a topic watched now keeps its own record
        fresh = {t: m for t, m in marks.items() if tracker is not None and t not in tracker}
        for topic in topics:
            self._topic_subject(topic)
        if tracker is not None and fresh:
            tracker.restore(fresh, disconnected=True)
        ctx = self._ctx
        for topic in self.registry.pin(topics):
            ctx.emit(SubscriptionChanged(at=ctx.now(), topic=topic, state="DESIRED"))
        self.flush_soon()

    def unpin(self, topics: Sequence[str]) -> None:
        """Take the pin off ``topics``; each is unsubscribed once nobody watches it either."""
        registry = self.registry
        unsubscribe = registry.unpin(topics)
        for topic in topics:
            record = registry.get(topic)
            if record is None or not record.wanted:
                self._forget_topic(topic)
        if unsubscribe:
            self.flush_soon()

    def verify(self, timeout: float, result: CommandResult[SubscriptionDrift]) -> None:
        """Ask the venue which topics this connection has; compare with the CONFIRMED set."""
        if self._closed():
            raise NotConnected("the client is closed")
        session = self._serving()
        if session is None:
            raise NotConnected("not connected; verify() asks the venue")
        ctx = self._ctx
        protocol = ctx.protocol
        request_id = self._requests.next_id()
        message = protocol.list_subscriptions_message(request_id)
        if message is None:
            raise UsageError(f"the {protocol.name} dialect cannot ask the venue for its subscriptions")
        reply: CommandResult[Any] = CommandResult("list_subscriptions")
        self._requests.expect(request_id, _Pending("request", reply, timeout))
        session.write(protocol.encode(message), None)

        def compare(listed: Any) -> None:
            try:
                at_venue = set(protocol.listed_topics(listed))
            except DecodeError as exc:
                result.set_error(exc)
                return
            registry = self.registry
            confirmed = set(registry.in_state(TopicState.CONFIRMED))
            in_flight = set(registry.in_state(TopicState.PENDING, TopicState.UNSUBSCRIBING))
            drift = SubscriptionDrift(
                at=ctx.now(),
                missing_at_venue=tuple(sorted(confirmed - at_venue)),
                unexpected_at_venue=tuple(sorted(at_venue - confirmed - in_flight)),
            )
            if drift.missing_at_venue or drift.unexpected_at_venue:
                ctx.emit(drift)
            result.set_result(drift)

        reply.subscribe(on_next=compare, on_error=result.set_error)
