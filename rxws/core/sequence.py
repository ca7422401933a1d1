"""Per-topic sequence and time tracking that turns missed data into ``GapDetected`` events.

:class:`SequenceTracker` keeps one small record per topic: the last sequence number seen, the
first number of the current contiguous run, the time of the last message, and whether a
connection loss happened since. Every data message goes through :meth:`SequenceTracker.observe`,
which returns the :class:`~rxws.events.GapDetected` the message reveals, or None.

Classification of a message ``Seq(first, last, prev, reset)`` against the topic's last number
``L`` and the start ``R`` of its contiguous run (the first number received since the last gap):

- **ok** (None), in this order:

  - ``reset`` (a snapshot that starts a new chain): whatever ``L``; the record adopts
    ``first``..``last`` and the run restarts at ``first``;
  - ``prev == L`` when the venue states ``prev``, **whatever** ``first`` and ``last`` are: this
    covers OKX's documented sequence reset after maintenance (``seqId < prevSeqId`` while
    ``prevSeqId`` equals the last ``seqId``) and its idle heartbeat (``seqId == prevSeqId == L``).
    The record adopts ``last``; when ``last < L`` the run restarts at ``first``;
  - ``prev`` not stated and ``first <= L + 1 <= last`` (contiguous, or overlapping and
    extending, as Binance's ``U <= L + 1 <= u`` rule allows).

- ``"duplicate"``: ``last <= L`` and ``first >= R`` — every number was already received in the
  current run. The record does not move.
- ``"regression"``: ``prev`` not stated, ``last <= L`` and ``first < R`` — the numbers went back
  past anything this run received (the venue restarted its numbering, or an old message
  arrived). The record adopts the new numbering, so the messages that follow are checked
  against it.
- ``"sequence"``: numbers were skipped — ``first > L + 1``, or ``prev != L`` (unless the message
  is a duplicate). With a stated ``prev`` the chain is the link, not the order of the numbers:
  ``prev != L`` with numbers below the run (OKX after a reset whose message was missed) is a
  ``"sequence"`` gap too. ``last_seq`` is ``L`` and ``next_seq`` is ``first``; the record adopts
  ``last`` and the run restarts at ``first``.

The first message of a topic (no ``L`` yet) is ok and starts the record.

Sequence gaps carry ``start`` = the time of the previous message and ``end`` = now.

Disconnections: the owner calls :meth:`SequenceTracker.disconnected` when the connection drops.
The first message of each tracked topic after that returns a ``"disconnect"`` gap whose
``start`` is the time of the topic's last message before the drop (or the time it began to be
tracked), ``end`` the time of this first message, and ``last_seq``/``next_seq`` the numbers on
either side; that gap takes the place of any sequence check for that one message. Topics
without sequence numbers (``seq=None``) get the same time windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Literal, NamedTuple

from rxws.events import GapDetected
from rxws.protocols.base import Seq

__all__ = ["GapKind", "SeqRecord", "SequenceTracker", "TopicMark"]

GapKind = Literal["disconnect", "sequence", "duplicate", "regression"]
"""What a gap is: a connection loss, a jump, a repeated range, or numbers going back."""


class TopicMark(NamedTuple):
    """What a tracker remembers of one topic, for persistence (:meth:`SequenceTracker.snapshot`)."""

    last_seq: int | None
    last_time: float | None


class SeqRecord:
    """What a tracker knows of one topic. Handed out by :meth:`SequenceTracker.record` so a hot
    path can call :meth:`advance` on it directly; it stays the topic's record until ``forget``."""

    __slots__ = ("dropped", "last_seq", "last_time", "run_start")

    def __init__(self, last_seq: int | None, last_time: float | None, dropped: bool) -> None:
        self.last_seq = last_seq
        self.run_start = last_seq
        self.last_time = last_time
        self.dropped = dropped

    def advance(self, seq: Seq, now: float) -> bool:
        """Take ``seq`` if it follows on from the last one (the common case); False otherwise,
        leaving the record as it was for :meth:`SequenceTracker.observe` to judge."""
        if self.dropped:
            return False
        seen = self.last_seq
        first, last, prev, _reset = seq
        if seen is None or last < first:
            return False
        if prev is None:
            if first != seen + 1:
                return False
        elif prev != seen:
            return False
        elif last < seen:  # the venue's documented reset: prev == L, numbers start lower
            self.run_start = first
        self.last_seq = last
        self.last_time = now
        return True


_Record = SeqRecord


