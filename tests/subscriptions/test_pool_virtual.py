"""ConnectionPool in virtual time: placement under the cap, freed slots, merged streams, CONNECT
limits through a shared rate limiter, request routing and closing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rxws import ConnectionState, SubscriptionLimitExceeded, UsageError
from rxws.events import Connected
from rxws.pool import ConnectionPool
from rxws.protocols import GenericJson
from rxws.ratelimit import SlidingWindow
from rxws.ratelimit.venue import VenueRateLimiter

URL = "ws://venue.test/ws"
S = ConnectionState


def make_pool(virtual: Any, cap: int | None = 2, **kwargs: Any) -> ConnectionPool:
    kwargs.setdefault("protocol", GenericJson())
    return ConnectionPool(
        URL,
        max_topics_per_connection=cap,
        transport=virtual.transport,
        scheduler=virtual.scheduler,
        ping_interval=None,
        name="pool",
        **kwargs,
    )


def subscribed(peer: Any) -> list[list[str]]:
    return [json.loads(f)["args"] for f in peer.sent if json.loads(f)["op"] == "subscribe"]


def test_topics_fill_the_first_connection_with_room_and_data_flows_merged(virtual: Any) -> None:
    pool = make_pool(virtual)
    seen: list[Any] = []
    sub = pool.watch("a", "b", "c", "d", "e").subscribe(lambda m: seen.append(m["topic"]))
    assert pool.loads() == [2, 2, 1]
    assert [c.name for c in pool.clients] == ["pool[0]", "pool[1]", "pool[2]"]
    assert pool.connection_of("c") is pool.clients[1]
    virtual.at(1.0, pool.connect)
    virtual.at(2.0, lambda: [virtual.responder.publish(t) for t in "abcde"])
    virtual.run(5.0)
    assert [subscribed(p) for p in virtual.transport.peers] == [[["a", "b"]], [["c", "d"]], [["e"]]]
    assert sorted(seen) == list("abcde")
    assert pool.state_values == {"pool[0]": S.CONNECTED, "pool[1]": S.CONNECTED, "pool[2]": S.CONNECTED}
    sub.dispose()
    virtual.run(6.0)
    assert pool.loads() == [0, 0, 0]
    assert pool.topics == []
    assert all(not session.topics for _, session in virtual.responder.sessions)


def test_a_freed_slot_takes_the_next_new_topic_and_a_shared_topic_stays_put(virtual: Any) -> None:
    pool = make_pool(virtual)
    subs = {name: pool.watch(*topics).subscribe() for name, topics in {"ab": "ab", "c": "c"}.items()}
    again = pool.watch("c").subscribe()  # c already lives on connection 1
    assert pool.loads() == [2, 1]
    virtual.at(1.0, pool.connect)
    virtual.at(2.0, lambda: subs["ab"].dispose())
    virtual.at(3.0, lambda: pool.watch("d", "e", "f").subscribe())
    virtual.run(5.0)
    assert pool.loads() == [2, 2]
    assert [pool.connection_of(t).name for t in "cdef"] == ["pool[1]", "pool[0]", "pool[0]", "pool[1]"]  # type: ignore[union-attr]
    subs["c"].dispose()
    assert pool.connection_of("c") is pool.clients[1]  # still watched once
    again.dispose()
    assert pool.connection_of("c") is None
    assert len(virtual.transport.peers) == 2


def test_connections_opened_after_connect_connect_at_once(virtual: Any) -> None:
    pool = make_pool(virtual)
    states: list[tuple[str, S]] = []
    pool.states.subscribe(states.append)
    virtual.at(1.0, pool.connect)
    virtual.at(2.0, lambda: pool.watch("a", "b", "c").subscribe())
    virtual.run(6.0)
    assert pool.state_values == {"pool[0]": S.CONNECTED, "pool[1]": S.CONNECTED}
    assert [subscribed(p) for p in virtual.transport.peers] == [[["a", "b"]], [["c"]]]
    assert states == [
        ("pool[0]", S.DISCONNECTED),
        ("pool[0]", S.CONNECTING),
        ("pool[0]", S.CONNECTED),
        ("pool[1]", S.DISCONNECTED),
        ("pool[1]", S.CONNECTING),
        ("pool[1]", S.CONNECTED),
    ]


def test_the_connect_limit_spaces_new_connections(virtual: Any) -> None:
    limiter = VenueRateLimiter(connect=[SlidingWindow(1, 1.0)])
    pool = make_pool(virtual, cap=1, rate_limiter=limiter)
    connected: list[tuple[float, str]] = []
    pool.events.subscribe(lambda e: isinstance(e, Connected) and connected.append((e.at, e.url)))
    virtual.at(1.0, lambda: pool.watch("a", "b", "c").subscribe())
    virtual.at(1.0, pool.connect)
    virtual.run(10.0)
    assert pool.loads() == [1, 1, 1]
    # one connect per second: opened at 1, 2 and 3, each connected 0.25 s later
    assert [t for t, _ in connected] == [1.25, 2.25, 3.25]


def test_max_connections_refuses_the_whole_watch(virtual: Any) -> None:
    pool = make_pool(virtual, max_connections=2)
    pool.watch("a", "b", "c").subscribe()
    errors: list[Exception] = []
    pool.watch("c", "d", "e").subscribe(on_error=errors.append)
    assert isinstance(errors[0], SubscriptionLimitExceeded)
    assert "max_connections" in str(errors[0])
    # all or nothing: d (which had room) is not kept, and c is still watched once
    assert pool.loads() == [2, 1]
    assert sorted(pool.topics) == ["a", "b", "c"]
    assert pool.connection_of("d") is None


def test_configuration_is_checked() -> None:
    with pytest.raises(UsageError, match="over the venue's cap of 10"):
        ConnectionPool(URL, protocol=GenericJson(max_topics_per_connection=10), max_topics_per_connection=11)
    with pytest.raises(UsageError, match=">= 1"):
        ConnectionPool(URL, protocol=GenericJson(), max_topics_per_connection=0)
    pool = ConnectionPool(URL, protocol=GenericJson(max_topics_per_connection=10))
    assert pool.max_topics_per_connection == 10
    with pytest.raises(UsageError):
        pool.watch()


def test_without_a_cap_one_connection_carries_everything(virtual: Any) -> None:
    pool = make_pool(virtual, cap=None)
    pool.watch(*[f"t{i}" for i in range(50)]).subscribe()
    assert pool.loads() == [50]


def test_request_goes_to_the_first_connection_and_close_closes_all(virtual: Any) -> None:
    pool = make_pool(virtual)
    pool.watch("a", "b", "c").subscribe()
    replies: list[Any] = []
    done: list[str] = []
    pool.events.subscribe(on_completed=lambda: done.append("events"))
    pool.messages.subscribe(on_completed=lambda: done.append("messages"))
    virtual.at(1.0, pool.connect)
    virtual.at(2.0, lambda: pool.request("echo", {"x": 1}).subscribe(replies.append))
    virtual.at(3.0, lambda: pool.close().subscribe(on_completed=lambda: done.append("closed")))
    virtual.run(10.0)
    assert replies == [{"x": 1}]
    assert any('"op":"echo"' in f for f in virtual.transport.peers[0].sent)
    assert not any('"op":"echo"' in f for f in virtual.transport.peers[1].sent)
    assert pool.state_values == {"pool[0]": S.DISCONNECTED, "pool[1]": S.DISCONNECTED}
    assert sorted(done) == ["closed", "events", "messages"]
    assert pool.close() is pool.close()
    with pytest.raises(UsageError):
        pool.watch("z")
    failed: list[Exception] = []
    pool.connect().subscribe(on_error=failed.append)
    assert isinstance(failed[0], UsageError)


def test_sharding_and_redundancy_combine_each_shard_is_a_merged_pair(virtual: Any) -> None:
    pool = make_pool(virtual, redundancy=2)
    seen: list[tuple[str, int]] = []
    pool.watch("a", "b", "c").subscribe(lambda m: seen.append((m["topic"], m["seq"])))
    virtual.at(1.0, pool.connect)
    for i in range(6):
        virtual.at(2.5 + i / 2, lambda: [virtual.responder.publish(t) for t in "abc"])
    virtual.at(3.6, lambda: virtual.transport.peers[0].drop())  # shard 0 loses one of its pair
    virtual.run(7.0)
    carried = sorted(sorted(session.topics) for _, session in virtual.responder.sessions if session.topics)
    assert carried == [["a", "b"], ["a", "b"], ["c"], ["c"]]  # two shards, each held twice
    assert sorted(seen) == [(t, n) for t in "abc" for n in range(1, 7)]  # every message once
    assert pool.loads() == [2, 1]
    with pytest.raises(UsageError, match="redundancy"):
        make_pool(virtual, redundancy=3)
