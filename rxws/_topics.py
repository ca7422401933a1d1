"""Topic streams behind ``client.watch()``: one loop-confined subject per topic (a
:class:`TopicSubject` when gaps are tracked), merged per call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from reactivex import abc

from rxws._client_base import ClientContext
from rxws._subject import FastSubject
from rxws.core.sequence import SequenceTracker
from rxws.events import GapDetected
from rxws.exceptions import UsageError
from rxws.protocols.base import counter_field

__all__ = ["MergedTopicObserver", "TopicSubject", "typed", "unique_topics"]


def unique_topics(topics: Sequence[str]) -> tuple[str, ...]:
    """``topics`` without repeats, in order.

    Raises:
        UsageError: no topic, or one that is not a non-empty string.
    """
    if not topics:
        raise UsageError("watch() needs at least one topic")
    for topic in topics:
        if not isinstance(topic, str) or not topic:
            raise UsageError(f"topics must be non-empty strings, got {topic!r}")
    return tuple(dict.fromkeys(topics))


class MergedTopicObserver:
    """Forwards several topic subjects to one observer: completes once all have completed,
    errors (once) on the first error."""

    __slots__ = ("_observer", "_remaining", "_stopped", "on_next")

    def __init__(self, observer: abc.ObserverBase[Any], count: int, on_next: Callable[[Any], None]) -> None:
        self._observer = observer
        self._remaining = count
        self._stopped = False
        self.on_next = on_next

    def on_error(self, error: Exception) -> None:
        if not self._stopped:
            self._stopped = True
            self._observer.on_error(error)

    def on_completed(self) -> None:
        self._remaining -= 1
        if self._remaining <= 0 and not self._stopped:
            self._stopped = True
            self._observer.on_completed()


def typed(
    observer: abc.ObserverBase[Any],
    model: type[BaseModel] | None,
    topics: Sequence[str],
    on_invalid: Callable[[str | None, ValidationError, Any], None],
) -> Callable[[Any], None]:
    """The ``on_next`` for a watch: the observer's own, or one that validates with ``model`` first.

    A message that fails validation is reported through ``on_invalid`` and skipped.
    """
    if model is None:
        return observer.on_next
    validate = model.model_validate
    forward = observer.on_next
    topic = topics[0] if len(topics) == 1 else None

    def on_next(message: Any) -> None:
        try:
            value = validate(message)
        except ValidationError as exc:
            on_invalid(topic, exc, message)
            return
        forward(value)

    return on_next


class TopicSubject(FastSubject[Any]):
    """One topic's subject and, when gaps are tracked, its tracking: all the hot path touches
    for a topic sits in this one object (and its tracker record), whatever the number of topics.

    Args:
        topic: the topic.
        ctx: the client's shared context (clock, dialect, where a ``GapDetected`` goes).
        tracker: the client's sequence tracker (this topic's record is taken from it).
        on_observer_error: called when an observer raises.
    """

    def __init__(
        self,
        topic: str,
        ctx: ClientContext,
        tracker: SequenceTracker,
        on_observer_error: Callable[[BaseException], None],
    ) -> None:
        super().__init__(on_observer_error)
        self.topic = topic
        self.record = tracker.record(topic, ctx.now())
        self.observe = tracker.observe
        self.sequence = ctx.protocol.sequence
        self.now = ctx.now
        self.gap: Callable[[GapDetected], None] = ctx.emit
        self.field = counter_field(ctx.protocol)
        self.sink = self.deliver if self.field is None else self.deliver_counted  # what the router calls

    def deliver(self, message: Any) -> None:
        """Check the message's sequence numbers (a gap becomes an event), then pass it on."""
        seq = self.sequence(message)
        if seq is None or not self.record.advance(seq, self.now()):
            gap = self.observe(self.topic, seq, self.now())
            if gap is not None:
                self.gap(gap)
        self.on_next(message)

    def deliver_counted(self, message: Any) -> None:
        """:meth:`deliver` for a dialect whose data carry one consecutive integer (``seq_field``):
        the common case, the next number with no disconnect window open, moves the mark as
        ``SeqRecord.advance`` does with ``Seq(n, n)``, without building the ``Seq``; anything else
        takes :meth:`deliver`, which judges it exactly as before."""
        record = self.record
        last = record.last_seq
        if last is not None and type(message) is dict and not record.dropped:
            number = message.get(self.field)
            if type(number) is int and number == last + 1:
                record.last_seq = number
                record.last_time = self.now()
                self.on_next(message)
                return
        self.deliver(message)
