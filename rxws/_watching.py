"""Topics and subscriptions: ``watch()``, batching, acks, restore after reconnect, gaps.

The registry (:mod:`rxws.core.subscriptions`) decides what to (un)subscribe; this mixin batches
one tick's decisions into as few messages as the venue allows, settles them on the venue's acks,
restores every desired topic after an approved reconnection, and reports sequence gaps. It also
carries out what :class:`rxws.subscriptions.SubscriptionManager` (``client.subscriptions``) asks:
pinning restored topics, and asking the venue for its own list of subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxws._client_base import _ClientBase, _Pending, log
from rxws._command import CommandResult
from rxws._subject import FastSubject
from rxws._topics import MergedTopicObserver, typed
from rxws.core.sequence import SequenceTracker, TopicMark
from rxws.core.state import ConnectionState
from rxws.core.subscriptions import TopicState
from rxws.events import (
    GapDetected,
    SubscriptionChanged,
    SubscriptionDrift,
    SubscriptionFailed,
    SubscriptionsRestored,
)
from rxws.exceptions import (
    DecodeError,
    NotConnected,
    RateLimitExceeded,
    SubscriptionLimitExceeded,
    UsageError,
    VenueError,
)
from rxws.ratelimit.base import Action
from rxws.ratelimit.events import Throttled
from rxws.subscriptions import SubscriptionManager

__all__: list[str] = []

_S = ConnectionState


class _WatchingMixin(_ClientBase):
    """Topic streams and the venue subscriptions behind them."""

    def _attach_watch(
        self,
        topics: tuple[str, ...],
        model: type[BaseModel] | None,
        observer: abc.ObserverBase[Any],
        disposable: CompositeDisposable,
    ) -> None:
        if self._closed:
            observer.on_completed()
            return
        over = self._over_cap(topics)
        if over is not None:
            observer.on_error(over)
            return
        merged: Any
        if len(topics) == 1 and model is None:
            merged = observer  # one topic, no model: the observer itself, one call less per message
        else:
            merged = MergedTopicObserver(observer, len(topics), typed(observer, model, topics, self._invalid))
        registry = self._registry
        for topic in topics:
            subject = self._topic_subject(topic)
            disposable.add(subject.subscribe(merged))
            if registry.acquire(topic):
                self._emit(SubscriptionChanged(at=self._now(), topic=topic, state="DESIRED"))
            disposable.add(Disposable(lambda t=topic: self._release(t)))  # type: ignore[misc]
        self._schedule_subscription_flush()

    def _over_cap(self, topics: Sequence[str]) -> SubscriptionLimitExceeded | None:
        """The error when ``topics`` would take this connection past the venue's topic cap, or
        past its cap on the characters of all subscribed topics (Bybit: 21,000 in ``args``)."""
        protocol = self.protocol
        cap = protocol.max_topics_per_connection
        registry = self._registry
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
            tracker = self._tracker
            if tracker is None:
                subject = FastSubject(self._observer_failed(topic))
                self._router.add(topic, subject.on_next)
            else:
                tracked = _TopicSubject(topic, self, tracker, self._observer_failed(topic))
                self._router.add(topic, tracked.deliver)
                subject = tracked
            self._topics[topic] = subject
        return subject

    def _gap(self, gap: GapDetected) -> None:
        self._emit(gap)

    def _invalid(self, topic: str | None, error: ValidationError, message: Any) -> None:
        detail = f"validation failed: {error.error_count()} error(s): {error.errors()[0]['msg']}"
        self._decode_failed(detail, str(message)[:80], topic)

    def _release(self, topic: str) -> None:
        registry = self._registry
        unsubscribe = registry.release(topic)
        if not registry.is_pinned(topic):
            self._forget_topic(topic)
        if unsubscribe:
            self._schedule_subscription_flush()

    def _forget_topic(self, topic: str) -> None:
        """Drop the topic's subject, route and sequence record once nobody observes it."""
        subject = self._topics.get(topic)
        if subject is not None and not subject.has_observers:
            del self._topics[topic]
            self._router.remove(topic)
            if self._tracker is not None:
                self._tracker.forget(topic)

    def _schedule_subscription_flush(self) -> None:
        if self._sub_flush_scheduled or self._scheduler is None:
            return
        self._sub_flush_scheduled = True
        self._after(0.0, self._flush_subscriptions)

    def _flush_subscriptions(self) -> None:
        """Coalesce this tick's watches and disposals into as few messages as the venue allows."""
        self._sub_flush_scheduled = False
        if self._sm.state is not _S.CONNECTED or self._link is None:
            return
        unsubscribes = self._registry.take_unsubscribes()
        if unsubscribes:
            for batch in self.protocol.batches(unsubscribes):
                self._send_subscription("unsubscribe", batch)
        topics = self._registry.to_subscribe()
        if topics:
            for batch in self.protocol.batches(topics):
                if not self._admit_subscribe(batch):
                    return
                self._registry.sent(batch)
                self._send_subscription("subscribe", batch)

    def _admit_subscribe(self, batch: list[str]) -> bool:
        """The limiter's SUBSCRIBE decision for one batch: send, wait, or refuse past the cap."""
        limiter = self._limiter
        if limiter is None:
            return True
        now = self._now()
        decision = limiter.acquire_subscribe(self._conn_id, now, len(batch))
        if decision.allowed:
            return True
        if decision.retry_after == float("inf"):
            cap = SubscriptionLimitExceeded(
                f"the venue allows no more topics on this connection ({len(batch)} refused)"
            )
            self._registry.sent(batch)
            self._subscribed(batch, cap)
            return True  # go on: a smaller batch may still fit under the cap
        self._emit_rate(
            Throttled(at=now, action=Action.SUBSCRIBE, conn_id=self._conn_id, delay=decision.retry_after)
        )
        self._sub_flush_scheduled = True
        self._after(decision.retry_after, self._flush_subscriptions)
        return False

    def _send_subscription(self, kind: str, batch: list[str]) -> None:
        request_id = self._next_id()
        if kind == "subscribe":
            message = self.protocol.subscribe_message(batch, request_id)
        else:
            message = self.protocol.unsubscribe_message(batch, request_id)
        timeout = self._subscribe_timeout
        self._expect(request_id, _Pending(kind, None, timeout, tuple(batch)))
        by_topic = self._sub_request if kind == "subscribe" else self._unsub_request
        for topic in batch:
            by_topic[topic] = request_id
        try:
            self._write(self.protocol.encode(message), None)
        except RateLimitExceeded as exc:  # the outbound queue is full: these topics fail, visibly
            self._pending.discard(request_id)
            if kind == "subscribe":
                self._subscribed(batch, exc)
            else:
                self._unsubscribed(batch, VenueError(None, f"unsubscribe not sent: {exc}"))

    def _subscribed(self, topics: Sequence[str], error: Exception | None) -> None:
        sub_request = self._sub_request
        for topic in topics:
            sub_request.pop(topic, None)
        restoring = self._restoring
        if restoring is not None:
            done = [t for t in topics if t in restoring]
            if done:
                (self._restored[0] if error is None else self._restored[1]).extend(done)
                restoring.difference_update(done)
                if not restoring:
                    self._restore_done()
        if error is None:
            orphans = self._registry.confirmed(topics)
            for topic in topics:
                self._emit(SubscriptionChanged(at=self._now(), topic=topic, state="CONFIRMED"))
            if orphans:
                self._schedule_subscription_flush()
            return
        code = error.code if isinstance(error, VenueError) else None
        detail = error.message if isinstance(error, VenueError) else str(error)
        if self._limiter is not None and not isinstance(error, SubscriptionLimitExceeded):
            self._limiter.release_subscriptions(self._conn_id, self._now(), len(topics))
        self._registry.failed(topics, detail)
        for topic in topics:
            self._emit(SubscriptionFailed(at=self._now(), topic=topic, code=code, detail=detail))
            subject = self._topics.pop(topic, None)
            self._router.remove(topic)
            if subject is not None:
                refused: Exception
                if isinstance(error, VenueError):
                    refused = VenueError(code, f"subscribe {topic!r} refused: {detail}", error.payload)
                else:
                    refused = SubscriptionLimitExceeded(f"subscribe {topic!r} refused: {detail}")
                subject.on_error(refused)
            if self._registry.is_pinned(topic):
                self._topic_subject(topic)  # still wanted: routed again for a later retry

    def _restore_done(self) -> None:
        confirmed, failed = self._restored
        self._restoring = None
        self._restored = ([], [])
        self._emit(SubscriptionsRestored(at=self._now(), confirmed=tuple(confirmed), failed=tuple(failed)))

    def _unsubscribed(self, topics: Sequence[str], error: VenueError | None) -> None:
        unsub_request = self._unsub_request
        for topic in topics:
            unsub_request.pop(topic, None)
        if self._limiter is not None and error is None:
            self._limiter.release_subscriptions(self._conn_id, self._now(), len(topics))
        if error is not None:
            log.warning("unsubscribe %s refused: %s", list(topics), error)
        again = self._registry.unsubscribed(topics)
        if again:
            self._schedule_subscription_flush()

    def _on_ack_topics(
        self, topics: Sequence[str], error: VenueError | None, *, unsubscribe: bool = False
    ) -> None:
        """(Un)subscription acks keyed by topic (venues whose acks carry no request id, e.g. OKX).

        Each acked topic is taken out of the request that carried it; once every topic of a
        request is acked, the request is settled and its deadline no longer applies.
        """
        by_topic = self._unsub_request if unsubscribe else self._sub_request
        for topic in topics:
            request_id = by_topic.pop(topic, None)
            entry = None if request_id is None else self._pending.get(request_id)
            if entry is not None:
                entry.topics = tuple(t for t in entry.topics if t != topic)
                if not entry.topics:
                    self._pending.discard(request_id)
        if unsubscribe:
            self._unsubscribed(topics, error)
        else:
            self._subscribed(topics, error)

    # Asked through client.subscriptions ------------------------------------------------------------
    def _subscription_manager(self) -> SubscriptionManager:
        manager: SubscriptionManager | None = self.__dict__.get("_manager")
        if manager is None:
            manager = self.__dict__.setdefault("_manager", SubscriptionManager(self))
        return manager

    def _pin(self, topics: Sequence[str], marks: Mapping[str, TopicMark]) -> None:
        """Want ``topics`` with no observer yet: routed (data reaches ``messages``), subscribed."""
        if self._closed:
            raise UsageError("the client is closed; create a new one")
        over = self._over_cap(topics)
        if over is not None:
            raise over
        tracker = self._tracker
        # marks only for topics not tracked yet: a topic watched now keeps its own record
        fresh = {t: m for t, m in marks.items() if tracker is not None and t not in tracker}
        for topic in topics:
            self._topic_subject(topic)
        if tracker is not None and fresh:
            tracker.restore(fresh, disconnected=True)
        for topic in self._registry.pin(topics):
            self._emit(SubscriptionChanged(at=self._now(), topic=topic, state="DESIRED"))
        self._schedule_subscription_flush()

    def _unpin(self, topics: Sequence[str]) -> None:
        registry = self._registry
        unsubscribe = registry.unpin(topics)
        for topic in topics:
            record = registry.get(topic)
            if record is None or not record.wanted:
                self._forget_topic(topic)
        if unsubscribe:
            self._schedule_subscription_flush()

    def _verify(self, timeout: float, result: CommandResult[SubscriptionDrift]) -> None:
        """Ask the venue which topics this connection has; compare with the CONFIRMED set."""
        if self._closed:
            raise NotConnected("the client is closed")
        if self._sm.state is not _S.CONNECTED or self._link is None:
            raise NotConnected(f"not connected (state {self._sm.state}); verify() asks the venue")
        protocol = self.protocol
        request_id = self._next_id()
        message = protocol.list_subscriptions_message(request_id)
        if message is None:
            raise UsageError(f"the {protocol.name} dialect cannot ask the venue for its subscriptions")
        reply: CommandResult[Any] = CommandResult("list_subscriptions")
        self._expect(request_id, _Pending("request", reply, timeout))
        self._write(protocol.encode(message), None)

        def compare(listed: Any) -> None:
            try:
                at_venue = set(protocol.listed_topics(listed))
            except DecodeError as exc:
                result.set_error(exc)
                return
            registry = self._registry
            confirmed = set(registry.in_state(TopicState.CONFIRMED))
            in_flight = set(registry.in_state(TopicState.PENDING, TopicState.UNSUBSCRIBING))
            drift = SubscriptionDrift(
                at=self._now(),
                missing_at_venue=tuple(sorted(confirmed - at_venue)),
                unexpected_at_venue=tuple(sorted(at_venue - confirmed - in_flight)),
            )
            if drift.missing_at_venue or drift.unexpected_at_venue:
                self._emit(drift)
            result.set_result(drift)

        reply.subscribe(on_next=compare, on_error=result.set_error)


class _TopicSubject(FastSubject[Any]):
    """One topic's subject and, when gaps are tracked, its tracking: all the hot path touches
    for a topic sits in this one object (and its tracker record), whatever the number of topics."""

    def __init__(
        self,
        topic: str,
        owner: _WatchingMixin,
        tracker: SequenceTracker,
        on_observer_error: Callable[[BaseException], None],
    ) -> None:
        super().__init__(on_observer_error)
        self.topic = topic
        self.owner = owner
        self.record = tracker.record(topic, owner._now())
        self.observe = tracker.observe
        self.sequence = owner.protocol.sequence
        self.now = owner._now

    def deliver(self, message: Any) -> None:
        """Check the message's sequence numbers (a gap becomes an event), then pass it on."""
        seq = self.sequence(message)
        if seq is None or not self.record.advance(seq, self.now()):
            gap = self.observe(self.topic, seq, self.now())
            if gap is not None:
                self.owner._gap(gap)
        self.on_next(message)
