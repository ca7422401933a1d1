"""One topic's messages from several sources (connections) merged into one stream, each once.

A :class:`TopicMerge` is pure (no I/O, no clock): the owner calls :meth:`TopicMerge.offer` with
every data message of the topic as a source received it, and delivers the message to the host
iff it returns True. What is not delivered is counted (``duplicates``). The merged output then
goes through :class:`~rxws.core.sequence.SequenceTracker`, so a gap is reported only when no
source delivered the missing range in time.

Sources are small ints chosen by the owner (e.g. a session number). A source is known from its
first offer, or earlier from :meth:`TopicMerge.add_source` (call it when the source subscribes
the topic: see restarts below). :meth:`TopicMerge.remove_source` forgets it. A lone source needs
no merge (it costs about one ``SequenceTracker.observe`` per message: see
``benchmarks/bench_merge.py``): an owner may create the merge when a second source joins and
:meth:`TopicMerge.seed` it with what the first one delivered.

**Sequenced messages** (``seq`` not None) are judged against the merged high-water mark ``M``
(the highest ``seq.last`` delivered in the current chain):

- delivered iff ``seq.last > M`` (then ``M = seq.last``); a message whose range straddles the
  mark (Binance diff depth ``U <= M < u``) is delivered, as Binance's book rule ("the first
  processed event should have ``U <= lastUpdateId + 1`` and ``u >= lastUpdateId + 1``") lets
  the book take it; otherwise it is a counted duplicate. So a venue's repeated message, OKX's
  idle heartbeat (``seqId == prevSeqId``) and Bybit's re-sent level-1 snapshot (same ``u``)
  are duplicates, even from a single source: they carry nothing new.
- A snapshot (``seq.reset``: OKX ``prevSeqId == -1``, Bybit ``type == "snapshot"``, Deribit
  ``type == "snapshot"``) carries the book up to its number: the same rule applies (a snapshot
  at or below ``M`` is older than what the host has; above ``M`` it is delivered).
- **Chain restarts.** A venue may restart its numbering: OKX after maintenance (``seqId <
  prevSeqId``, the documented reset), Bybit's ``u == 1`` snapshot ("the service restarted"),
  or an undocumented regression. A message is a restart *for its source* when it goes back on
  that source's own stream (``seq.last`` below the source's previous ``seq.last``) and it says
  so (``reset``, or ``last < prev``) or its numbers lie below every number delivered in the
  current chain (``first`` < the chain's start; the tracker's "regression"). Chains are counted
  (epochs). A restart from a source on the current chain opens a new chain: it is delivered
  and ``M`` restarts at its number (``restarts`` counts them). A source still on an older chain
  is *stale*: its copies are duplicates until its own numbers go back (it crossed the restart,
  received or not), which moves it to the current chain. So two sources seeing one restart open
  one new chain. If only stale sources remain, they are moved onto the current chain and ``M``
  becomes the highest of their numbers: a survivor is never swallowed for good (the tracker
  reports the jump).
- A source joins the chain current at its first offer, or at :meth:`TopicMerge.add_source`
  (at subscribe time): then, if a restart comes first, its first offer joins the new chain only
  at or below ``M`` (above, it is taken for the old chain's late snapshot). Without it a late
  old-chain first message would pass as new; with it a newcomer leading the new chain is a
  duplicate until another source catches up. Both need a restart during a subscription.
- Limits, shared with :class:`~rxws.core.sequence.SequenceTracker`: a restart whose own
  message every source missed and whose new numbers fall inside the current chain's range (not
  below its start) looks like duplicates until the numbers pass ``M``; and a source lagging
  behind another past a message only it received loses that message (it was superseded: the
  tracker reports the jump where the leader made it). Nothing is held back to reorder.

**Keyed messages** (``seq`` None, ``key`` not None: a dialect's
:meth:`~rxws.protocols.base.VenueProtocol.dedupe_key`, e.g. trade ids): delivered iff ``key``
was not delivered recently: the keys are held in two generations of sets (the current one and
the previous full one; when the current one holds ``window`` keys it becomes the previous one),
so the last ``window`` delivered keys are always remembered and never more than
``2 * window - 1``: O(1), no deletions (sets without tombstones stay small), allocated at the
first keyed message. A lagging copy older than that is delivered again.

**Neither** (no sequence, no key): delivered only from the primary source
(:meth:`TopicMerge.set_primary`; when there is none, the first source that offers becomes it,
and again after the primary is removed). Switching primary is the owner's decision.

:meth:`TopicMerge.caught_up` tells a rotation when a new source may take over: its latest offer
was delivered or was a copy of the latest delivered message (sequenced: ``seq.last == M`` on the
current chain; keyed: the latest delivered key); without sequence or key, any offer counts.
"""

from __future__ import annotations

from collections.abc import Hashable

from rxws.protocols.base import Seq, make_seq

__all__ = ["TopicMerge"]