class SequenceTracker:
    """Detects sequence gaps, duplicates, regressions and disconnect windows, per topic.

    Memory is one small record per topic; :meth:`forget` drops a topic's record.
    """

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}

    # Feeding ----------------------------------------------------------------------------
    def track(self, topic: str, now: float) -> None:
        """Start tracking ``topic`` before its first message (e.g. when it is subscribed).

        A connection loss before the topic's first message then reports a disconnect window
        starting at ``now``. Does nothing for a topic already tracked.
        """
        if topic not in self._records:
            self._records[topic] = _Record(None, now, False)

    def record(self, topic: str, now: float) -> SeqRecord:
        """The live record of ``topic`` (tracked from ``now`` if it was not): valid until
        :meth:`forget` or :meth:`clear`; :meth:`restore` updates it in place."""
        self.track(topic, now)
        return self._records[topic]

    def observe(self, topic: str, seq: Seq | None, now: float) -> GapDetected | None:
        """Record one data message of ``topic`` received at ``now``.

        Args:
            topic: the message's topic.
            seq: its sequence numbers, or None for a topic without them (times only).
            now: the scheduler time the message arrived.

        Returns:
            The gap this message reveals, or None when it follows on from the last one.

        Raises:
            ValueError: ``seq.first > seq.last``.
        """
        rec = self._records.get(topic)
        if rec is not None and seq is not None and rec.advance(seq, now):
            return None  # the fast path: it follows on from the last one
        if seq is not None and seq.first > seq.last:
            raise ValueError(f"sequence range of {topic!r} goes backwards: {seq.first} > {seq.last}")
        if rec is None:
            rec = _Record(None, None, False)
            self._records[topic] = rec
        gap: GapDetected | None = None
        if rec.dropped:
            rec.dropped = False
            gap = GapDetected(
                topic=topic,
                gap="disconnect",
                start=rec.last_time,
                end=now,
                last_seq=rec.last_seq,
                next_seq=None if seq is None else seq.first,
                at=now,
            )
            if seq is not None:
                rec.last_seq = seq.last
                rec.run_start = seq.first
        elif seq is not None:
            gap = self._check(topic, rec, seq, now)
        rec.last_time = now
        return gap

    def _check(self, topic: str, rec: _Record, seq: Seq, now: float) -> GapDetected | None:
        last = rec.last_seq
        if last is None or seq.reset:
            rec.last_seq, rec.run_start = seq.last, seq.first
            return None
        kind: GapKind
        if seq.prev is not None and seq.prev == last:
            if seq.last < last:
                rec.run_start = seq.first
            rec.last_seq = seq.last
            return None
        if seq.last <= last:
            run_start = last if rec.run_start is None else rec.run_start
            if seq.first >= run_start:
                kind = "duplicate"
            else:  # a stated prev that is not L: the chain broke, whichever way the numbers went
                kind = "regression" if seq.prev is None else "sequence"
                rec.last_seq, rec.run_start = seq.last, seq.first
        elif seq.prev is None and seq.first <= last + 1:
            rec.last_seq = seq.last
            return None
        else:
            kind = "sequence"
            rec.last_seq, rec.run_start = seq.last, seq.first
        return GapDetected(
            topic=topic,
            gap=kind,
            start=rec.last_time,
            end=now,
            last_seq=last,
            next_seq=seq.first,
            at=now,
        )

    def disconnected(self, now: float) -> None:
        """The connection dropped at ``now``: open a disconnect window on every tracked topic.

        Each window closes (and is reported by :meth:`observe`) at that topic's first message
        after reconnection. A second drop before then keeps the window's original start.
        """
        for rec in self._records.values():
            rec.dropped = True

    # Housekeeping -----------------------------------------------------------------------
    def forget(self, topic: str) -> None:
        """Stop tracking ``topic`` (e.g. after unsubscribing, or to accept a resync as new)."""
        self._records.pop(topic, None)

    def clear(self) -> None:
        """Stop tracking every topic."""
        self._records.clear()

    def pending(self) -> frozenset[str]:
        """Topics whose disconnect window is open (no message since the drop yet)."""
        return frozenset(t for t, r in self._records.items() if r.dropped)

    def mark(self, topic: str) -> TopicMark | None:
        """The last sequence number and message time of ``topic``, or None if untracked."""
        rec = self._records.get(topic)
        return None if rec is None else TopicMark(rec.last_seq, rec.last_time)

    def snapshot(self) -> dict[str, TopicMark]:
        """Every topic's :class:`TopicMark`, for persistence."""
        return {t: TopicMark(r.last_seq, r.last_time) for t, r in self._records.items()}

    def restore(
        self, marks: Mapping[str, TopicMark | tuple[int | None, float | None]], *, disconnected: bool = True
    ) -> None:
        """Load marks saved by :meth:`snapshot`, replacing those topics' records.

        Args:
            marks: topic -> ``(last_seq, last_time)``.
            disconnected: open a disconnect window on the restored topics (the default: data
                since the marks were taken may have been missed).
        """
        for topic, (last_seq, last_time) in marks.items():
            rec = self._records.get(topic)
            if rec is None:
                self._records[topic] = _Record(last_seq, last_time, disconnected)
            else:  # in place: hot paths may hold it (see record())
                rec.last_seq = rec.run_start = last_seq
                rec.last_time = last_time
                rec.dropped = disconnected

    def __contains__(self, topic: object) -> bool:
        return topic in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def topics(self) -> Iterable[str]:
        """The tracked topics."""
        return self._records.keys()
