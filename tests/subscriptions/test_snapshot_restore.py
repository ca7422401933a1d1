"""client.subscriptions: snapshots, atomic save/load, restore into a new client (pinned topics,
gap tracking resumed), pins, and verify() against the venue's own list — in virtual time."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rxws import ExponentialBackoff, ReconnectPolicy, SubscriptionLimitExceeded, UsageError
from rxws.core.snapshot import SCHEMA_VERSION, SubscriptionSnapshot, TopicSnapshot
from rxws.core.subscriptions import TopicState
from rxws.events import GapDetected, SubscriptionDrift
from rxws.exceptions import NotConnected, SnapshotError
from rxws.protocols import GenericJson
from rxws.protocols.bybit import Bybit
from rxws.subscriptions import SubscriptionManager, load_snapshot, save_snapshot

CONFIRMED = TopicState.CONFIRMED


def first_session(virtual: Any) -> tuple[Any, list[Any]]:
    """Connect at 1, watch a and b at 1.5 (confirmed at 2), a1 and b1 at 2 (seen 2.25), a2 at 3."""
    client = virtual.client()
    seen: list[Any] = []
    virtual.at(1.0, client.connect)
    virtual.at(1.5, lambda: client.watch("a", "b").subscribe(seen.append))
    virtual.at(2.0, lambda: (virtual.responder.publish("a", "a1"), virtual.responder.publish("b", "b1")))
    virtual.at(3.0, lambda: virtual.responder.publish("a", "a2"))
    return client, seen


def test_snapshot_lists_wanted_topics_with_state_and_last_sequence(virtual: Any) -> None:
    client, _ = first_session(virtual)
    virtual.run(4.0)
    before = datetime.now(UTC)
    snap = client.subscriptions.snapshot()
    assert isinstance(client.subscriptions, SubscriptionManager)
    assert client.subscriptions is client.subscriptions
    assert (snap.schema_version, snap.protocol, snap.venue) == (SCHEMA_VERSION, "generic", "venue.test")
    assert snap.url == "ws://venue.test/ws"
    assert [(t.topic, t.state, t.last_seq) for t in snap.topics] == [("a", CONFIRMED, 2), ("b", CONFIRMED, 1)]
    assert abs((snap.taken_at - before).total_seconds()) < 1.0
    a, b = snap.topics
    assert a.last_seen is not None and b.last_seen is not None
    # wall-clock times keep the scheduler's spacing: a's last message at 3.25, b's at 2.25
    assert (a.last_seen - b.last_seen).total_seconds() == pytest.approx(1.0, abs=1e-3)
    assert (snap.taken_at - a.last_seen).total_seconds() == pytest.approx(0.75, abs=1e-3)
    with pytest.raises(Exception, match="frozen"):
        snap.protocol = "other"  # type: ignore[misc]


def test_a_new_client_restores_the_snapshot_and_reports_a_disconnect_gap(
    virtual: Any, tmp_path: Path
) -> None:
    old, _ = first_session(virtual)
    virtual.run(4.0)
    path = tmp_path / "subs.json"
    wall_before_save = time.time()
    old.subscriptions.save(path)
    virtual.at(4.5, old.close)
    virtual.run(5.0)

    new = virtual.client()
    messages: list[Any] = []
    new.messages.subscribe(messages.append)
    restored = new.subscriptions.restore(SubscriptionManager.load(path))
    wall_between = time.time() - wall_before_save  # at least the wall time from snapshot to restore
    assert restored == ["a", "b"]
    assert new.subscriptions.pinned() == ["a", "b"]
    assert new.subscriptions.states() == {"a": TopicState.DESIRED, "b": TopicState.DESIRED}
    virtual.at(6.0, new.connect)  # the pinned topics go out in one subscribe on connect
    virtual.at(7.0, lambda: virtual.responder.publish("a", "a3"))
    virtual.run(8.0)
    assert sorted(virtual.responder.topics()) == ["a", "b"]
    assert [json.loads(f)["args"] for f in virtual.transport.peer.sent] == [["a", "b"]]
    assert [m["data"] for m in messages if "topic" in m] == ["a3"]
    assert new.stats.unrouted == 0
    (gap,) = virtual.timeline.of(GapDetected)
    assert (gap.topic, gap.gap, gap.last_seq, gap.next_seq, gap.end) == ("a", "disconnect", 2, 3, 7.25)
    # the window starts at a's last message before the snapshot, moved onto the new client's clock
    # through wall time: 0.75 s before the snapshot (taken at 4.0) and restored at 5.0 → 4.25, less
    # the wall time that passed between snapshot and restore (the virtual second took none; a loaded
    # machine may take a while), which the test brackets instead of guessing
    assert gap.start is not None
    assert 4.25 - wall_between - 1e-3 <= gap.start <= 4.25 + 1e-3
    assert new.subscriptions.states() == {"a": CONFIRMED, "b": CONFIRMED}


def test_a_watch_of_a_pinned_topic_shares_it_and_unpin_lets_it_go(virtual: Any) -> None:
    client = virtual.client()
    seen: list[Any] = []
    subs: list[Any] = []
    client.subscriptions.pin("a", "b")
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: subs.append(client.watch("a").subscribe(seen.append)))
    virtual.at(2.5, lambda: virtual.responder.publish("a", "x"))
    virtual.at(3.0, lambda: subs[0].dispose())  # pinned: stays subscribed
    virtual.at(4.0, lambda: client.subscriptions.unpin("a", "b"))
    virtual.at(5.0, lambda: client.subscriptions.unpin("a"))  # nothing left to unpin
    virtual.run(10.0)
    frames = [json.loads(f) for f in virtual.transport.peer.sent]
    assert [(f["op"], f["args"]) for f in frames] == [("subscribe", ["a", "b"]), ("unsubscribe", ["a", "b"])]
    assert [m["data"] for m in seen] == ["x"]
    assert client.subscriptions.states() == {}
    assert virtual.responder.topics() == []


def test_unpin_keeps_a_topic_someone_still_watches(virtual: Any) -> None:
    client = virtual.client()
    client.subscriptions.pin("a")
    client.watch("a").subscribe()
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: client.subscriptions.unpin("a"))
    virtual.run(10.0)
    assert client.subscriptions.states() == {"a": CONFIRMED}
    assert client.subscriptions.topics == ["a"]
    assert "a" in client.subscriptions


def test_restore_refuses_a_snapshot_of_another_protocol_or_venue_and_changes_nothing(virtual: Any) -> None:
    client = virtual.client()
    snap = SubscriptionSnapshot(
        protocol="binance", venue="venue.test", url="ws://venue.test/ws", taken_at=datetime.now(UTC),
        topics=(TopicSnapshot(topic="a", state=CONFIRMED),),
    )  # fmt: skip
    with pytest.raises(SnapshotError, match="'binance' protocol; this client speaks 'generic'"):
        client.subscriptions.restore(snap)
    other_host = snap.model_copy(update={"protocol": "generic", "venue": "elsewhere.example"})
    with pytest.raises(SnapshotError, match=r"venue 'elsewhere\.example'"):
        client.subscriptions.restore(other_host)
    old_schema = snap.model_copy(update={"protocol": "generic", "schema_version": 0})
    with pytest.raises(SnapshotError, match="schema version 0"):
        client.subscriptions.restore(old_schema)
    assert client.subscriptions.states() == {}
    assert client.subscriptions.restore(other_host, same_venue=False) == ["a"]
    assert client.subscriptions.pinned() == ["a"]


def test_restore_past_the_cap_raises_and_changes_nothing(virtual: Any) -> None:
    client = virtual.client(protocol=GenericJson(max_topics_per_connection=2))
    client.watch("x").subscribe()
    snap = SubscriptionSnapshot(
        protocol="generic", venue="venue.test", url="ws://venue.test/ws", taken_at=datetime.now(UTC),
        topics=tuple(TopicSnapshot(topic=t, state=CONFIRMED) for t in ("a", "b")),
    )  # fmt: skip
    with pytest.raises(SubscriptionLimitExceeded):
        client.subscriptions.restore(snap)
    assert client.subscriptions.topics == ["x"]


def test_restore_on_a_closed_client_is_a_usage_error(virtual: Any) -> None:
    client = virtual.client()
    snap = client.subscriptions.snapshot()
    client.close()
    virtual.run(1.0)
    with pytest.raises(UsageError):
        client.subscriptions.restore(snap)


def test_save_is_atomic_and_leaves_no_temp_file(virtual: Any, tmp_path: Path) -> None:
    client, _ = first_session(virtual)
    virtual.run(4.0)
    path = tmp_path / "subs.json"
    path.write_text("old content")
    snap = client.subscriptions.save(path)
    assert os.listdir(tmp_path) == ["subs.json"]
    assert load_snapshot(path) == snap
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_a_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "subs.json"
    path.write_text("old content")
    snap = SubscriptionSnapshot(protocol="generic", venue="v", url="ws://v/", taken_at=datetime.now(UTC))

    def broken(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        save_snapshot(snap, path)
    assert os.listdir(tmp_path) == ["subs.json"]
    assert path.read_text() == "old content"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"schema_version": 1, "protocol": "generic"', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema_version": 2, "protocol": "generic"}', "schema version 2; this rxws reads version 1"),
        ('{"schema_version": true}', "schema version True"),
        ('{"protocol": "generic"}', "schema version None"),
        ('{"schema_version": 1, "protocol": "generic"}', "first at venue: Field required"),
        (
            '{"schema_version": 1, "protocol": "generic", "venue": "v", "url": "ws://v", '
            '"taken_at": "2026-01-01T00:00:00Z", "topics": [{"topic": "a", "state": "WHAT"}]}',
            "first at topics.0.state",
        ),
        (
            '{"schema_version": 1, "protocol": "generic", "venue": "v", "url": "ws://v", '
            '"taken_at": "2026-01-01T00:00:00Z", "topics": [{"topic": "a", "state": "DESIRED"}, '
            '{"topic": "a", "state": "DESIRED"}]}',
            "'a' appears twice",
        ),
    ],
)
def test_a_corrupt_or_foreign_file_raises_a_clear_snapshot_error(
    tmp_path: Path, content: str | bytes, match: str
) -> None:
    path = tmp_path / "subs.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(SnapshotError, match=match) as info:
        load_snapshot(path)
    assert "subs.json" in str(info.value)


def test_a_missing_file_is_a_snapshot_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read snapshot") as info:
        load_snapshot(tmp_path / "nope.json")
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_snapshot_without_gap_detection_has_no_marks(virtual: Any) -> None:
    client = virtual.client(detect_gaps=False)
    client.watch("a").subscribe()
    virtual.at(1.0, client.connect)
    virtual.run(3.0)
    (entry,) = client.subscriptions.snapshot().topics
    assert (entry.topic, entry.state, entry.last_seq, entry.last_seen) == ("a", CONFIRMED, None, None)


# verify() -------------------------------------------------------------------------------------------
def outcome(virtual: Any, at: float, make: Any) -> list[Any]:
    seen: list[Any] = []
    virtual.at(at, lambda: make().subscribe(seen.append, lambda e: seen.append(e)))
    return seen


def test_verify_in_sync_reports_no_drift(virtual: Any) -> None:
    client, _ = first_session(virtual)
    result = outcome(virtual, 4.0, client.subscriptions.verify)
    virtual.run(6.0)
    assert result == [SubscriptionDrift(at=4.5)]
    assert virtual.timeline.of(SubscriptionDrift) == []
    assert json.loads(virtual.transport.peer.sent[-1]) == {"op": "list_subscriptions", "id": 2}


def test_verify_reports_drift_as_an_event(virtual: Any) -> None:
    client, _ = first_session(virtual)

    def tamper() -> None:  # the venue forgets b and invents z
        topics = virtual.responder.sessions[-1][1].topics
        del topics["b"]
        topics["z"] = None

    virtual.at(3.5, tamper)
    result = outcome(virtual, 4.0, client.subscriptions.verify)
    virtual.run(6.0)
    drift = SubscriptionDrift(at=4.5, missing_at_venue=("b",), unexpected_at_venue=("z",))
    assert result == [drift]
    assert virtual.timeline.of(SubscriptionDrift) == [drift]


def test_verify_ignores_topics_with_a_request_in_flight(virtual: Any) -> None:
    client, _ = first_session(virtual)
    virtual.at(4.0, lambda: client.watch("c").subscribe())  # subscribe in flight when listed
    result = outcome(virtual, 4.0, client.subscriptions.verify)
    virtual.run(6.0)
    assert result == [SubscriptionDrift(at=4.5)]


def test_verify_needs_a_connection_and_a_dialect_that_can_list(virtual: Any) -> None:
    client = virtual.client()
    not_connected = outcome(virtual, 0.5, client.subscriptions.verify)
    other = virtual.client(protocol=Bybit())  # Bybit has no way to list subscriptions
    cannot = outcome(virtual, 2.0, other.subscriptions.verify)
    virtual.at(1.0, other.connect)
    virtual.run(3.0)
    assert isinstance(not_connected[0], NotConnected)
    assert isinstance(cannot[0], UsageError)
    assert "bybit dialect cannot ask" in str(cannot[0])
    with pytest.raises(UsageError):
        client.subscriptions.verify(timeout=0)


def test_a_refused_pinned_topic_stays_wanted_and_is_routed_once_accepted(virtual: Any) -> None:
    virtual.responder.core.refuse_topics.add("a")
    client = virtual.client(reconnect=ReconnectPolicy(backoff=ExponentialBackoff(1.0, jitter="none")))
    messages: list[Any] = []
    client.messages.subscribe(messages.append)
    client.subscriptions.pin("a")
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: virtual.responder.core.refuse_topics.clear())
    virtual.at(3.0, lambda: virtual.transport.peer.drop())  # reconnected at 4.5, a accepted
    virtual.at(6.0, lambda: virtual.responder.publish("a", "x"))
    virtual.run(10.0)
    assert client.subscriptions.states() == {"a": CONFIRMED}
    assert [m["data"] for m in messages if "topic" in m] == ["x"]
    assert client.stats.unrouted == 0
