"""rxws.ratelimit.VenueRateLimiter: connections, messages, subscriptions, penalties, events."""

from __future__ import annotations

import math

import pytest

from rxws.ratelimit import (
    Action,
    ConnectionReleased,
    PenaltyBox,
    PenaltyEnded,
    PenaltyPolicy,
    PenaltyStarted,
    RateLimitEvent,
    RateLimitEventAdapter,
    Rejected,
    Rule,
    Scope,
    Signal,
    SlidingWindow,
    VenueRateLimiter,
    ViolationReported,
    WebSocketRateLimiter,
    classify_violation,
)


def make(**kw: object) -> tuple[VenueRateLimiter, list[RateLimitEvent]]:
    limiter = VenueRateLimiter(ip="10.0.0.1", **kw)  # type: ignore[arg-type]
    events: list[RateLimitEvent] = []
    limiter.add_listener(events.append)
    return limiter, events


def test_implements_the_protocol() -> None:
    assert isinstance(VenueRateLimiter(), WebSocketRateLimiter)


def test_concurrent_connection_cap_and_release() -> None:
    limiter, events = make(max_connections={Scope.IP: 2})
    assert limiter.acquire_connect("a", 0.0).allowed
    assert limiter.acquire_connect("b", 0.0).allowed
    assert limiter.acquire_connect("a", 0.0).allowed, "re-acquiring an open id takes no new slot"
    d = limiter.acquire_connect("c", 1.0)
    assert d == (False, math.inf), "only a release frees a slot"
    assert events == [
        Rejected(at=1.0, action=Action.CONNECT, conn_id="c", why="connections", retry_after=math.inf)
    ]
    assert limiter.open_connections() == 2
    limiter.release_connection("a", 2.0)
    limiter.release_connection("a", 2.0)  # idempotent
    assert events[-1] == ConnectionReleased(at=2.0, conn_id="a")
    assert len(events) == 2
    assert limiter.acquire_connect("c", 3.0).allowed
    assert limiter.open_connections() == 2


def test_per_connection_identity_overrides() -> None:
    limiter, _ = make(max_connections={Scope.IP: 1})
    assert limiter.acquire_connect("a", 0.0).allowed
    assert limiter.acquire_connect("b", 0.0, ip="10.0.0.2").allowed, "another IP has its own cap"
    assert limiter.open_connections(Scope.IP, "10.0.0.2") == 1


def test_connection_rate_rejects_with_retry_after() -> None:
    limiter, events = make(connect=[SlidingWindow(2, 10.0)])
    assert limiter.acquire_connect("a", 0.0).allowed
    assert limiter.acquire_connect("b", 1.0).allowed
    d = limiter.acquire_connect("c", 2.0)
    assert not d.allowed and d.retry_after == pytest.approx(8.0)
    assert events[-1].kind == "rejected" and events[-1].why == "rate"  # type: ignore[union-attr]


def test_messages_per_connection_and_release_resets_them() -> None:
    limiter, events = make(message=[SlidingWindow(5, 1.0)])
    limiter.acquire_connect("a", 0.0)
    assert sum(limiter.acquire_message("a", 0.0).allowed for _ in range(10)) == 5
    assert sum(limiter.acquire_message("b", 0.0).allowed for _ in range(10)) == 5
    assert events == [], "no event per allowed message, none for a plain rate refusal"
    limiter.release_connection("a", 0.1)
    assert limiter.acquire_message("a", 0.1).allowed, "a new connection starts with a fresh budget"


def test_subscriptions_topic_cap_and_release() -> None:
    limiter, events = make(max_topics_per_connection=10, subscribe=[SlidingWindow(100, 1.0)])
    assert limiter.acquire_subscribe("a", 0.0, 6).allowed
    d = limiter.acquire_subscribe("a", 0.0, 5)
    assert d == (False, math.inf)
    assert events[-1] == Rejected(
        at=0.0, action=Action.SUBSCRIBE, conn_id="a", why="topics", retry_after=math.inf
    )
    assert limiter.topics("a") == 6
    limiter.release_subscriptions("a", 1.0, 2)
    assert limiter.acquire_subscribe("a", 1.0, 5).allowed
    assert limiter.topics("a") == 9
    with pytest.raises(ValueError):
        limiter.acquire_subscribe("a", 1.0, -1)


