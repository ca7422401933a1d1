"""Redundant connections (rxws/_redundancy.py) as marble tests in virtual time.

The client connects at 1.0 with ``redundancy=2``: the primary opens at 1.25 (topic acked at
1.75), the twin opens at 1.5 (acked at 2.0). The venue publishes the same numbered message to
every subscribed connection every 0.1 s from 2.5 (it arrives 0.25 s later). A drop is followed,
through the host's policy (approving, 0.5 s backoff), by a new connection.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import Virtual
from hypothesis import given, settings
from hypothesis import strategies as st

from rxws import ConnectionState, ExponentialBackoff, ReconnectPolicy
from rxws.events import Disconnected, GapDetected, ReconnectProposed

S = ConnectionState
FIRST, LAST = 2.5, 6.0


def _redundant(virtual: Virtual, drops: list[tuple[float, int]]) -> tuple[Any, list[int]]:
    proposals: list[ReconnectProposed] = []

    def approve(proposal: ReconnectProposed) -> bool:
        proposals.append(proposal)
        return True

    backoff = ExponentialBackoff(0.5, 2.0, 60.0, jitter="none", stable_after=1000.0)
    client = virtual.client(redundancy=2, reconnect=ReconnectPolicy(backoff=backoff, approve=approve))
    got: list[int] = []
    client.watch("t").subscribe(lambda m: got.append(m["seq"]))
    virtual.at(1.0, client.connect)
    for i in range(round((LAST - FIRST) * 10) + 1):
        virtual.at(FIRST + i / 10, lambda: virtual.responder.publish("t", 1))
    for at, which in drops:
        virtual.at(at, lambda which=which: _live(virtual)[which].drop())
    virtual.run(until=LAST + 2.0)
    return client, got


def _live(virtual: Virtual) -> list[Any]:
    """The open connections, oldest first."""
    return [peer for peer, _session in virtual.responder.sessions if peer.open]


@pytest.mark.parametrize("which", [0, 1], ids=["primary", "twin"])
@pytest.mark.parametrize("at", [2.45, 2.5, 3.05, 3.51, 4.2, 5.99])
def test_dropping_either_connection_at_any_point_delivers_every_message_once(
    virtual: Virtual, which: int, at: float
) -> None:
    client, got = _redundant(virtual, [(at, which)])
    published = virtual.responder.core.seqs["t"]
    assert published == round((LAST - FIRST) * 10) + 1
    assert got == list(range(1, published + 1))
    tl = virtual.timeline
    assert tl is not None
    assert not tl.of(GapDetected)
    assert len(tl.of(Disconnected)) == 1 and len(virtual.responder.sessions) == 3  # one replaced
    assert len(_live(virtual)) == 2 and client.state_value is S.CONNECTED


def test_both_connections_dropped_over_the_same_range_is_exactly_one_gap(virtual: Virtual) -> None:
    client, got = _redundant(virtual, [(3.02, 1), (3.02, 0)])  # the twin, then the primary
    tl = virtual.timeline
    assert tl is not None
    (gap,) = tl.of(GapDetected)
    assert gap.gap == "disconnect" and gap.topic == "t"
    missing = sorted(set(range(1, virtual.responder.core.seqs["t"] + 1)) - set(got))
    assert missing and gap.last_seq == missing[0] - 1 and gap.next_seq == missing[-1] + 1
    assert got == sorted(set(got))  # once each, in order
    assert len(_live(virtual)) == 2 and client.state_value is S.CONNECTED


def test_a_twin_with_no_policy_is_not_replaced(virtual: Virtual) -> None:
    client = virtual.client(redundancy=2)
    got: list[int] = []
    client.watch("t").subscribe(lambda m: got.append(m["seq"]))
    virtual.at(1.0, client.connect)
    for i in range(10):
        virtual.at(FIRST + i / 10, lambda: virtual.responder.publish("t", 1))
    virtual.at(2.75, lambda: _live(virtual)[1].drop())
    virtual.run(until=5.0)
    assert got == list(range(1, 11))
    tl = virtual.timeline
    assert tl is not None
    (down,) = tl.of(Disconnected)
    twin_id = down.detail.removeprefix("redundant connection ").partition(": ")[0]
    assert twin_id.startswith(f"{client.name}#") and twin_id != client.conn_id  # the twin's own id
    assert not tl.of(ReconnectProposed) and len(virtual.responder.sessions) == 2
    assert client.state_value is S.CONNECTED


def _push(virtual: Virtual, at: float, connection: int, seq: int) -> None:
    message = {"topic": "t", "seq": seq, "data": seq}
    peer = lambda: virtual.responder.sessions[connection][0]  # noqa: E731
    virtual.at(at, lambda: peer().push(message) if peer().open else None)


@pytest.mark.parametrize("drop_at", [2.28, 2.6], ids=["before-2", "after-2"])
def test_a_twin_ahead_of_the_primary_is_held_and_its_messages_are_not_lost(
    virtual: Virtual, drop_at: float
) -> None:
    """The primary delivers 1 (2.05) and lags: 2 arrives at 2.55, 3..5 at 2.9. The twin subscribed
    after 2 was sent; its 3, 4, 5 arrive first (2.35 .. 2.5) and are held (2 exists only on the
    primary). The venue drops the primary at ``drop_at``: after it sent 2, the twin's held 3..5
    were merged when the primary delivered 2; before (the client learns at 2.53), they are merged
    when the twin is left alone (2 is lost with the primary: one gap, 2 only). Either way 3..5
    reach the host once, from the twin."""
    client = virtual.client(redundancy=2)
    got: list[int] = []
    client.watch("t").subscribe(lambda m: got.append(m["seq"]))
    virtual.at(1.0, client.connect)
    _push(virtual, 1.8, 0, 1)
    _push(virtual, 2.3, 0, 2)
    for n in (3, 4, 5):
        _push(virtual, 2.65, 0, n)
    for n, at in ((3, 2.1), (4, 2.2), (5, 2.25), (6, 2.9)):
        _push(virtual, at, 1, n)
    virtual.at(drop_at, lambda: virtual.responder.sessions[0][0].drop())
    virtual.run(until=4.0)
    tl = virtual.timeline
    assert tl is not None
    if drop_at < 2.55:
        assert got == [1, 3, 4, 5, 6]
        (gap,) = tl.of(GapDetected)
        assert (gap.last_seq, gap.next_seq) == (1, 3)
    else:
        assert got == [1, 2, 3, 4, 5, 6] and not tl.of(GapDetected)
    assert len(tl.of(Disconnected)) == 1


@settings(max_examples=50, deadline=None)
@given(
    lags=st.lists(st.lists(st.integers(0, 6), min_size=36, max_size=36), min_size=2, max_size=2),
    drop_at=st.integers(0, 35),
    which=st.integers(0, 1),
)
def test_any_interleaving_and_any_single_drop_gives_the_venues_sequence_once(
    lags: list[list[int]], drop_at: int, which: int
) -> None:
    """The venue sends 1..36 every 0.1 s from 2.5 to both connections; each delays each frame by
    its own lag (0.05 s steps, in order); one connection drops just before message ``drop_at``
    is sent and is replaced through the policy: the host sees 1..36 once each and no gap."""
    virtual = Virtual()
    client = virtual.client(
        redundancy=2,
        reconnect=ReconnectPolicy(
            backoff=ExponentialBackoff(0.5, 2.0, 60.0, jitter="none", stable_after=1000.0)
        ),
    )
    got: list[int] = []
    client.watch("t").subscribe(lambda m: got.append(m["seq"]))
    virtual.at(1.0, client.connect)
    last: dict[int, float] = {}  # connection -> when its latest frame was pushed (kept in order)

    def send(n: int) -> None:  # to every connection subscribed when the venue sends n
        for index, (peer, core) in enumerate(virtual.responder.sessions):
            if peer.open and "t" in core.topics:
                at = max(last.get(index, 0.0), virtual.now() + lags[index % 2][n - 1] / 20)
                last[index] = at
                message = {"topic": "t", "seq": n, "data": n}
                virtual.scheduler.schedule_absolute(at, lambda _s, _st, p=peer, m=message: p.push(m))

    for n in range(1, 37):
        virtual.at(FIRST + (n - 1) / 10, lambda n=n: send(n))
    virtual.at(FIRST + drop_at / 10 - 0.01, lambda: _live(virtual)[which].drop())
    virtual.run(until=FIRST + 8.0)
    tl = virtual.timeline
    assert tl is not None
    assert got == list(range(1, 37))
    assert not tl.of(GapDetected)


def test_close_completes_once_both_connections_closed(virtual: Virtual) -> None:
    client = virtual.client(redundancy=2, close_timeout=1.0)
    client.watch("t").subscribe(lambda _m: None)
    virtual.at(1.0, client.connect)
    virtual.at(
        2.5, lambda: setattr(virtual.responder.sessions[1][0], "answer_close", False)
    )  # the twin's venue
    closed_at: list[float] = []
    virtual.at(3.0, lambda: client.close().subscribe(on_next=lambda _v: closed_at.append(virtual.now())))
    virtual.run(until=5.0)
    primary, twin = (peer for peer, _core in virtual.responder.sessions)
    assert primary.client_close == twin.client_close == (1000, "")
    assert closed_at == [4.0]  # the primary closed at 3.25; the twin's close timed out at 4.0
    assert client.state_value is S.DISCONNECTED
