"""Request/response correlation: the table of requests waiting for their reply.

:class:`PendingTable` is sans-I/O: the client adds an entry per request with its deadline, pops it
by id when the reply arrives (O(1), whatever the number pending), asks which entries are due at
``now`` (one timer for the whole table, armed at :meth:`PendingTable.next_deadline`), and fails
every entry when the connection drops. Ids of requests that timed out are remembered (bounded) so
a late reply is recognised and counted instead of being mistaken for an unknown one.

A *streaming* entry answers with several frames (a venue that marks its replies as partial, see
:meth:`rxws.protocols.base.VenueProtocol.is_partial`): ``resolve(id, final=False)`` hands the
entry back for each part and leaves it pending, ``resolve(id)`` (final) takes it. An entry whose
last reply came through :meth:`PendingTable.complete` is remembered like a timed-out one, so a
copy that still comes counts as late.

Deadlines live in a FIFO and a heap, both with lazy deletion: a deadline no earlier than the
last one queued (the usual case: requests share one timeout, so their deadlines come in send
order) is appended to the FIFO, any other is pushed on the heap; the earliest deadline is the
earlier of the two heads. Answering a request costs no queue work; entries already answered are
skipped when their deadline comes up, and each queue is compacted when they outnumber the live
ones, so its size stays proportional to what is pending.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["IdGenerator", "PendingTable", "ReplyOutcome", "monotonic_ids"]

E = TypeVar("E")

IdGenerator = Callable[[], Hashable]
"""A source of unique request ids (ints by default; strings or UUIDs for venues that want them)."""


def monotonic_ids(start: int = 1) -> IdGenerator:
    """Ids 1, 2, 3, ... — unique per client, cheap, and easy to read in logs."""
    counter = itertools.count(start)
    return counter.__next__


class ReplyOutcome:
    """What a reply id turned out to be: a live request, a late reply, or unknown."""

    PENDING = "pending"
    PARTIAL = "partial"
    LATE = "late"
    UNKNOWN = "unknown"


class PendingTable(Generic[E]):
    """Entries waiting for a reply, keyed by request id.

    Args:
        remember_expired: how many timed-out ids to remember for recognising late replies.
    """

    __slots__ = (
        "_deadlines",
        "_entries",
        "_expired",
        "_fifo",
        "_order",
        "_orders",
        "_remember",
        "cancelled",
        "completed",
        "late_replies",
        "parts",
        "timeouts",
        "unknown_replies",
    )

    def __init__(self, *, remember_expired: int = 10_000) -> None:
        self._entries: dict[Hashable, E] = {}
        self._deadlines: list[tuple[float, int, Hashable]] = []  # the heap: out-of-order deadlines
        self._fifo: deque[tuple[float, int, Hashable]] = deque()  # deadlines in non-decreasing order
        self._orders: dict[Hashable, int] = {}  # which heap entry is the live one for an id
        self._order = itertools.count()
        self._expired: OrderedDict[Hashable, None] = OrderedDict()
        self._remember = remember_expired
        self.late_replies = 0
        self.unknown_replies = 0
        self.timeouts = 0
        self.cancelled = 0
        self.parts = 0
        self.completed = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, request_id: Hashable) -> bool:
        return request_id in self._entries

    def add(self, request_id: Hashable, entry: E, deadline: float | None = None) -> None:
        """Register a request, due at ``deadline`` (scheduler seconds; None: never).

        Raises:
            KeyError: ``request_id`` is already pending (ids must be unique).
        """
        entries = self._entries
        if request_id in entries:
            raise KeyError(f"request id {request_id!r} is already pending")
        entries[request_id] = entry
        if deadline is None:
            return
        fifo = self._fifo
        if fifo and deadline >= fifo[-1][0] and len(fifo) < 64:
            # The hot path: what _queue does for an in-order deadline while no compaction is due.
            order = next(self._order)
            self._orders[request_id] = order
            fifo.append((deadline, order, request_id))
            return
        self._queue(request_id, deadline)

    def _queue(self, request_id: Hashable, deadline: float) -> None:
        order = next(self._order)
        self._orders[request_id] = order
        fifo = self._fifo
        if not fifo or deadline >= fifo[-1][0]:  # in order (a shared timeout): no heap work
            fifo.append((deadline, order, request_id))
            if len(fifo) > 64 and len(fifo) > 2 * len(self._entries):
                self._compact_fifo()
            return
        deadlines = self._deadlines
        heapq.heappush(deadlines, (deadline, order, request_id))
        if len(deadlines) > 64 and len(deadlines) > 2 * len(self._entries):
            self._compact()

    def _head(self) -> tuple[float, int, Hashable] | None:
        """The earliest live deadline entry of either queue (dead heads dropped), left in place."""
        deadlines, fifo, orders = self._deadlines, self._fifo, self._orders
        while deadlines and orders.get(deadlines[0][2]) != deadlines[0][1]:
            heapq.heappop(deadlines)
        while fifo and orders.get(fifo[0][2]) != fifo[0][1]:
            fifo.popleft()
        if not fifo:
            return deadlines[0] if deadlines else None
        if not deadlines:
            return fifo[0]
        return min(deadlines[0], fifo[0])

    def next_deadline(self) -> float | None:
        """The earliest deadline of a request still pending, or None."""
        head = self._head()
        return None if head is None else head[0]

    def due(self, now: float) -> list[tuple[Hashable, E]]:
        """Expire and return every request whose deadline is ``<= now``, earliest first."""
        out: list[tuple[Hashable, E]] = []
        while (head := self._head()) is not None and head[0] <= now:
            if self._fifo and self._fifo[0] is head:
                self._fifo.popleft()
            else:
                heapq.heappop(self._deadlines)
            request_id = head[2]
            entry = self.expire(request_id)  # live: _head() skipped ids answered or re-added
            assert entry is not None
            out.append((request_id, entry))
        return out

    def _compact(self) -> None:
        orders = self._orders
        self._deadlines = [d for d in self._deadlines if orders.get(d[2]) == d[1]]
        heapq.heapify(self._deadlines)

    def _compact_fifo(self) -> None:
        orders = self._orders
        self._fifo = deque(d for d in self._fifo if orders.get(d[2]) == d[1])

    def get(self, request_id: Hashable) -> E | None:
        """The entry pending under ``request_id``, left in place."""
        return self._entries.get(request_id)

    def take(self, request_id: Hashable) -> E | None:
        """The entry pending under ``request_id``, taken as :meth:`resolve` takes it for a final
        reply; None (nothing changed or counted) when none is: :meth:`resolve` then tells a late
        reply from an unknown one."""
        try:
            entry = self._entries.pop(request_id, None)
        except TypeError:  # unhashable: never one of ours
            return None
        if entry is not None:
            self._orders.pop(request_id, None)
        return entry

    def resolve(self, request_id: Hashable, *, final: bool = True) -> tuple[str, E | None]:
        """Take the entry a reply answers: ``(PENDING, entry)``, ``(LATE, None)`` or ``(UNKNOWN, None)``.

        With ``final=False`` (one part of a multi-frame reply) a pending entry is handed back as
        ``(PARTIAL, entry)`` and stays pending, deadline included; the final part takes it.
        An unhashable id (a venue reply whose ``id`` is a JSON list or object) is ``UNKNOWN``:
        no request can be waiting for it.
        """
        try:
            if not final:
                part = self._entries.get(request_id)
                if part is not None:
                    self.parts += 1
                    return ReplyOutcome.PARTIAL, part
            entry = self._entries.pop(request_id, None)
            if entry is not None:
                self._orders.pop(request_id, None)
                return ReplyOutcome.PENDING, entry
            late = request_id in self._expired
        except TypeError:  # unhashable: never one of ours (the try costs nothing when nothing raises)
            late = False
        if late:
            del self._expired[request_id]
            self.late_replies += 1
            return ReplyOutcome.LATE, None
        self.unknown_replies += 1
        return ReplyOutcome.UNKNOWN, None

    def complete(self, request_id: Hashable) -> E | None:
        """Remove an entry that got its last reply (read with ``resolve(id, final=False)``); a
        copy that still comes will count as late. None when nothing is pending under the id."""
        entry = self._entries.pop(request_id, None)
        if entry is None:
            return None
        self._orders.pop(request_id, None)
        self.completed += 1
        self._remember_id(request_id)
        return entry

    def postpone(self, request_id: Hashable, deadline: float | None) -> bool:
        """Move the deadline of a pending entry (e.g. a streaming reply still sending parts);
        False when nothing is pending under the id."""
        if request_id not in self._entries:
            return False
        if deadline is None:
            self._orders.pop(request_id, None)
            return True
        self._queue(request_id, deadline)
        return True

    def _remember_id(self, request_id: Hashable) -> None:
        self._expired[request_id] = None
        if len(self._expired) > self._remember:
            self._expired.popitem(last=False)

    def expire(self, request_id: Hashable) -> E | None:
        """Remove a request whose deadline passed; a later reply to it will count as late."""
        entry = self._entries.pop(request_id, None)
        if entry is None:
            return None
        self._orders.pop(request_id, None)
        self.timeouts += 1
        self._remember_id(request_id)
        return entry

    def cancel(self, request_id: Hashable) -> E | None:
        """Remove a request its caller gave up on; a later reply to it will count as late."""
        entry = self._entries.pop(request_id, None)
        if entry is None:
            return None
        self._orders.pop(request_id, None)
        self.cancelled += 1
        self._remember_id(request_id)
        return entry

    def discard(self, request_id: Hashable) -> E | None:
        """Remove a request without remembering it (it was never sent: a reply cannot come)."""
        self._orders.pop(request_id, None)
        return self._entries.pop(request_id, None)

    def drain(self) -> list[tuple[Hashable, E]]:
        """Remove and return every pending entry (the connection is gone)."""
        entries, self._entries = self._entries, {}
        self._deadlines = []
        self._fifo = deque()
        self._orders = {}
        return list(entries.items())