def test_subscribe_rate_counts_unsubscribes_when_asked() -> None:
    limiter, _ = make(subscribe=[SlidingWindow(3, 3600.0)], unsubscribe_counts=True)
    assert limiter.acquire_subscribe("a", 0.0, 1).allowed
    limiter.release_subscriptions("a", 1.0, 1)
    assert limiter.acquire_subscribe("a", 2.0, 1).allowed
    d = limiter.acquire_subscribe("a", 3.0, 1)
    assert not d.allowed and d.retry_after == pytest.approx(3597.0)


def test_penalty_blocks_every_action_then_ends_lazily() -> None:
    limiter, events = make(message=[SlidingWindow(5, 1.0)])
    limiter.acquire_connect("a", 0.0)
    seconds = limiter.report_violation("a", Signal.CLOSE_1008, 10.0)
    assert seconds == 1.0
    assert events[-2:] == [
        ViolationReported(at=10.0, conn_id="a", signal="close_1008"),
        PenaltyStarted(at=10.0, scope="ip:10.0.0.1", seconds=1.0),
    ]
    for acquire in (
        lambda: limiter.acquire_connect("b", 10.5),
        lambda: limiter.acquire_message("a", 10.5),
        lambda: limiter.acquire_subscribe("a", 10.5, 1),
        lambda: limiter.acquire_message("other-conn-same-ip", 10.5),
    ):
        d = acquire()
        assert d == (False, pytest.approx(0.5))
    assert [e.why for e in events if isinstance(e, Rejected)] == ["penalty"] * 4
    assert limiter.penalty_remaining("a", 10.75) == pytest.approx(0.25)
    n = len(events)
    assert limiter.acquire_message("a", 11.0).allowed
    assert events[n:] == [PenaltyEnded(at=11.0, scope="ip:10.0.0.1")]
    assert limiter.acquire_message("a", 11.0).allowed
    assert len(events) == n + 1, "PenaltyEnded once"


def test_penalty_grows_exponentially_caps_and_resets_after_quiet() -> None:
    policy = PenaltyPolicy(initial=1.0, factor=2.0, max=5.0, reset_after=60.0)
    limiter, _ = make(penalty=policy)
    now, got = 0.0, []
    for _ in range(5):
        s = limiter.report_violation("a", Signal.HTTP_429, now)
        got.append(s)
        now += s  # the next violation right after the penalty ends
    assert got == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert limiter.report_violation("a", Signal.HTTP_429, now + 60.0) == 1.0, "reset after quiet"


def test_violations_extend_and_honour_retry_after() -> None:
    limiter, _ = make()
    assert limiter.report_violation("a", Signal.HTTP_418, 0.0, retry_after=120.0) == 120.0
    # A further violation mid-penalty never shortens it.
    assert limiter.report_violation("a", Signal.HTTP_429, 1.0) == 119.0
    assert limiter.acquire_connect("a", 100.0) == (False, pytest.approx(20.0))


def test_penalty_scope_can_be_the_connection_or_global() -> None:
    limiter, _ = make(penalty_scope=Scope.CONNECTION)
    limiter.report_violation("a", Signal.KRAKEN_EXCEEDED_MSG_RATE, 0.0)
    assert not limiter.acquire_message("a", 0.5).allowed
    assert limiter.acquire_message("b", 0.5).allowed
    limiter.report_violation("b", Signal.BYBIT_10006, 0.5, scope=Scope.GLOBAL)
    assert not limiter.acquire_message("z", 0.6).allowed
    # A UID penalty without a uid falls back to the IP.
    assert limiter.report_violation("c", Signal.DERIBIT_10028, 0.7, scope=Scope.UID) > 0
    assert limiter.penalty_remaining("other", 0.8) > 0


