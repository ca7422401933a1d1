"""Subscription bookkeeping: which topics the host wants, and where each stands with the venue.

Each topic moves DESIRED → PENDING (subscribe sent) → CONFIRMED (venue acked) or FAILED (venue
refused); the last observer leaving moves it to UNSUBSCRIBING until the venue acks. Reference
counts let many observers share one venue subscription. The registry is sans-I/O: its methods
say which topics need a subscribe or unsubscribe message, and the client sends them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["SubscriptionRegistry", "TopicRecord", "TopicState"]


class TopicState(StrEnum):
    """Where one topic's venue subscription stands."""

    DESIRED = "DESIRED"
    """Wanted by at least one observer; no subscribe on the current connection yet."""
    PENDING = "PENDING"
    """Subscribe sent, not yet acknowledged."""
    CONFIRMED = "CONFIRMED"
    """The venue acknowledged the subscription."""
    FAILED = "FAILED"
    """The venue refused the subscription."""
    UNSUBSCRIBING = "UNSUBSCRIBING"
    """No observer left; unsubscribe sent, not yet acknowledged."""

    def __str__(self) -> str:
        return self.value


@dataclass(slots=True)
class TopicRecord:
    """One topic's state, reference count and last data seen."""

    topic: str
    state: TopicState = TopicState.DESIRED
    refs: int = 0
    resubscribe: bool = False
    """Re-watched while its unsubscribe was in flight: subscribe again once it is acked."""
    error: str = ""


class SubscriptionRegistry:
    """Reference-counted topic states; decides what to (un)subscribe and what to restore."""

    def __init__(self) -> None:
        self._records: dict[str, TopicRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, topic: object) -> bool:
        return topic in self._records

    def get(self, topic: str) -> TopicRecord | None:
        return self._records.get(topic)

    def records(self) -> list[TopicRecord]:
        return list(self._records.values())

    def states(self) -> dict[str, TopicState]:
        """Every known topic and its state."""
        return {t: r.state for t, r in self._records.items()}

    def watched(self) -> list[str]:
        """Topics with at least one observer."""
        return [t for t, r in self._records.items() if r.refs > 0]

    def in_state(self, *states: TopicState) -> list[str]:
        return [t for t, r in self._records.items() if r.state in states]

    # Observers ------------------------------------------------------------------------------
    def acquire(self, topic: str) -> bool:
        """One more observer of ``topic``; True when a subscribe must be sent for it."""
        record = self._records.get(topic)
        if record is None:
            self._records[topic] = TopicRecord(topic, refs=1)
            return True
        record.refs += 1
        if record.refs == 1:
            if record.state is TopicState.UNSUBSCRIBING:
                record.resubscribe = True
                return False
            if record.state is TopicState.FAILED:
                record.state = TopicState.DESIRED
                return True
        return False

    def release(self, topic: str) -> bool:
        """One observer fewer; True when an unsubscribe must be sent (the last one left)."""
        record = self._records.get(topic)
        if record is None or record.refs == 0:
            return False
        record.refs -= 1
        if record.refs > 0:
            return False
        record.resubscribe = False
        if record.state in (TopicState.PENDING, TopicState.CONFIRMED):
            record.state = TopicState.UNSUBSCRIBING
            return True
        if record.state is not TopicState.UNSUBSCRIBING:
            del self._records[topic]  # never reached the venue: nothing to undo
        return False

    # Venue side -------------------------------------------------------------------------------
    def sent(self, topics: Iterable[str]) -> None:
        """A subscribe for ``topics`` went out."""
        for topic in topics:
            record = self._records.get(topic)
            if record is not None and record.state is TopicState.DESIRED:
                record.state = TopicState.PENDING

    def confirmed(self, topics: Iterable[str]) -> list[str]:
        """The venue acked a subscribe; returns the topics nobody watches any more (to unsubscribe)."""
        orphans = []
        for topic in topics:
            record = self._records.get(topic)
            if record is None:
                continue
            if record.state is TopicState.PENDING:
                record.state = TopicState.CONFIRMED
                record.error = ""
            if record.refs == 0 and record.state is TopicState.CONFIRMED:
                record.state = TopicState.UNSUBSCRIBING
                orphans.append(topic)
        return orphans

    def failed(self, topics: Iterable[str], error: str) -> None:
        """The venue refused (or never answered) a subscribe for ``topics``."""
        for topic in topics:
            record = self._records.get(topic)
            if record is None:
                continue
            if record.refs == 0:
                del self._records[topic]
            else:
                record.state = TopicState.FAILED
                record.error = error

    def unsubscribed(self, topics: Iterable[str]) -> list[str]:
        """The venue acked an unsubscribe; returns topics re-watched meanwhile (to subscribe again)."""
        again = []
        for topic in topics:
            record = self._records.get(topic)
            if record is None or record.state is not TopicState.UNSUBSCRIBING:
                continue
            if record.refs > 0:
                record.state = TopicState.DESIRED
                record.resubscribe = False
                again.append(topic)
            else:
                del self._records[topic]
        return again

    def connection_lost(self) -> None:
        """The venue forgot everything: watched topics go back to DESIRED, the rest are dropped."""
        for topic in list(self._records):
            record = self._records[topic]
            if record.refs > 0:
                record.state = TopicState.DESIRED
                record.resubscribe = False
            else:
                del self._records[topic]

    def to_subscribe(self) -> list[str]:
        """Watched topics with no subscribe on the current connection (restore after reconnect)."""
        return [t for t, r in self._records.items() if r.refs > 0 and r.state is TopicState.DESIRED]

    def want(self, topics: Iterable[str]) -> None:
        """Mark ``topics`` as desired without an observer yet (restoring a snapshot)."""
        for topic in topics:
            if topic not in self._records:
                self._records[topic] = TopicRecord(topic)
