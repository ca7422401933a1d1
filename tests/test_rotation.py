"""Make-before-break rotation (rxws/_rotation.py) as marble tests in virtual time.

Each connection's data is scripted per peer (times are when the venue sends; a frame arrives
0.25 s later), the subscribe acks come from the Responder. The client connects at 1.0 (open at
1.25, topic acked at 1.75); ``rotate()`` at 3.0 opens the new connection at 3.25, whose
subscribe is acked at 3.75.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import Virtual
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rxws import ConnectionState, ReconnectPolicy
from rxws.events import Disconnected, GapDetected, Rotated, RotationFailed, RotationStarted, VenueNotice
from rxws.exceptions import ConnectFailed
from rxws.protocols import Binance, GenericJson
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport

S = ConnectionState


def _push(virtual: Virtual, at: float, connection: int, topic: str, seq: int | None) -> None:
    def send() -> None:
        peer = virtual.responder.sessions[connection][0]
        message: dict[str, Any] = {"topic": topic, "data": seq if seq is not None else at}
        if seq is not None:
            message["seq"] = seq
        peer.push(message)

    virtual.at(at, send)


def _watching(virtual: Virtual, *topics: str, **kwargs: Any) -> tuple[Any, list[Any]]:
    client = virtual.client(**kwargs)
    got: list[Any] = []
    for topic in topics:
        client.watch(topic).subscribe(got.append)
    virtual.at(1.0, client.connect)
    return client, got


def test_overlapping_sequences_reach_the_host_once_with_no_gap(virtual: Virtual) -> None:
    client, got = _watching(virtual, "t")
    for n in range(1, 6):
        _push(virtual, 2.0 + n / 10, 0, "t", n)  # 1..5 on the old connection
    outcome: list[Any] = []
    first: list[str | None] = []
    virtual.at(2.9, lambda: first.append(client.conn_id))
    virtual.at(3.0, lambda: client.rotate().subscribe(on_next=outcome.append, on_error=outcome.append))
    # old: 6..10 ahead of the new one; new: 7..11. The new one's first (7, at 3.8) continues what
    # was delivered (8 by then): it takes the topic, its 7 dropped, and reaches the mark with 8 (3.9)
    for n, at in zip(range(6, 11), (3.0, 3.2, 3.4, 3.6, 3.8), strict=True):
        _push(virtual, at, 0, "t", n)
    for n, at in zip(range(7, 12), (3.55, 3.65, 3.7, 3.9, 4.0), strict=True):
        _push(virtual, at, 1, "t", n)
    virtual.run(until=6.0)
    assert [m["seq"] for m in got] == list(range(1, 12))
    tl = virtual.timeline
    assert tl is not None
    assert not tl.of(GapDetected) and not tl.of(Disconnected)
    (started,) = tl.of(RotationStarted)
    (rotated,) = tl.of(Rotated)
    assert (started.at, started.reason, started.conn_id) == (3.0, "host", client.conn_id)
    assert first[0] is not None and started.conn_id != first[0]  # a connection of its own
    assert started.conn_id.startswith(f"{client.name}#")
    assert (rotated.at, rotated.switched, rotated.unsequenced) == (3.9, ("t",), ())
    assert rotated.overlap == 3.9 - 3.75
    assert outcome == [None]
    assert virtual.responder.sessions[0][0].client_close == (1000, "rotated")
    assert client.state_value is S.CONNECTED and S.ERROR not in tl.states
    _push(virtual, 6.0, 1, "t", 12)  # the new connection serves alone now
    virtual.run(until=7.0)
    assert got[-1]["seq"] == 12 and not tl.of(GapDetected)


def test_a_new_connection_ahead_of_the_old_one_waits_until_the_old_one_delivered_up_to_it(
    virtual: Virtual,
) -> None:
    client, got = _watching(virtual, "t")
    _push(virtual, 2.0, 0, "t", 1)
    virtual.at(3.0, client.rotate)
    # the old connection lags: 2..6 arrive at 4.0 .. 4.55; the new one subscribed after 2 was sent
    # and gets 3, 4, 5 early (3.85, 3.9, 3.95): 2 exists only on the old one. The new one's copies
    # are held until the old one delivered up to its first (2, at 4.0): then its 3, 4, 5 are merged
    # (delivered: the old one's later copies are duplicates) and it takes over at once
    for n, at in ((2, 3.75), (3, 3.85), (4, 3.95), (5, 4.05), (6, 4.3)):
        _push(virtual, at, 0, "t", n)
    for n, at in ((3, 3.6), (4, 3.65), (5, 3.7), (6, 4.2)):
        _push(virtual, at, 1, "t", n)
    virtual.run(until=5.0)
    assert [m["seq"] for m in got] == [1, 2, 3, 4, 5, 6]
    tl = virtual.timeline
    assert tl is not None
    assert not tl.of(GapDetected)
    (rotated,) = tl.of(Rotated)
    assert rotated.at == 4.0 and rotated.overlap == 4.0 - 3.75


def test_a_refused_new_connection_leaves_the_old_one_serving(virtual: Virtual) -> None:
    client, got = _watching(virtual, "t")
    _push(virtual, 2.0, 0, "t", 1)
    outcome: list[Any] = []

    def rotate() -> None:
        virtual.transport.refuse(1)
        client.rotate().subscribe(on_next=outcome.append, on_error=outcome.append)

    serving: list[str | None] = []
    virtual.at(2.9, lambda: serving.append(client.conn_id))
    virtual.at(3.0, rotate)
    _push(virtual, 3.5, 0, "t", 2)
    _push(virtual, 4.0, 0, "t", 3)
    virtual.run(until=5.0)
    assert [m["seq"] for m in got] == [1, 2, 3]
    tl = virtual.timeline
    assert tl is not None
    (failed,) = tl.of(RotationFailed)
    assert failed.at == 3.25 and "refused" in failed.detail  # refused after the latency
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectFailed)
    assert not tl.of(Rotated) and not tl.of(Disconnected) and not tl.of(GapDetected)
    assert client.state_value is S.CONNECTED and client._session is not None
    assert serving[0] is not None and client._session.conn_id == serving[0]


def test_an_unsequenced_topic_switches_after_the_overlap_and_says_so(virtual: Virtual) -> None:
    client, got = _watching(virtual, "u", rotation_overlap=0.5)
    for i in range(10):  # every 0.2 s on the old connection from 2.0 to 3.8
        _push(virtual, 2.0 + i / 5, 0, "u", None)
    virtual.at(3.0, client.rotate)
    for i in range(6):  # the new connection: 3.625 .. 4.875 (arrive 3.875 .. 5.125)
        _push(virtual, 3.625 + i / 4, 1, "u", None)
    virtual.run(until=6.0)
    tl = virtual.timeline
    assert tl is not None
    (rotated,) = tl.of(Rotated)
    # acked at 3.75, overlap over at 4.25: the first new-connection message after it (4.375)
    assert (rotated.at, rotated.switched, rotated.unsequenced) == (4.375, ("u",), ("u",))
    times = [m["data"] for m in got]
    old_ones = [round(2.0 + i / 5, 6) for i in range(10)]
    new_ones = [3.625 + i / 4 for i in range(6) if 3.625 + i / 4 + 0.25 >= 4.375]
    assert [round(t, 6) for t in times] == old_ones + new_ones


def test_a_new_connection_that_never_catches_up_fails_at_the_deadline_and_the_old_one_serves_on(
    virtual: Virtual,
) -> None:
    # deadline = open_timeout + subscribe_timeout + rotation_overlap = 2.0 + 1.0 + 0.5 after 3.0
    client, got = _watching(virtual, "t", open_timeout=2.0, subscribe_timeout=1.0, rotation_overlap=0.5)
    _push(virtual, 2.0, 0, "t", 1)
    first: list[str | None] = []
    virtual.at(2.5, lambda: first.append(client.conn_id))  # the connection serving before the rotation
    outcome: list[Any] = []
    virtual.at(3.0, lambda: client.rotate().subscribe(on_next=outcome.append, on_error=outcome.append))
    # the new connection gets 5, 6, 7; the old one stalls and sends 2..7 only at 7.0: the new one's
    # messages stay held (2..4 exist only on the old one), so it cannot take over
    for n, at in ((5, 3.6), (6, 3.7), (7, 3.8)):
        _push(virtual, at, 1, "t", n)
    for n in range(2, 8):
        _push(virtual, 7.0, 0, "t", n)
    virtual.run(until=8.0)
    tl = virtual.timeline
    assert tl is not None
    (failed,) = tl.of(RotationFailed)
    assert failed.at == 6.5 and "did not take over within 3.5s" in failed.detail
    assert len(outcome) == 1 and isinstance(outcome[0], Exception) and not tl.of(Rotated)
    assert virtual.responder.sessions[1][0].client_close == (1000, "rotation failed")
    assert [m["seq"] for m in got] == list(range(1, 8)) and not tl.of(GapDetected)
    assert first[0] is not None and client.conn_id == first[0]  # the old connection serves on


def test_a_sparse_topic_the_new_connection_has_nothing_of_switches_at_the_deadline(virtual: Virtual) -> None:
    # deadline = open_timeout + subscribe_timeout + rotation_overlap = 2.0 + 1.0 + 0.5 after 3.0
    client, got = _watching(
        virtual, "s", "busy", open_timeout=2.0, subscribe_timeout=1.0, rotation_overlap=0.5
    )
    _push(virtual, 2.0, 0, "s", 1)
    first: list[str | None] = []
    virtual.at(2.5, lambda: first.append(client.conn_id))  # the connection serving before the rotation
    virtual.at(3.0, client.rotate)
    _push(virtual, 3.3, 0, "s", 2)  # sent before the new connection subscribed (3.5): old one only
    for n in range(1, 41):  # "busy" every 0.1 s from 3.1: the new connection gets it from 3.6
        for connection in (0, 1) if 3.0 + n / 10 > 3.5 else (0,):
            _push(virtual, 3.0 + n / 10, connection, "busy", n)
    _push(virtual, 7.5, 1, "s", 3)  # after the rotation, on the new connection
    virtual.run(until=8.0)
    tl = virtual.timeline
    assert tl is not None
    (rotated,) = tl.of(Rotated)
    assert (rotated.at, rotated.switched, rotated.unsequenced) == (6.5, ("busy", "s"), ())
    assert not tl.of(RotationFailed) and not tl.of(GapDetected)
    assert [m["seq"] for m in got if m["topic"] == "s"] == [1, 2, 3]
    assert [m["seq"] for m in got if m["topic"] == "busy"] == list(range(1, 41))
    assert first[0] is not None and client.conn_id not in (None, first[0])  # the new one serves


class _Keyed(GenericJson):
    """GenericJson whose messages carry a trade id ``id`` (no sequence numbers)."""

    def dedupe_key(self, message: Any) -> Any:
        return message.get("id") if isinstance(message, dict) else None


def _push_keyed(virtual: Virtual, at: float, connection: int, trade_id: int) -> None:
    message = {"topic": "k", "id": trade_id, "data": trade_id}
    virtual.at(at, lambda: virtual.responder.sessions[connection][0].push(message))


@pytest.mark.parametrize("new_ahead", [True, False], ids=["new-ahead", "old-ahead"])
def test_a_keyed_topic_switches_whichever_connection_is_ahead(virtual: Virtual, new_ahead: bool) -> None:
    client, got = _watching(virtual, "k", protocol=_Keyed())
    for n in (1, 2, 3):
        _push_keyed(virtual, 2.0 + n / 10, 0, n)
    virtual.at(3.0, client.rotate)
    # trades 4..10 from 3.6 every 0.1 s, reaching one connection 0.3 s after the other; the stream
    # ends with the lagging connection's copies
    lag = (0.3, 0.0) if new_ahead else (0.0, 0.3)
    for n in range(4, 11):
        for connection in (0, 1):
            _push_keyed(virtual, 3.6 + (n - 4) / 10 + lag[connection], connection, n)
    virtual.run(until=6.0)
    tl = virtual.timeline
    assert tl is not None
    assert [m["id"] for m in got] == list(range(1, 11))
    (rotated,) = tl.of(Rotated)
    assert (rotated.switched, rotated.unsequenced) == (("k",), ())
    # ahead: the old one's copy of 4 (4.15) shows it delivered all it had before the new one's 4,
    # and the new one is at the front: it takes over. Behind: the new one's copy of 4 (4.15) is one
    # of what the old one delivered (up to 6): the topic switches (the old one's 7, arriving then
    # too, is dropped) and the new one takes over at its copy of 6, the latest delivered (4.35)
    assert rotated.at == (4.15 if new_ahead else 4.35) and not tl.of(RotationFailed)


def test_max_connection_age_rotates_each_connection_when_it_reaches_that_age(virtual: Virtual) -> None:
    client, _got = _watching(virtual, "quiet", max_connection_age=2.0)
    virtual.run(until=8.0)
    tl = virtual.timeline
    assert tl is not None
    # serving from 1.25: rotation at 3.25, new one acked at 4.0, quiet through the 1 s overlap:
    # takes over at 5.0, and is rotated in its turn at 7.0
    assert [(s.at, s.reason) for s in tl.of(RotationStarted)] == [(3.25, "max_age"), (7.0, "max_age")]
    assert [(r.at, r.switched, r.unsequenced) for r in tl.of(Rotated)] == [(5.0, ("quiet",), ())]
    assert client._session is not None and client._session.conn_id == tl.of(RotationStarted)[0].conn_id
    assert not tl.of(Disconnected) and client.state_value is S.CONNECTED


def _binance_with(policy: ReconnectPolicy) -> tuple[Virtual, Any]:
    virtual = Virtual()
    virtual.responder = Responder(dialect="binance")
    virtual.transport = MemoryTransport(latency=0.25, responder=virtual.responder)
    client, _got = _watching(virtual, "btcusdt@depth", protocol=Binance(), reconnect=policy)
    frame = virtual.responder.core.server.shutdown_notice(raw=False)
    virtual.at(3.5, lambda: virtual.responder.sessions[0][0].push(frame))
    virtual.run(until=6.0)
    return virtual, client


def test_a_shutdown_notice_rotates_when_the_policy_says_so() -> None:
    virtual, client = _binance_with(ReconnectPolicy(rotate_on_notice=True))
    tl = virtual.timeline
    assert tl is not None
    assert [(s.at, s.reason) for s in tl.of(RotationStarted)] == [(3.75, "notice")]
    (rotated,) = tl.of(Rotated)
    assert rotated.at == 5.5 and rotated.switched == ("btcusdt@depth",)  # acked 4.5, 1 s overlap
    assert virtual.responder.sessions[0][0].client_close == (1000, "rotated")
    assert virtual.responder.topics() == ["btcusdt@depth"] and client.state_value is S.CONNECTED


def test_a_shutdown_notice_the_host_declines_only_is_reported() -> None:
    seen: list[VenueNotice] = []

    def decline(notice: VenueNotice) -> bool:
        seen.append(notice)
        return False

    virtual, _client = _binance_with(ReconnectPolicy(rotate_on_notice=decline))
    tl = virtual.timeline
    assert tl is not None
    assert [n.notice for n in seen] == ["shutdown"] and tl.of(VenueNotice) == seen
    assert not tl.of(RotationStarted) and len(virtual.responder.sessions) == 1


# the old connection lags on 30, 31 and 36: the new one (from 31) is ahead of it until the end of
# the stream, and the old one's burst of 36..40 is the last thing to arrive (a run found it)
_OLD_BURST_LAST = [0] * 29 + [2, 6, 0, 0, 0, 0, 5, 0, 0, 0, 0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    old_lag=st.lists(st.integers(0, 6), min_size=40, max_size=40),
    new_lag=st.lists(st.integers(0, 6), min_size=40, max_size=40),
)
@example(old_lag=_OLD_BURST_LAST, new_lag=[0] * 40)
@example(old_lag=[0] * 19 + [14] * 21, new_lag=[0] * 30 + [14] * 10)
def test_any_interleaving_of_the_two_connections_gives_the_venues_sequence_once(
    old_lag: list[int], new_lag: list[int]
) -> None:
    _interleaved(old_lag, new_lag)


def test_a_rotation_ends_when_the_old_connections_lagging_copies_arrive_last() -> None:
    # new: 31..40 arrive 3.8 .. 4.25, ahead of the old one (30 at 3.85, 31..35 at 4.1, 36..40 at
    # 4.3): its messages are held until the old one delivered 30, then merged: it takes over then
    tl = _interleaved(_OLD_BURST_LAST, [0] * 40)
    (rotated,) = tl.of(Rotated)
    assert rotated.at == 3.85 and not tl.of(RotationFailed)


def test_a_sequenced_topic_quiet_through_the_overlap_waits_for_the_old_connections_late_numbers() -> None:
    # both connections stall 0.7 s from 20 (old) and 31 (new): nothing arrives from 3.2 to 3.95,
    # through the overlap (3.75 .. 3.85); the old one still carries 20..30, which only it has
    tl = _interleaved([0] * 19 + [14] * 21, [0] * 30 + [14] * 10)
    (rotated,) = tl.of(Rotated)
    assert rotated.at == 4.5  # at the new one's first message (31), a copy of the old one's


def _interleaved(old_lag: list[int], new_lag: list[int]) -> Any:
    """The venue sends 1..40 every 0.05 s from 2.05; the new connection (subscribed at 3.5) gets
    those sent after; each connection delays each frame by its own lag (in 0.05 s steps), in
    order (TCP): whatever the interleaving, the host sees 1..40 once each and no gap."""
    virtual = Virtual()
    client, got = _watching(virtual, "t", rotation_overlap=0.1)
    virtual.at(3.0, client.rotate)
    for connection, lags in ((0, old_lag), (1, new_lag)):
        pushed_at = 0.0
        for n in range(1, 41):
            sent = 2.0 + n / 20
            if connection == 1 and sent <= 3.5:
                continue
            pushed_at = max(pushed_at, sent + lags[n - 1] / 20)  # in order on each connection
            _push(virtual, pushed_at, connection, "t", n)
    virtual.run(until=8.0)
    assert [m["seq"] for m in got] == list(range(1, 41))
    tl = virtual.timeline
    assert tl is not None
    assert not tl.of(GapDetected) and len(tl.of(Rotated)) == 1 and not tl.of(RotationFailed)
    return tl