def test_listener_unsubscribe_and_listener_errors_surface_after_all_heard() -> None:
    limiter = VenueRateLimiter()
    heard: list[str] = []

    def bad(e: RateLimitEvent) -> None:
        raise RuntimeError("listener bug")

    remove_bad = limiter.add_listener(bad)
    remove = limiter.add_listener(lambda e: heard.append(e.kind))
    with pytest.raises(RuntimeError, match="listener bug"):
        limiter.report_violation("a", "close_1008", 0.0)
    assert heard == ["violation_reported", "penalty_started"]
    remove_bad()
    remove()
    remove()
    limiter.report_violation("a", "close_1008", 0.0)
    assert len(heard) == 2


def test_events_round_trip_through_the_discriminated_union() -> None:
    limiter, events = make(max_connections={Scope.IP: 1})
    limiter.acquire_connect("a", 0.0)
    limiter.acquire_connect("b", 0.0)
    limiter.report_violation("a", "okx_60014", 1.0)
    limiter.acquire_message("a", 3.0)
    limiter.release_connection("a", 4.0)
    kinds = [e.kind for e in events]
    assert kinds == [
        "rejected",
        "violation_reported",
        "penalty_started",
        "penalty_ended",
        "connection_released",
    ]
    for e in events:
        assert RateLimitEventAdapter.validate_python(e.model_dump()) == e
        assert RateLimitEventAdapter.validate_json(e.model_dump_json()) == e


def test_classify_violation() -> None:
    assert classify_violation(close_code=1008) == "close_1008"
    assert classify_violation(close_code=1000) is None
    assert classify_violation(http_status=429) == "http_429"
    assert classify_violation(http_status=418) == "http_418"
    assert classify_violation(http_status=500) is None
    assert classify_violation(venue="binance", code=-1003) == Signal.BINANCE_1003
    assert classify_violation(venue="Bybit", code=10006) == Signal.BYBIT_10006
    assert classify_violation(venue="deribit", code=10028) == Signal.DERIBIT_10028
    assert classify_violation(venue="deribit", message="too_many_requests") == Signal.DERIBIT_10028
    assert classify_violation(venue="okx", code="60014") == "okx_60014"
    assert classify_violation(venue="okx", code=51000) is None
    assert classify_violation(venue="kraken", message="EGeneral:Exceeded msg rate") == (
        Signal.KRAKEN_EXCEEDED_MSG_RATE
    )
    assert classify_violation(venue="kraken", message="EGeneral:Invalid arguments") is None
    assert classify_violation(code=-1003) is None


def test_penalty_box_forgets_keys_after_the_quiet_period() -> None:
    box = PenaltyBox(PenaltyPolicy(initial=1.0, reset_after=10.0))
    box.report("ip:x", 0.0)
    assert box.remaining("ip:x", 0.5) == 0.5
    assert box.ended("ip:x", 0.5) is False
    assert box.ended("ip:x", 2.0) is True
    assert box.ended("ip:x", 3.0) is False
    assert len(box) == 1
    box.ended("ip:x", 11.0)
    assert len(box) == 0


@pytest.mark.parametrize(
    "kw",
    [
        {"initial": 0.0},
        {"factor": 0.5},
        {"max": math.inf},
        {"initial": 10.0, "max": 5.0},
    ],
)
def test_invalid_penalty_policy(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="PenaltyPolicy"):
        PenaltyPolicy(**kw)


def test_invalid_caps() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        VenueRateLimiter(max_connections={Scope.IP: 0})
    with pytest.raises(ValueError, match="max_topics_per_connection"):
        VenueRateLimiter(max_topics_per_connection=0)


def test_rules_keep_their_scope_and_bare_algorithms_get_the_natural_one() -> None:
    limiter = VenueRateLimiter(
        connect=[SlidingWindow(1, 1.0)],
        message=[SlidingWindow(1, 1.0), Rule(SlidingWindow(9, 1.0), Scope.IP)],
    )
    assert [r.scope for r in limiter.connect_rules] == [Scope.IP]
    assert [r.scope for r in limiter.message_rules] == [Scope.CONNECTION, Scope.IP]
