"""Subscription bookkeeping: which topics the host wants, and where each stands with the venue.

Each topic moves DESIRED → PENDING (subscribe sent) → CONFIRMED (venue acked) or FAILED (venue
refused); once nobody wants it any more it moves to UNSUBSCRIBING until the venue acks the
unsubscribe. A topic is *wanted* while it has observers (a reference count: many observers share
one venue subscription) or is *pinned* (restored from a snapshot: wanted with no observer yet).

The registry is sans-I/O: its methods say which topics need a subscribe or an unsubscribe
message, and the client sends them. Decisions taken within one scheduler tick cancel out: a topic
released and re-acquired before its unsubscribe went out goes back to where it was, and nothing
is sent for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["SubscriptionRegistry", "TopicRecord", "TopicState"]


class TopicState(StrEnum):
    """Where one topic's venue subscription stands."""

    DESIRED = "DESIRED"
    """Wanted; no subscribe on the current connection yet."""
    PENDING = "PENDING"
    """Subscribe sent, not yet acknowledged."""
    CONFIRMED = "CONFIRMED"
    """The venue acknowledged the subscription."""
    FAILED = "FAILED"
    """The venue refused the subscription."""
    UNSUBSCRIBING = "UNSUBSCRIBING"
    """Nobody wants it any more; unsubscribe decided (or sent), not yet acknowledged."""

    def __str__(self) -> str:
        return self.value


_DESIRED = TopicState.DESIRED
_PENDING = TopicState.PENDING
_CONFIRMED = TopicState.CONFIRMED
_FAILED = TopicState.FAILED
_UNSUBSCRIBING = TopicState.UNSUBSCRIBING


@dataclass(slots=True)
class TopicRecord:
    """One topic's state, reference count and pin."""

    topic: str
    state: TopicState = TopicState.DESIRED
    refs: int = 0
    """Observers of the topic."""
    pinned: bool = False
    """Wanted without an observer (restored from a snapshot, or pinned by the host)."""
    resubscribe: bool = False
    """Wanted again while its unsubscribe was in flight: subscribe again once it is acked."""
    error: str = ""
    """Why the venue refused it (state FAILED)."""
    before_unsubscribe: TopicState | None = None
    """The state to go back to when wanted again before the unsubscribe was sent."""

    @property
    def wanted(self) -> bool:
        """Whether the host wants this topic (an observer or a pin)."""
        return self.refs > 0 or self.pinned


