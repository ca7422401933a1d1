"""Holding back a connection that joins a topic's merge late, until the merge has caught up to it.

When a second connection subscribes a topic the first one already carries (a rotation's new
connection, a redundant twin, a primary back after a drop), its messages may arrive *before* the
older connection's copies of earlier numbers (the two links are not in step). Merged by high
water mark alone (:class:`~rxws.core.merge.TopicMerge`), the newcomer's number would supersede
those earlier numbers, and the ones only the older connection has (sent before the newcomer
subscribed) would be lost. :class:`JoinGate` holds a newcomer's sequenced messages back (dropped:
the older connection, subscribed all along, delivers them too) until one of them continues the
merged stream (its first number at most one past the merged mark); from then on the newcomer is
merged like any source. Messages without sequence numbers pass.
"""

from __future__ import annotations

from rxws.core.merge import TopicMerge
from rxws.protocols.base import Seq

__all__: list[str] = []


class JoinGate:
    """Per topic and source: the newcomers still held back (see the module docstring)."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: set[tuple[str, int]] = set()
        """(topic, source) pairs held back."""

    def arm(self, topic: str, source: int) -> None:
        """``source`` joins ``topic`` now: hold it back until it continues the merged stream."""
        self.held.add((topic, source))

    def release(self, source: int | None = None) -> None:
        """Stop holding ``source`` (every source when None) back: it is alone, or gone."""
        if source is None:
            self.held.clear()
        else:
            self.held.difference_update([k for k in self.held if k[1] == source])

    def admit(self, topic: str, source: int, seq: Seq | None, merge: TopicMerge) -> bool:
        """Whether ``source``'s message on ``topic`` may be offered to ``merge`` now."""
        key = (topic, source)
        if key not in self.held:
            return True
        mark = merge.mark
        if seq is None or mark is None or mark + 1 >= seq.first:  # nothing before it is missing
            self.held.discard(key)
            return True
        return False
