"""Tests for rxws.core.subscriptions: states, reference counts, pins, races, and the wanted count."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rxws.core.subscriptions import SubscriptionRegistry, TopicState

D, P, C, F, U = (
    TopicState.DESIRED,
    TopicState.PENDING,
    TopicState.CONFIRMED,
    TopicState.FAILED,
    TopicState.UNSUBSCRIBING,
)


def confirmed(*topics: str) -> SubscriptionRegistry:
    reg = SubscriptionRegistry()
    for topic in topics:
        reg.acquire(topic)
    reg.sent(topics)
    reg.confirmed(topics)
    return reg


def test_first_observer_desires_and_later_ones_share() -> None:
    reg = SubscriptionRegistry()
    assert reg.acquire("a") is True
    assert reg.acquire("a") is False
    assert reg.to_subscribe() == ["a"]
    reg.sent(["a"])
    assert reg.states() == {"a": P}
    assert reg.to_subscribe() == []
    assert reg.confirmed(["a"]) is False
    assert reg.states() == {"a": C}
    assert reg.release("a") is False
    assert reg.release("a") is True  # the last one: unsubscribe
    assert reg.states() == {"a": U}
    assert reg.take_unsubscribes() == ["a"]
    assert reg.take_unsubscribes() == []
    assert reg.unsubscribed(["a"]) == []
    assert len(reg) == 0


def test_release_before_anything_was_sent_forgets_the_topic() -> None:
    reg = SubscriptionRegistry()
    reg.acquire("a")
    assert reg.release("a") is False
    assert len(reg) == 0 and reg.to_subscribe() == []
    assert reg.release("a") is False  # unknown: nothing


def test_release_and_reacquire_before_the_unsubscribe_is_sent_cancels_out() -> None:
    reg = confirmed("a")
    reg.release("a")
    assert reg.has_unsubscribes()
    assert reg.acquire("a") is False
    assert reg.states() == {"a": C}
    assert reg.take_unsubscribes() == []
    assert reg.to_subscribe() == []


def test_pending_topic_released_and_revived_goes_back_to_pending_or_confirmed() -> None:
    reg = SubscriptionRegistry()
    reg.acquire("a")
    reg.acquire("b")
    reg.sent(["a", "b"])
    reg.release("a")
    reg.release("b")
    assert reg.states() == {"a": U, "b": U}
    reg.confirmed(["b"])  # b's ack arrives before it is wanted again
    reg.acquire("a")
    reg.acquire("b")
    assert reg.states() == {"a": P, "b": C}
    assert reg.take_unsubscribes() == []


def test_reacquire_after_the_unsubscribe_was_sent_subscribes_again_after_its_ack() -> None:
    reg = confirmed("a")
    reg.release("a")
    assert reg.take_unsubscribes() == ["a"]
    assert reg.acquire("a") is False
    assert reg.get("a").resubscribe is True  # type: ignore[union-attr]
    assert reg.to_subscribe() == []
    assert reg.unsubscribed(["a"]) == ["a"]
    assert reg.states() == {"a": D}
    assert reg.to_subscribe() == ["a"]


def test_wanted_again_and_let_go_again_while_the_unsubscribe_is_in_flight() -> None:
    reg = confirmed("a")
    reg.release("a")
    reg.take_unsubscribes()
    reg.acquire("a")
    assert reg.release("a") is False  # the unsubscribe already in flight covers it
    assert reg.take_unsubscribes() == []
    assert reg.unsubscribed(["a"]) == []
    assert len(reg) == 0


def test_refusal_keeps_watched_topics_failed_and_forgets_the_rest() -> None:
    reg = SubscriptionRegistry()
    reg.acquire("a")
    reg.acquire("b")
    reg.sent(["a", "b"])
    reg.release("b")  # pending and let go: UNSUBSCRIBING
    reg.failed(["a", "b"], "unknown topic")
    assert reg.states() == {"a": F}
    assert reg.get("a").error == "unknown topic"  # type: ignore[union-attr]
    assert reg.take_unsubscribes() == []
    assert reg.acquire("a") is False  # a second observer does not retry
    reg.release("a")
    reg.release("a")
    assert len(reg) == 0
    assert reg.wanted_count == 0


def test_the_first_observer_after_a_refusal_retries() -> None:
    reg = SubscriptionRegistry()
    reg.pin(["a"])
    reg.sent(["a"])
    reg.failed(["a"], "no")
    assert reg.states() == {"a": F}
    assert reg.acquire("a") is True
    assert reg.states() == {"a": D}
    assert reg.get("a").error == ""  # type: ignore[union-attr]


def test_pins_are_wanted_without_observers() -> None:
    reg = SubscriptionRegistry()
    assert reg.pin(["a", "b"]) == ["a", "b"]
    assert reg.pin(["a"]) == []
    assert reg.wanted_count == 2
    assert reg.to_subscribe() == ["a", "b"]
    reg.acquire("a")
    reg.release("a")
    assert reg.states() == {"a": D, "b": D}  # still pinned
    reg.sent(["a", "b"])
    reg.confirmed(["a", "b"])
    assert reg.unpin(["a", "b", "zz"]) == ["a", "b"]
    assert reg.take_unsubscribes() == ["a", "b"]
    assert reg.wanted_count == 0
    assert reg.pinned() == []


def test_pinning_a_topic_being_unsubscribed_revives_it() -> None:
    reg = confirmed("a")
    reg.release("a")
    assert reg.pin(["a"]) == []
    assert reg.states() == {"a": C}
    assert reg.is_pinned("a")
    assert not reg.has_unsubscribes()


def test_connection_lost_keeps_wanted_topics_desired_and_drops_the_rest() -> None:
    reg = confirmed("a", "b", "c")
    reg.pin(["p"])
    reg.release("b")
    reg.release("c")
    reg.take_unsubscribes()
    reg.acquire("c")  # resubscribe pending on c
    reg.connection_lost()
    assert reg.states() == {"a": D, "c": D, "p": D}
    assert reg.get("c").resubscribe is False  # type: ignore[union-attr]
    assert reg.to_subscribe() == ["a", "c", "p"]
    assert not reg.has_unsubscribes()


def test_wanted_count_and_count_new() -> None:
    reg = confirmed("a", "b")
    reg.release("b")
    assert reg.wanted_count == 1
    assert reg.count_new(["a", "b", "c"]) == 2
    assert reg.watched() == ["a"] and reg.wanted() == ["a"]
    assert reg.in_state(U) == ["b"]


OPS = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "release", "pin", "unpin", "flush", "ack", "nack", "lost"]),
        st.sampled_from("abc"),
    ),
    max_size=60,
)


@given(OPS)
def test_invariants_hold_for_any_sequence(ops: list[tuple[str, str]]) -> None:
    """A simulated venue that acks in order; the registry's view stays consistent with it."""
    reg = SubscriptionRegistry()
    refs = {t: 0 for t in "abc"}
    pins: set[str] = set()
    in_flight: list[tuple[str, list[str]]] = []
    venue: set[str] = set()
    for op, topic in ops:
        if op == "acquire":
            reg.acquire(topic)
            refs[topic] += 1
        elif op == "release" and refs[topic]:
            reg.release(topic)
            refs[topic] -= 1
        elif op == "pin":
            reg.pin([topic])
            pins.add(topic)
        elif op == "unpin":
            reg.unpin([topic])
            pins.discard(topic)
        elif op == "flush":
            unsubs = reg.take_unsubscribes()
            if unsubs:
                in_flight.append(("unsubscribe", unsubs))
            subs = reg.to_subscribe()
            if subs:
                reg.sent(subs)
                in_flight.append(("subscribe", subs))
        elif op in ("ack", "nack") and in_flight:
            kind, topics = in_flight.pop(0)
            if kind == "subscribe" and op == "ack":
                venue.update(topics)
                reg.confirmed(topics)
            elif kind == "subscribe":
                reg.failed(topics, "refused")
            else:
                venue.difference_update(topics)
                reg.unsubscribed(topics)
        elif op == "lost":
            in_flight.clear()
            venue.clear()
            reg.connection_lost()
        wanted = {t for t in "abc" if refs[t] or t in pins}
        assert set(reg.wanted()) == wanted
        assert reg.wanted_count == len(wanted)
        assert set(reg.to_subscribe()) == {t for t, s in reg.states().items() if s is D and t in wanted}
        for t, state in reg.states().items():
            if state is C:
                assert t in venue
    # settle: flush and ack everything until quiet (every retry succeeds now)
    for _ in range(10):
        unsubs = reg.take_unsubscribes()
        if unsubs:
            in_flight.append(("unsubscribe", unsubs))
        subs = reg.to_subscribe()
        if subs:
            reg.sent(subs)
            in_flight.append(("subscribe", subs))
        while in_flight:
            kind, topics = in_flight.pop(0)
            if kind == "subscribe":
                venue.update(topics)
                reg.confirmed(topics)
            else:
                venue.difference_update(topics)
                reg.unsubscribed(topics)
    wanted = {t for t in "abc" if refs[t] or t in pins}
    failed = set(reg.in_state(F))
    assert venue == wanted - failed
    assert set(reg.states()) == wanted
