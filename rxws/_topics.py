"""Topic streams behind ``client.watch()``: one loop-confined subject per topic, merged per call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from reactivex import abc

from rxws.exceptions import UsageError

__all__ = ["MergedTopicObserver", "typed", "unique_topics"]


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
