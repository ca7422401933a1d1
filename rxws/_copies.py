"""Redundant connections' copies recognised by their text, before decoding.

Under ``redundancy=2`` every message arrives twice, once per connection, and the venue sends the
same bytes on both. :class:`Copies` remembers the frames recently delivered (their text, with
the topic and numbers the decoded message gave) and lets a session skip decoding a frame whose
text it already knows: the topic's :class:`~rxws.core.merge.TopicMerge` takes it with
:meth:`~rxws.core.merge.TopicMerge.offer_copy`, which counts it and moves the source's state
exactly as :meth:`~rxws.core.merge.TopicMerge.offer` would for that duplicate. Whatever
``offer_copy`` would not judge the same way (a source new or stale on the topic, a restart, a
source still held back by the join gate, a topic no longer routed) goes the ordinary way:
decoded, routed, merged. So the output is the same; a copy just costs a dictionary lookup
instead of a decode.

Memory is bounded: frames up to ``max_length`` characters (bytes, for binary frames) are
remembered, in two generations (the current one becomes the previous one once it holds
``window`` frames), so the last ``window`` such delivered frames are always remembered and never
more than ``2 * window``. A copy arriving later than that, or of a longer frame, is decoded as
before. The memory is cleared at
every (un)subscribe, since a dialect may route by what was subscribed (OKX remembers topic
arguments).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from rxws._join_gate import JoinGate
from rxws.core.merge import TopicMerge
from rxws.protocols.base import Seq
from rxws.transport.base import Frame

__all__: list[str] = []

# What a delivered frame gave when decoded: its routing key, topic, the topic's merge (kept for
# the client's life), its numbers (an int n for a dialect's counter field: Seq(n, n)) and dedupe key.
_Entry = tuple[Hashable, str, TopicMerge, Seq | int | None, Hashable | None]


class Copies:
    """The recently delivered frames of every topic (see the module docstring).

    Args:
        route: the router's lookup: a copy of a topic nobody watches any more is not taken.
        gate: the join gate: a copy from a source it holds back is not taken.
        sources: how many sources (connections) feed the merges.
        window: frames a generation holds at most.
        max_length: the longest frame remembered (characters of text, bytes of binary frames).
    """

    def __init__(
        self,
        route: Callable[[Hashable], Any],
        gate: JoinGate,
        *,
        sources: int = 2,
        window: int = 1024,
        max_length: int = 4096,
    ) -> None:
        self._route = route
        self._gate = gate
        self._window = window
        self._max_length = max_length
        self._recent: dict[Frame, _Entry] = {}
        self._older: dict[Frame, _Entry] = {}
        self._current: list[Frame | None] = [None] * sources  # each source's frame being handled

    def screen(self, source: int) -> Callable[[Frame], bool]:
        """The function a session of ``source`` calls on each frame before decoding it
        (``Session.hand_over(screen=...)``): True when the frame was taken as a counted copy."""
        current = self._current
        route, held = self._route, self._gate.held
        max_length = self._max_length

        def screen(frame: Frame) -> bool:
            entry = self._recent.get(frame) or self._older.get(frame)
            if entry is not None:
                route_key, topic, merge, seq, key = entry
                if (
                    not (held and (topic, source) in held)
                    and route(route_key) is not None
                    and (
                        merge.offer_copy_number(source, seq)
                        if type(seq) is int
                        else merge.offer_copy(source, seq, key)  # type: ignore[arg-type]
                    )
                ):
                    return True  # counted in the merge's duplicates
            current[source] = frame if len(frame) <= max_length else None  # remember() keeps it
            return False

        return screen

    def remember(
        self,
        source: int,
        route_key: Hashable,
        topic: str,
        merge: TopicMerge,
        seq: Seq | int | None,
        key: Hashable | None,
    ) -> None:
        """The frame ``source`` is handling was delivered (its message passed the merge): keep it
        (``seq`` an int ``n``: a counter field's number, ``Seq(n, n)``)."""
        current = self._current
        frame = current[source]
        if frame is None:
            return
        current[source] = None
        recent = self._recent
        recent[frame] = (route_key, topic, merge, seq, key)
        if len(recent) >= self._window:
            self._older = recent
            self._recent = {}

    def clear(self) -> None:
        """Forget every remembered frame (the subscriptions changed)."""
        self._recent = {}
        self._older = {}

    @property
    def remembered(self) -> int:
        """How many frames are remembered."""
        return len(self._recent) + len(self._older)