class _Source:
    """What the merge knows of one source: its last number, its chain, whether it is caught up."""

    __slots__ = ("caught", "epoch", "last")

    def __init__(self, epoch: int) -> None:
        self.last: int | None = None
        self.epoch = epoch
        self.caught = False


class TopicMerge:
    """Merges one topic's messages from several sources, delivering each once (module docstring).

    Args:
        window: how many delivered keys are at least remembered to recognise keyed duplicates
            (at most twice as many are held).

    Raises:
        ValueError: ``window`` is smaller than 1.
    """

    __slots__ = (
        "_epoch",
        "_last_key",
        "_mark",
        "_old",
        "_primary",
        "_seen",
        "_sources",
        "_start",
        "_window",
        "delivered",
        "duplicates",
        "restarts",
    )

    def __init__(self, window: int = 4096) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self._window = window
        self._sources: dict[int, _Source] = {}
        self._mark: int | None = None
        self._start = 0  # the first number delivered in the current chain (valid once _mark is set)
        self._epoch = 0
        self._primary: int | None = None
        self._seen: set[Hashable] | None = None  # the current generation of keys
        self._old: set[Hashable] = set()  # the previous one
        self._last_key: Hashable | None = None
        self.delivered = 0
        """Messages delivered (offers that returned True)."""
        self.duplicates = 0
        """Offers not delivered: copies already delivered, superseded, or from a stale source."""
        self.restarts = 0
        """Chain restarts taken (and survivors moved onto the chain of a removed source)."""

    # Feeding ----------------------------------------------------------------------------
    def offer(self, source: int, seq: Seq | None, key: Hashable | None = None) -> bool:
        """Judge one message of the topic as ``source`` received it.

        Args:
            source: the source (connection) that received it.
            seq: its sequence numbers, or None when its channel has none.
            key: its dedupe key when ``seq`` is None (None: no key either).

        Returns:
            True to deliver it to the host; False for a counted duplicate.

        Raises:
            ValueError: ``seq.first > seq.last``.
        """
        try:
            src = self._sources[source]
        except KeyError:
            src = self._sources[source] = _Source(self._epoch)
        if seq is None:
            if key is None:
                return self._offer_primary(src, source)
            seen = self._seen
            if seen is not None and (key in seen or key in self._old):
                src.caught = key == self._last_key
                self.duplicates += 1
                return False
            return self._offer_key(src, key)
        first, last, _prev, _reset = seq
        own = src.last
        mark = self._mark
        if own is None or mark is None or last < own or first > last or src.epoch != self._epoch:
            return self._offer_rare(src, seq, own)
        src.last = last
        if last > mark:  # the common case: the source follows on, on the current chain
            self._mark = last
            src.caught = True
            self.delivered += 1
            return True
        src.caught = last == mark
        self.duplicates += 1
        return False

    def offer_number(self, source: int, number: int) -> bool:
        """:meth:`offer` of ``Seq(number, number)`` (a dialect's counter field: one number per
        message), judged the same without building the ``Seq``.

        Returns:
            True to deliver it to the host; False for a counted duplicate.
        """
        src = self._sources.get(source)
        mark = self._mark
        if src is None or mark is None or src.epoch != self._epoch:
            return self.offer(source, make_seq(number, number))
        own = src.last
        if own is None or number < own:
            return self.offer(source, make_seq(number, number))
        # offer()'s common path, with first == last == number
        src.last = number
        if number > mark:
            self._mark = number
            src.caught = True
            self.delivered += 1
            return True
        src.caught = number == mark
        self.duplicates += 1
        return False

    def offer_copy_number(self, source: int, number: int) -> bool:
        """:meth:`offer_copy` of ``Seq(number, number)`` (see :meth:`offer_number`)."""
        src = self._sources.get(source)
        if src is None:
            return False
        own = src.last
        mark = self._mark
        if own is None or mark is None or number < own or number > mark or src.epoch != self._epoch:
            return False  # offer() judges these
        src.last = number  # offer()'s common path for last <= mark
        src.caught = number == mark
        self.duplicates += 1
        return True

    def offer_copy(self, source: int, seq: Seq | None, key: Hashable | None = None) -> bool:
        """Take a copy of a message that was delivered already (e.g. its frame's text equals a
        delivered one's), if :meth:`offer` would count it as a plain duplicate.

        Returns:
            True when it is one: it was counted and ``source``'s state moved exactly as
            :meth:`offer` (which would have returned False) moves it. False when :meth:`offer`
            must judge it (an unknown, new or stale source, numbers going back on the source's
            own stream or past the mark, a key no longer remembered, no sequence and no key):
            nothing changed.
        """
        src = self._sources.get(source)
        if src is None:
            return False
        if seq is None:
            seen = self._seen
            if key is None or seen is None or not (key in seen or key in self._old):
                return False
            src.caught = key == self._last_key
            self.duplicates += 1
            return True
        first, last, _prev, _reset = seq
        own = src.last
        mark = self._mark
        if own is None or mark is None or last < own or first > last or src.epoch != self._epoch:
            return False  # offer() takes these to _offer_rare
        if last > mark:
            return False  # not a copy of anything delivered: offer() delivers it
        src.last = last  # offer()'s common path for last <= mark
        src.caught = last == mark
        self.duplicates += 1
        return True

    def _offer_rare(self, src: _Source, seq: Seq, own: int | None) -> bool:
        """:meth:`offer` of a sequenced message when the source is new or stale, its numbers go
        back, or nothing was delivered yet (module docstring)."""
        first, last, prev, reset = seq
        if first > last:
            raise ValueError(f"sequence range goes backwards: {first} > {last}")
        src.last = last
        mark = self._mark
        if src.epoch != self._epoch:  # on an older chain: stale
            if (last < own) if own is not None else (mark is not None and last <= mark):
                src.epoch = self._epoch  # it crossed the restart the others showed
            else:
                src.caught = False
                self.duplicates += 1
                return False
        elif (
            own is not None
            and last < own
            and (reset or (prev is not None and last < prev) or first < self._start)
        ):  # back on the source's own stream, saying so or below the chain: a new chain
            self._epoch = src.epoch = self._epoch + 1
            self._mark, self._start = last, first
            self.restarts += 1
            self.delivered += 1
            src.caught = True
            return True
        if mark is None or last > mark:
            if mark is None:
                self._start = first
            self._mark = last
            src.caught = True
            self.delivered += 1
            return True
        src.caught = last == mark
        self.duplicates += 1
        return False

    def _offer_key(self, src: _Source, key: Hashable) -> bool:
        """Deliver ``key``, not among the remembered ones: remember it (module docstring)."""
        seen = self._seen
        if seen is None:
            seen = self._seen = set()
        seen.add(key)
        if len(seen) >= self._window:
            self._old, self._seen = seen, set()
        self._last_key = key
        src.caught = True
        self.delivered += 1
        return True

    def _offer_primary(self, src: _Source, source: int) -> bool:
        """Deliver iff ``source`` is the primary (the first to offer when there is none)."""
        primary = self._primary
        if primary is None:
            self._primary = primary = source
        src.caught = True
        if source == primary:
            self.delivered += 1
            return True
        self.duplicates += 1
        return False

    # Sources ----------------------------------------------------------------------------
    def add_source(self, source: int) -> None:
        """Know ``source`` before its first message (call it when it subscribes the topic), so
        that a restart shown by another source meanwhile leaves its older messages out.
        Does nothing for a known source."""
        if source not in self._sources:
            self._sources[source] = _Source(self._epoch)

    def seed(self, source: int, last: int) -> None:
        """Start from a stream that ``source`` delivered up to ``last`` before this merge existed
        (e.g. the tracker's mark of a topic when a second session joins a lone one, which needs
        no merge): the mark becomes ``last`` if it is higher; nothing is counted."""
        src = self._sources.get(source)
        if src is None:
            src = self._sources[source] = _Source(self._epoch)
        src.last = last
        if self._mark is None or last > self._mark:
            if self._mark is None:
                self._start = last
            self._mark = last

    def remove_source(self, source: int) -> None:
        """Forget ``source`` (its connection closed). If it was the primary, there is none until
        :meth:`set_primary` or the next unsequenced, unkeyed offer. If the sources left are all
        on an older chain, they are moved to the current one (module docstring)."""
        src = self._sources.pop(source, None)
        if src is None:
            return
        if self._primary == source:
            self._primary = None
        rest = self._sources.values()
        if rest and all(s.epoch != self._epoch for s in rest):
            numbers = [s.last for s in rest if s.last is not None]
            for s in rest:
                s.epoch = self._epoch
            if numbers:
                self._mark = self._start = max(numbers)
            self.restarts += 1

    def set_primary(self, source: int) -> None:
        """Deliver unsequenced, unkeyed messages from ``source`` only, from now on."""
        self._primary = source

    # Reading ----------------------------------------------------------------------------
    def caught_up(self, source: int) -> bool:
        """Whether ``source``'s latest offer was delivered or was a copy of the latest delivered
        message (without sequence or key: whether it offered anything); False for an unknown
        source or one that has not offered yet."""
        src = self._sources.get(source)
        return src is not None and src.caught

    @property
    def primary(self) -> int | None:
        """The source whose unsequenced, unkeyed messages are delivered, or None."""
        return self._primary

    @property
    def mark(self) -> int | None:
        """The merged high-water mark: the highest number delivered in the current chain."""
        return self._mark

    @property
    def sources(self) -> frozenset[int]:
        """The known sources."""
        return frozenset(self._sources)

    @property
    def remembered(self) -> int:
        """How many keys are held for keyed dedupe (at least the last ``window`` delivered ones,
        at most ``2 * window - 1``)."""
        return len(self._old) + (0 if self._seen is None else len(self._seen))
