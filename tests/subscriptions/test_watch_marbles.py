"""Reference counting, coalescing within a tick, (un)subscribe races, restore after reconnect, caps.

Virtual time with a MemoryTransport answered by a Responder; latency 0.25 s each way, so a
subscribe sent at t is acked at t + 0.5. What the client sent is read from ``peer.sent``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from reactivex.disposable import Disposable

from rxws import ExponentialBackoff, ReconnectPolicy, SubscriptionLimitExceeded, VenueError
from rxws.core.subscriptions import TopicState
from rxws.events import SubscriptionChanged, SubscriptionFailed, SubscriptionsRestored
from rxws.protocols import GenericJson

CONFIRMED = TopicState.CONFIRMED


def policy() -> ReconnectPolicy:
    return ReconnectPolicy(backoff=ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", stable_after=1000.0))


def sent(peer: Any) -> list[tuple[str, list[str]]]:
    """The (un)subscribe messages a peer received, as (op, args)."""
    out = []
    for frame in peer.sent:
        message = json.loads(frame)
        if message["op"] in ("subscribe", "unsubscribe"):
            out.append((message["op"], message["args"]))
    return out


class Watchers:
    """Named subscriptions to ``client.watch``, with what each saw."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.subs: dict[str, Disposable] = {}
        self.seen: dict[str, list[Any]] = {}
        self.errors: dict[str, Exception] = {}

    def watch(self, name: str, *topics: str) -> None:
        self.seen[name] = []
        self.subs[name] = self.client.watch(*topics).subscribe(
            lambda m: self.seen[name].append(m["data"]),
            lambda e: self.errors.__setitem__(name, e),
        )

    def dispose(self, *names: str) -> None:
        for name in names:
            self.subs.pop(name).dispose()


def test_two_watchers_share_one_subscription_and_the_last_dispose_unsubscribes(virtual: Any) -> None:
    client = virtual.client()
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: w.watch("one", "a"))
    virtual.at(3.0, lambda: w.watch("two", "a"))
    virtual.at(4.0, lambda: virtual.responder.publish("a", 1))
    virtual.at(5.0, lambda: w.dispose("one"))
    virtual.at(5.5, lambda: virtual.responder.publish("a", 2))
    virtual.at(6.0, lambda: w.dispose("two"))
    virtual.at(6.2, lambda: w.__setattr__("mid", client.subscriptions.states()))
    virtual.run(10.0)
    assert sent(virtual.transport.peer) == [("subscribe", ["a"]), ("unsubscribe", ["a"])]
    assert w.seen == {"one": [1], "two": [1, 2]}
    assert w.mid == {"a": TopicState.UNSUBSCRIBING}  # type: ignore[attr-defined]
    assert virtual.responder.topics() == []
    assert client.subscriptions.states() == {}
    assert client.subscriptions.registry.wanted_count == 0


def test_watches_and_disposals_in_one_tick_are_coalesced(virtual: Any) -> None:
    client = virtual.client()
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: (w.watch("a", "a"), w.watch("b", "b", "c"), w.watch("c", "c", "a")))
    virtual.at(3.0, lambda: w.dispose("a", "b", "c"))
    virtual.run(10.0)
    # one message each way; the unsubscribe lists topics in the order their last watcher left
    assert sent(virtual.transport.peer) == [("subscribe", ["a", "b", "c"]), ("unsubscribe", ["b", "c", "a"])]
    assert virtual.responder.topics() == []


def test_a_batch_follows_the_venue_limit_on_topics_per_message(virtual: Any) -> None:
    client = virtual.client(protocol=GenericJson(max_topics_per_message=2))
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: [w.watch(t, t) for t in "abcde"])
    virtual.at(3.0, lambda: w.dispose(*"abcde"))
    virtual.run(10.0)
    assert sent(virtual.transport.peer) == [
        ("subscribe", ["a", "b"]),
        ("subscribe", ["c", "d"]),
        ("subscribe", ["e"]),
        ("unsubscribe", ["a", "b"]),
        ("unsubscribe", ["c", "d"]),
        ("unsubscribe", ["e"]),
    ]


