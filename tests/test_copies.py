"""Tests for rxws/_copies.py: redundant connections' copies taken by their text, not decoded.

Unit tests of :class:`Copies` on a real :class:`TopicMerge`, then the client with
``redundancy=2`` in virtual time (both connections receive the same frame text): every message
reaches the host once, the twin's copies are not decoded, and what the merge counts is the same
as when every copy is decoded.
"""

from __future__ import annotations

from typing import Any

from harness import Virtual

from rxws._copies import Copies
from rxws._join_gate import JoinGate
from rxws.core.merge import TopicMerge
from rxws.protocols import GenericJson
from rxws.protocols.base import Seq

A, B = 0, 1


def _copies(
    window: int = 1024, max_length: int = 4096
) -> tuple[Copies, TopicMerge, JoinGate, dict[str, Any]]:
    merge = TopicMerge()
    gate = JoinGate()
    routes: dict[str, Any] = {"t": print}
    return Copies(routes.get, gate, window=window, max_length=max_length), merge, gate, routes


def _deliver(copies: Copies, merge: TopicMerge, source: int, frame: str, n: int) -> bool:
    """What a session and the redundancy's merged sink do with ``frame`` (numbered ``n``)."""
    if copies.screen(source)(frame):
        return False
    seq = Seq(n, n)
    if merge.offer(source, seq):
        copies.remember(source, "t", "t", merge, seq, None)
        return True
    return False


def test_a_copy_of_a_delivered_frame_is_taken_and_counted_by_the_merge() -> None:
    copies, merge, _gate, _routes = _copies()
    assert _deliver(copies, merge, A, "f1", 1) is True
    assert _deliver(copies, merge, B, "f1", 1) is False  # B's first offer: judged by the merge
    assert _deliver(copies, merge, A, "f2", 2) is True
    assert copies.screen(B)("f2") is True  # taken without decoding
    assert (merge.delivered, merge.duplicates) == (2, 2)
    assert merge.caught_up(B)


def test_an_unknown_frame_is_not_taken() -> None:
    copies, merge, _gate, _routes = _copies()
    assert copies.screen(A)("never seen") is False
    assert merge.duplicates == 0


def test_a_copy_is_not_taken_from_a_source_the_gate_holds_or_for_a_topic_no_longer_routed() -> None:
    copies, merge, gate, routes = _copies()
    _deliver(copies, merge, A, "f1", 1)
    _deliver(copies, merge, B, "f1", 1)
    _deliver(copies, merge, A, "f2", 2)
    gate.arm("t", B)
    assert copies.screen(B)("f2") is False  # the ordinary path releases the gate
    gate.release(B)
    del routes["t"]
    assert copies.screen(B)("f2") is False  # the ordinary path counts it as unrouted
    routes["t"] = print
    assert copies.screen(B)("f2") is True
    assert merge.duplicates == 2  # B's first copy, then this one: nothing counted twice


def test_a_copy_the_merge_would_not_judge_as_a_plain_duplicate_is_left_to_it() -> None:
    copies, merge, _gate, _routes = _copies()
    _deliver(copies, merge, A, "f5", 5)
    _deliver(copies, merge, B, "f5", 5)
    _deliver(copies, merge, B, "f6", 6)  # B leads now
    _deliver(copies, merge, A, "f7", 7)
    copies.remember(A, "t", "t", merge, Seq(3, 3), None)  # nothing being handled: kept nowhere
    assert copies.remembered == 3
    merge.offer(B, Seq(9, 9))  # B moved past 7: a copy of 7 now goes back on its own stream
    counted = (merge.delivered, merge.duplicates, merge.mark)
    assert copies.screen(B)("f7") is False
    assert (merge.delivered, merge.duplicates, merge.mark) == counted == (4, 1, 9)


def test_memory_is_two_generations_and_long_frames_are_not_kept() -> None:
    copies, merge, _gate, _routes = _copies(window=4, max_length=10)
    for n in range(1, 20):
        _deliver(copies, merge, A, f"f{n}", n)
        assert copies.remembered <= 8
    assert copies.screen(B)("f19") is False  # B is new on the topic: the merge judges it
    assert _deliver(copies, merge, B, "f19", 19) is False
    assert _deliver(copies, merge, A, "x" * 11, 20) is True
    assert copies.screen(B)("x" * 11) is False  # too long to be remembered
    assert _deliver(copies, merge, A, "f21", 21) is True
    assert copies.screen(B)("f21") is True
    assert copies.screen(B)("f1") is False  # forgotten: older than two generations
    copies.clear()
    assert copies.remembered == 0


class _Counting(GenericJson):
    """GenericJson counting the frames it decodes (its own decode: no orjson fast path)."""

    def __init__(self) -> None:
        super().__init__()
        self.decoded = 0

    def decode(self, frame: str | bytes) -> Any:
        self.decoded += 1
        return super().decode(frame)


def test_the_twins_copies_are_not_decoded_and_the_host_sees_each_message_once(virtual: Virtual) -> None:
    protocol = _Counting()
    client = virtual.client(redundancy=2, protocol=protocol)
    got: list[int] = []
    everything: list[Any] = []
    client.watch("t").subscribe(lambda m: got.append(m["seq"]))
    virtual.at(1.0, client.connect)
    virtual.run(until=2.4)
    before = protocol.decoded
    for i in range(20):
        virtual.at(2.5 + i / 10, lambda: virtual.responder.publish("t", 1))
    virtual.run(until=5.0)
    assert got == list(range(1, 21))
    assert client._redundancy is not None
    merge = client._redundancy._merges["t"]
    assert (merge.delivered, merge.duplicates) == (20, 20)
    assert protocol.decoded - before == 21  # 20 deliveries and the twin's first copy (new source)
    # With a ``messages`` observer, each copy still reaches it (decoded again for it).
    client.messages.subscribe(everything.append)
    for i in range(5):
        virtual.at(5.5 + i / 10, lambda: virtual.responder.publish("t", 1))
    virtual.run(until=7.0)
    assert got == list(range(1, 26))
    assert [m["seq"] for m in everything] == [n for n in range(21, 26) for _ in (0, 1)]