class SubscriptionRegistry:
    """Reference-counted, pinnable topic states; decides what to (un)subscribe and to restore.

    ``wanted_count`` is kept up to date on every change, so a per-connection cap is checked in
    O(number of topics asked for), never by scanning.
    """

    __slots__ = ("_desired", "_records", "_unsub", "_wanted")

    def __init__(self) -> None:
        self._records: dict[str, TopicRecord] = {}
        self._desired: dict[str, None] = {}  # topics in state DESIRED, in the order they got there
        self._unsub: dict[str, None] = {}  # unsubscribes decided, not yet sent
        self._wanted = 0

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, topic: object) -> bool:
        return topic in self._records

    # Queries ----------------------------------------------------------------------------------
    @property
    def wanted_count(self) -> int:
        """How many topics are wanted (observed or pinned): what they take of a connection's cap."""
        return self._wanted

    def count_new(self, topics: Iterable[str]) -> int:
        """How many of ``topics`` are not wanted yet (each would take one more slot)."""
        records = self._records
        return sum(1 for t in topics if (r := records.get(t)) is None or not r.wanted)

    def get(self, topic: str) -> TopicRecord | None:
        """The record of ``topic``, or None when the registry does not know it."""
        return self._records.get(topic)

    def records(self) -> list[TopicRecord]:
        """Every record (live objects: read, do not change)."""
        return list(self._records.values())

    def states(self) -> dict[str, TopicState]:
        """Every known topic and its state."""
        return {t: r.state for t, r in self._records.items()}

    def watched(self) -> list[str]:
        """Topics with at least one observer."""
        return [t for t, r in self._records.items() if r.refs > 0]

    def wanted(self) -> list[str]:
        """Topics the host wants: observed or pinned."""
        return [t for t, r in self._records.items() if r.wanted]

    def pinned(self) -> list[str]:
        """Topics pinned (wanted with or without observers)."""
        return [t for t, r in self._records.items() if r.pinned]

    def is_pinned(self, topic: str) -> bool:
        record = self._records.get(topic)
        return record is not None and record.pinned

    def in_state(self, *states: TopicState) -> list[str]:
        """Topics in any of ``states``."""
        return [t for t, r in self._records.items() if r.state in states]

    def to_subscribe(self) -> list[str]:
        """Wanted topics with no subscribe on the current connection (also: what to restore)."""
        records = self._records
        return [t for t in self._desired if records[t].wanted]

    def has_unsubscribes(self) -> bool:
        """Whether unsubscribes are waiting to be sent."""
        return bool(self._unsub)

    # Observers and pins ---------------------------------------------------------------------
    def acquire(self, topic: str) -> bool:
        """One more observer of ``topic``; True when it became desired (a subscribe will follow)."""
        record = self._records.get(topic)
        if record is None:
            record = self._records[topic] = TopicRecord(topic, refs=1)
            self._desired[topic] = None
            self._wanted += 1
            return True
        was_wanted = record.wanted
        record.refs += 1
        if not was_wanted:
            self._wanted += 1
            return self._revive(record)
        if record.refs == 1 and record.state is _FAILED:  # the first observer since it failed
            self._set(record, _DESIRED)
            record.error = ""
            return True
        return False

    def release(self, topic: str) -> bool:
        """One observer fewer; True when an unsubscribe must be sent (nobody wants it any more)."""
        record = self._records.get(topic)
        if record is None or record.refs == 0:
            return False
        record.refs -= 1
        if record.wanted:
            return False
        return self._unwant(record)

    def pin(self, topics: Iterable[str]) -> list[str]:
        """Want ``topics`` with no observer yet; returns those that became desired."""
        fresh = []
        for topic in topics:
            record = self._records.get(topic)
            if record is None:
                self._records[topic] = TopicRecord(topic, pinned=True)
                self._desired[topic] = None
                self._wanted += 1
                fresh.append(topic)
            elif not record.wanted:
                record.pinned = True
                self._wanted += 1
                if self._revive(record):
                    fresh.append(topic)
            else:
                record.pinned = True
        return fresh

    want = pin

    def unpin(self, topics: Iterable[str]) -> list[str]:
        """Take the pin off ``topics``; returns those that need an unsubscribe (no observer left)."""
        gone = []
        for topic in topics:
            record = self._records.get(topic)
            if record is None or not record.pinned:
                continue
            record.pinned = False
            if not record.wanted and self._unwant(record):
                gone.append(topic)
        return gone

    def _revive(self, record: TopicRecord) -> bool:
        """``record`` is wanted again (it was not); True when it became desired."""
        if record.state is _UNSUBSCRIBING:
            if record.topic in self._unsub:  # the unsubscribe never went out: as if nothing happened
                del self._unsub[record.topic]
                self._set(record, record.before_unsubscribe or _CONFIRMED)
                record.before_unsubscribe = None
            else:
                record.resubscribe = True
            return False
        if record.state is _FAILED:
            self._set(record, _DESIRED)
            record.error = ""
            return True
        return False  # pragma: no cover - unwanted records are UNSUBSCRIBING or gone

    def _unwant(self, record: TopicRecord) -> bool:
        """Nobody wants ``record`` any more; True when an unsubscribe must be sent."""
        self._wanted -= 1
        record.resubscribe = False
        if record.state is _PENDING or record.state is _CONFIRMED:
            record.before_unsubscribe = record.state
            record.state = _UNSUBSCRIBING
            self._unsub[record.topic] = None
            return True
        if record.state is not _UNSUBSCRIBING:
            self._drop(record.topic)  # never reached the venue: nothing to undo
        return False

    # Venue side -------------------------------------------------------------------------------
    def take_unsubscribes(self) -> list[str]:
        """The unsubscribes to send now (they count as sent from here on)."""
        if not self._unsub:
            return []
        topics = list(self._unsub)
        self._unsub.clear()
        return topics

    def sent(self, topics: Iterable[str]) -> None:
        """A subscribe for ``topics`` went out."""
        for topic in topics:
            record = self._records.get(topic)
            if record is not None and record.state is _DESIRED:
                self._set(record, _PENDING)

    def confirmed(self, topics: Iterable[str]) -> bool:
        """The venue acked a subscribe; True when some of them now need an unsubscribe (orphans)."""
        orphans = False
        for topic in topics:
            record = self._records.get(topic)
            if record is None:
                continue
            if record.state is _PENDING:
                record.state = _CONFIRMED
                record.error = ""
                if not record.wanted:  # pragma: no cover - release() never leaves one PENDING
                    record.before_unsubscribe = _CONFIRMED
                    record.state = _UNSUBSCRIBING
                    self._unsub[topic] = None
                    orphans = True
            elif record.state is _UNSUBSCRIBING and record.before_unsubscribe is _PENDING:
                record.before_unsubscribe = _CONFIRMED  # if revived before its unsubscribe is sent
        return orphans

    def failed(self, topics: Iterable[str], error: str) -> None:
        """The venue refused (or never answered) a subscribe for ``topics``."""
        for topic in topics:
            record = self._records.get(topic)
            if record is None:
                continue
            if not record.wanted:
                self._unsub.pop(topic, None)
                self._drop(topic)
            else:
                self._set(record, _FAILED)
                record.resubscribe = False
                record.error = error

    def unsubscribed(self, topics: Iterable[str]) -> list[str]:
        """The venue acked an unsubscribe; returns topics wanted again meanwhile (to subscribe)."""
        again = []
        for topic in topics:
            record = self._records.get(topic)
            if record is None or record.state is not _UNSUBSCRIBING or topic in self._unsub:
                continue
            if record.wanted:
                self._set(record, _DESIRED)
                record.resubscribe = False
                record.before_unsubscribe = None
                again.append(topic)
            else:
                self._drop(topic)
        return again

    def connection_lost(self) -> None:
        """The venue forgot everything: wanted topics go back to DESIRED, the rest are dropped."""
        self._unsub.clear()
        for topic in list(self._records):
            record = self._records[topic]
            if record.wanted:
                self._set(record, _DESIRED)
                record.resubscribe = False
                record.before_unsubscribe = None
            else:
                self._drop(topic)

    # Internals --------------------------------------------------------------------------------
    def _set(self, record: TopicRecord, state: TopicState) -> None:
        if record.state is _DESIRED:
            self._desired.pop(record.topic, None)
        record.state = state
        if state is _DESIRED:
            self._desired[record.topic] = None

    def _drop(self, topic: str) -> None:
        del self._records[topic]
        self._desired.pop(topic, None)
