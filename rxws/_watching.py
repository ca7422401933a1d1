"""Topics and subscriptions: ``watch()``, batching, acks, restore after reconnect, gaps.

The registry (:mod:`rxws.core.subscriptions`) decides what to (un)subscribe; this mixin batches
one tick's decisions into as few messages as the venue allows, settles them on the venue's acks,
restores every desired topic after an approved reconnection, and reports sequence gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxws._client_base import _ClientBase, _Pending, log
from rxws._subject import FastSubject
from rxws._topics import MergedTopicObserver, typed
from rxws.core.state import ConnectionState
from rxws.events import GapDetected, SubscriptionChanged, SubscriptionFailed, SubscriptionsRestored
from rxws.exceptions import SubscriptionLimitExceeded, VenueError
from rxws.ratelimit.base import Action
from rxws.ratelimit.events import Throttled

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
        merged = MergedTopicObserver(observer, len(topics), typed(observer, model, topics, self._invalid))
        for topic in topics:
            subject = self._topics.get(topic)
            if subject is None:
                subject = FastSubject(self._observer_failed(topic))
                self._topics[topic] = subject
                self._router.add(topic, self._sink(topic, subject))
                if self._tracker is not None:
                    self._tracker.track(topic, self._now())
            disposable.add(subject.subscribe(merged))  # type: ignore[arg-type]
            if self._registry.acquire(topic):
                self._emit(SubscriptionChanged(at=self._now(), topic=topic, state="DESIRED"))
            disposable.add(Disposable(lambda t=topic: self._release(t)))  # type: ignore[misc]
        self._schedule_subscription_flush()

    def _sink(self, topic: str, subject: FastSubject[Any]) -> Callable[[Any], None]:
        """The router's sink for ``topic``: gap tracking (when on), then the topic's observers."""
        tracker = self._tracker
        if tracker is None:
            return subject.on_next
        observe = tracker.observe
        sequence = self.protocol.sequence
        now = self._now
        forward = subject.on_next

        def deliver(message: Any) -> None:
            gap = observe(topic, sequence(message), now())
            if gap is not None:
                self._gap(gap)
            forward(message)

        return deliver

    def _gap(self, gap: GapDetected) -> None:
        self._emit(gap)

    def _invalid(self, topic: str | None, error: ValidationError, message: Any) -> None:
        detail = f"validation failed: {error.error_count()} error(s): {error.errors()[0]['msg']}"
        self._decode_failed(detail, str(message)[:80], topic)

    def _release(self, topic: str) -> None:
        subject = self._topics.get(topic)
        if subject is not None and not subject.has_observers:
            del self._topics[topic]
            self._router.remove(topic)
            if self._tracker is not None:
                self._tracker.forget(topic)
        if self._registry.release(topic):
            self._unsub_queue.append(topic)
            self._schedule_subscription_flush()

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
        if self._unsub_queue:
            topics, self._unsub_queue = self._unsub_queue, []
            for batch in self.protocol.batches(topics):
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
        if kind == "subscribe":
            for topic in batch:
                self._sub_request[topic] = request_id
        self._write(self.protocol.encode(message), None)

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
                self._unsub_queue.extend(orphans)
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

    def _restore_done(self) -> None:
        confirmed, failed = self._restored
        self._restoring = None
        self._restored = ([], [])
        self._emit(SubscriptionsRestored(at=self._now(), confirmed=tuple(confirmed), failed=tuple(failed)))

    def _unsubscribed(self, topics: Sequence[str], error: VenueError | None) -> None:
        if self._limiter is not None and error is None:
            self._limiter.release_subscriptions(self._conn_id, self._now(), len(topics))
        if error is not None:
            log.warning("unsubscribe %s refused: %s", list(topics), error)
        again = self._registry.unsubscribed(topics)
        if again:
            self._schedule_subscription_flush()

    def _on_ack_topics(self, topics: Sequence[str], error: VenueError | None) -> None:
        """Subscription acks keyed by topic (venues whose acks carry no request id, e.g. OKX).

        Each acked topic is taken out of the subscribe request that carried it; once every topic
        of a request is acked, the request is settled and its deadline no longer applies.
        """
        for topic in topics:
            request_id = self._sub_request.pop(topic, None)
            entry = None if request_id is None else self._pending.get(request_id)
            if entry is not None:
                entry.topics = tuple(t for t in entry.topics if t != topic)
                if not entry.topics:
                    self._pending.discard(request_id)
        self._subscribed(topics, error)
