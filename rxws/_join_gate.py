"""Holding back a connection that joins a topic's merge late, until the merge has caught up to it.

When a second connection subscribes a topic the first one already carries (a rotation's new
connection, a redundant twin, a primary back after a drop), its messages may arrive *before* the
older connection's copies of earlier numbers (the two links are not in step). Merged by high
water mark alone (:class:`~rxws.core.merge.TopicMerge`), the newcomer's number would supersede
those earlier numbers, and the ones only the older connection has (sent before the newcomer
subscribed) would be lost. :class:`JoinGate` holds a newcomer's sequenced messages back, in
order, until the merged mark reaches the first of them (``first <= mark + 1``: every number
before the newcomer's stream was delivered or skipped); then the held messages are handed back
to be merged in order (those the older connection delivered meanwhile are duplicates, the rest
continue the stream) and the newcomer is merged like any source.

The owner checks :meth:`JoinGate.due` both when the newcomer receives a message and when another
source moves the mark, so a newcomer whose stream is ahead of the older one's is released as
soon as the older one delivered up to its first number, not only at its next message (a stream
that goes quiet after the older connection's lagging copies would otherwise never release it).
At most :data:`HELD_LIMIT` messages are held per topic and source: beyond it the oldest held
message is dropped (the older connection, subscribed all along, delivers that number), which
only raises the number the mark must reach. Messages without sequence numbers pass.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from rxws.protocols.base import Seq

__all__: list[str] = []

HELD_LIMIT = 1024
"""Messages held at most per (topic, source); beyond it the oldest is dropped (module docstring)."""

Held = list[tuple[Seq, Any]]


class JoinGate:
    """Per topic and source: the newcomers still held back and their messages (module docstring)."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int = HELD_LIMIT) -> None:
        self.held: dict[tuple[str, int], deque[tuple[Seq, Any]]] = {}
        """(topic, source) -> the messages held back, in arrival order (truthy while any is held)."""
        self.limit = limit
        """Messages held at most per (topic, source)."""

    def arm(self, topic: str, source: int) -> None:
        """``source`` joins ``topic`` now: hold it back until the merge reaches its first number."""
        if (topic, source) not in self.held:
            self.held[(topic, source)] = deque(maxlen=self.limit)

    def holds(self, topic: str, source: int) -> bool:
        """Whether ``source`` is held back on ``topic``."""
        return (topic, source) in self.held

    def hold(self, topic: str, source: int, seq: Seq, message: Any) -> None:
        """Keep ``message`` of a held ``source`` (the oldest one goes when the limit is reached)."""
        self.held[(topic, source)].append((seq, message))

    def unsequenced(self, topic: str, source: int) -> None:
        """A held ``source`` received a message without a sequence number on ``topic``: the
        channel has none, so stop holding it back unless it holds sequenced messages."""
        key = (topic, source)
        if not self.held.get(key, True):
            del self.held[key]

    def due(self, topic: str, source: int, mark: int | None) -> Held | None:
        """If ``source`` is held on ``topic`` and the merge's ``mark`` reached its first held
        number (or nothing was delivered yet), stop holding it and return its held messages, in
        order, to merge now; otherwise None."""
        queue = self.held.get((topic, source))
        if not queue or (mark is not None and mark + 1 < queue[0][0].first):
            return None
        del self.held[(topic, source)]
        return list(queue)

    def release(self, source: int) -> list[tuple[str, Held]]:
        """Stop holding ``source`` back on every topic (it is alone, or gone); return its held
        messages per topic, in order, for the owner to merge or drop."""
        released = [(topic, list(queue)) for (topic, src), queue in self.held.items() if src == source]
        for topic, _held in released:
            del self.held[(topic, source)]
        return released