def test_watches_before_connect_go_out_in_one_batch_on_connect(virtual: Any) -> None:
    client = virtual.client()
    w = Watchers(client)
    virtual.at(0.5, lambda: (w.watch("a", "a"), w.watch("b", "b")))
    virtual.at(0.7, lambda: w.dispose("b"))  # never reached the venue: nothing to undo
    virtual.at(1.0, client.connect)
    virtual.run(10.0)
    assert sent(virtual.transport.peer) == [("subscribe", ["a"])]
    assert client.subscriptions.states() == {"a": CONFIRMED}


def test_dispose_and_rewatch_in_one_tick_sends_nothing(virtual: Any) -> None:
    client = virtual.client()
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: w.watch("old", "a", "b"))
    virtual.at(3.0, lambda: (w.dispose("old"), w.watch("new", "a")))
    virtual.at(4.0, lambda: (virtual.responder.publish("a", 1), virtual.responder.publish("b", 1)))
    virtual.run(10.0)
    # b is let go; a stays subscribed: no unsubscribe/subscribe pair for it
    assert sent(virtual.transport.peer) == [("subscribe", ["a", "b"]), ("unsubscribe", ["b"])]
    assert w.seen == {"old": [], "new": [1]}
    assert client.subscriptions.states() == {"a": CONFIRMED}
    changes = [(e.topic, e.state) for e in virtual.timeline.of(SubscriptionChanged)]
    assert changes == [("a", "DESIRED"), ("b", "DESIRED"), ("a", "CONFIRMED"), ("b", "CONFIRMED")]


def test_dispose_and_rewatch_before_the_subscribe_ack_sends_nothing_more(virtual: Any) -> None:
    client = virtual.client()
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: w.watch("old", "a"))  # sent at 2.0, acked at 2.5
    virtual.at(2.1, lambda: (w.dispose("old"), w.watch("new", "a")))
    virtual.run(10.0)
    assert sent(virtual.transport.peer) == [("subscribe", ["a"])]
    assert client.subscriptions.states() == {"a": CONFIRMED}


def test_rewatch_while_the_unsubscribe_is_in_flight_subscribes_again_after_its_ack(virtual: Any) -> None:
    client = virtual.client()
    w = Watchers(client)
    states: list[Any] = []
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: w.watch("old", "a"))  # confirmed at 2.5
    virtual.at(3.0, lambda: w.dispose("old"))  # unsubscribe sent at 3.0, acked at 3.5
    virtual.at(3.1, lambda: w.watch("new", "a"))
    virtual.at(3.2, lambda: states.append(client.subscriptions.states()))
    virtual.at(3.6, lambda: states.append(client.subscriptions.states()))
    virtual.at(5.0, lambda: virtual.responder.publish("a", "after"))
    virtual.run(10.0)
    assert sent(virtual.transport.peer) == [
        ("subscribe", ["a"]),
        ("unsubscribe", ["a"]),
        ("subscribe", ["a"]),
    ]
    assert states == [{"a": TopicState.UNSUBSCRIBING}, {"a": TopicState.PENDING}]
    assert virtual.responder.topics() == ["a"]
    assert client.subscriptions.states() == {"a": CONFIRMED}
    assert w.seen["new"] == ["after"]


def test_dispose_during_a_pending_subscribe_unsubscribes_once_and_rewatch_resubscribes(virtual: Any) -> None:
    client = virtual.client()
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: w.watch("old", "a"))  # subscribe sent at 2.0
    virtual.at(2.1, lambda: w.dispose("old"))  # unsubscribe sent at 2.1 (the subscribe is in flight)
    virtual.at(2.2, lambda: w.watch("new", "a"))  # wanted again: subscribe after the unsubscribe ack
    virtual.run(10.0)
    assert sent(virtual.transport.peer) == [
        ("subscribe", ["a"]),
        ("unsubscribe", ["a"]),
        ("subscribe", ["a"]),
    ]
    assert virtual.responder.topics() == ["a"]
    assert client.subscriptions.states() == {"a": CONFIRMED}


def test_restore_after_reconnect_reports_refused_topics(virtual: Any) -> None:
    client = virtual.client(protocol=GenericJson(max_topics_per_message=1), reconnect=policy())
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(1.5, lambda: [w.watch(t, t) for t in "abc"])
    virtual.at(2.5, lambda: virtual.responder.core.refuse_topics.add("b"))
    virtual.at(3.0, lambda: virtual.transport.peer.drop())  # seen at 3.25; reconnected at 4.5
    virtual.at(6.0, lambda: [virtual.responder.publish(t, "after") for t in "abc"])
    virtual.run(20.0)
    (restored,) = virtual.timeline.of(SubscriptionsRestored)
    assert (restored.confirmed, restored.failed) == (("a", "c"), ("b",))
    assert restored.at == 5.0
    (failed,) = virtual.timeline.of(SubscriptionFailed)
    assert (failed.topic, failed.code) == ("b", 404)
    assert isinstance(w.errors["b"], VenueError)
    assert set(w.errors) == {"b"}
    assert w.seen == {"a": ["after"], "b": [], "c": ["after"]}
    assert sent(virtual.transport.peers[1]) == [
        ("subscribe", ["a"]),
        ("subscribe", ["b"]),
        ("subscribe", ["c"]),
    ]
    assert client.subscriptions.states() == {"a": CONFIRMED, "c": CONFIRMED}
    assert sorted(virtual.responder.topics()) == ["a", "c"]


def test_topics_disposed_while_disconnected_are_not_restored(virtual: Any) -> None:
    client = virtual.client(reconnect=policy())
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(1.5, lambda: (w.watch("a", "a"), w.watch("b", "b")))
    virtual.at(3.0, lambda: virtual.transport.peer.drop())  # seen at 3.25; reconnected at 4.5
    virtual.at(3.5, lambda: w.dispose("b"))
    virtual.at(4.0, lambda: w.watch("c", "c"))  # watched while disconnected: subscribed on reconnect
    virtual.run(20.0)
    (restored,) = virtual.timeline.of(SubscriptionsRestored)
    assert (restored.confirmed, restored.failed) == (("a", "c"), ())
    assert sent(virtual.transport.peers[1]) == [("subscribe", ["a", "c"])]
    assert sorted(virtual.responder.topics()) == ["a", "c"]


def test_watch_past_the_protocol_cap_errors_the_watcher(virtual: Any) -> None:
    client = virtual.client(protocol=GenericJson(max_topics_per_connection=2))
    w = Watchers(client)
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: (w.watch("ab", "a", "b"), w.watch("a-again", "a")))
    virtual.at(2.5, lambda: w.watch("bc", "b", "c"))  # c would be a third topic: all of it refused
    virtual.at(3.0, lambda: w.dispose("ab"))  # a is still watched; b is freed
    virtual.at(3.5, lambda: w.watch("c", "c"))
    virtual.run(10.0)
    assert set(w.errors) == {"bc"}
    assert isinstance(w.errors["bc"], SubscriptionLimitExceeded)
    assert "cap of 2" in str(w.errors["bc"])
    assert client.subscriptions.states() == {"a": CONFIRMED, "c": CONFIRMED}
    assert sent(virtual.transport.peer) == [
        ("subscribe", ["a", "b"]),
        ("unsubscribe", ["b"]),
        ("subscribe", ["c"]),
    ]
    assert len(client.subscriptions) == 2


@pytest.mark.parametrize("cap", [1, 3])
def test_the_cap_counts_topics_not_watchers(virtual: Any, cap: int) -> None:
    client = virtual.client(protocol=GenericJson(max_topics_per_connection=cap))
    w = Watchers(client)
    for i in range(5):
        w.watch(f"w{i}", "x")  # one topic, five watchers
    assert w.errors == {}
    assert client.subscriptions.registry.wanted_count == 1
