"""rxws.ratelimit.RateLimiter: all-or-nothing rules, keyed scopes, cleanup, threads."""

from __future__ import annotations

import threading

import pytest

import rxws.ratelimit as rl
from rxws.ratelimit import (
    FixedWindow,
    LeakyBucket,
    RateLimiter,
    Rule,
    Scope,
    SlidingWindow,
    TokenBucket,
)


def test_all_rules_must_allow_and_a_refusal_spends_nothing() -> None:
    fast = SlidingWindow(5, 1.0)
    slow = SlidingWindow(7, 10.0)
    limiter = RateLimiter(fast, slow)
    admitted = sum(limiter.try_acquire(0.0).allowed for _ in range(10))
    assert admitted == 5, "5/s caps the burst"
    d = limiter.try_acquire(0.5)
    assert not d.allowed and d.retry_after == pytest.approx(0.5)
    # At 1 s the fast window is empty again, but only 2 remain of the slow one's 7.
    assert sum(limiter.try_acquire(1.0).allowed for _ in range(5)) == 2
    d = limiter.try_acquire(1.5)
    assert not d.allowed and d.retry_after == pytest.approx(8.5), "the longest wait wins"


def test_refused_by_one_rule_leaves_the_other_untouched() -> None:
    limiter = RateLimiter(Rule(SlidingWindow(1, 1.0)), Rule(SlidingWindow(3, 1.0)))
    assert limiter.try_acquire(0.0).allowed
    for _ in range(5):
        assert not limiter.try_acquire(0.1).allowed
    # If refusals had spent the 3/s budget, this would be refused.
    assert limiter.try_acquire(1.0).allowed


def test_keyed_scopes_keep_separate_budgets() -> None:
    limiter = RateLimiter(
        Rule(SlidingWindow(2, 1.0), Scope.CONNECTION), Rule(SlidingWindow(3, 1.0), Scope.IP)
    )
    a = {Scope.CONNECTION: "a", Scope.IP: "1.1.1.1"}
    b = {Scope.CONNECTION: "b", Scope.IP: "1.1.1.1"}
    c = {Scope.CONNECTION: "c", Scope.IP: "2.2.2.2"}
    assert [limiter.try_acquire(0.0, keys=a).allowed for _ in range(3)] == [True, True, False]
    assert [limiter.try_acquire(0.0, keys=b).allowed for _ in range(2)] == [True, False], "IP has 1 left"
    assert limiter.try_acquire(0.0, keys=c).allowed, "another IP is unaffected"
    assert len(limiter) == 5  # a, b, c connection states + two IPs


def test_a_scope_without_a_key_skips_its_rules() -> None:
    limiter = RateLimiter(Rule(SlidingWindow(1, 1.0), Scope.UID), Rule(SlidingWindow(3, 1.0)))
    assert sum(limiter.try_acquire(0.0).allowed for _ in range(5)) == 3
    assert not limiter.try_acquire(0.0, keys={Scope.UID: "u"}).allowed


def test_factories_and_weights() -> None:
    credits = Rule(lambda: TokenBucket(10_000, 1.0, 50_000), Scope.UID, weight=500)
    limiter = RateLimiter(credits)
    keys = {Scope.UID: "acct"}
    assert sum(limiter.try_acquire(0.0, keys=keys).allowed for _ in range(150)) == 100
    d = limiter.try_acquire(0.0, keys=keys)
    assert d.retry_after == pytest.approx(0.05)


def test_check_and_commit_compose_by_hand() -> None:
    limiter = RateLimiter(SlidingWindow(2, 1.0))
    assert limiter.check(0.0, 2).allowed
    limiter.commit(0.0, 3)  # a frame already sent counts even past the limit
    assert not limiter.check(0.9).allowed
    assert limiter.check(1.0, 2).allowed


def test_idle_keys_are_swept_and_connections_forgotten() -> None:
    limiter = RateLimiter(Rule(SlidingWindow(5, 1.0), Scope.CONNECTION), sweep_every=10.0)
    for i in range(1000):
        limiter.try_acquire(0.0, keys={Scope.CONNECTION: f"c{i}"})
    assert len(limiter) == 1000
    limiter.try_acquire(11.0, keys={Scope.CONNECTION: "fresh"})  # past sweep_every: sweep runs
    assert len(limiter) == 1
    limiter.forget(Scope.CONNECTION, "fresh")
    assert len(limiter) == 0
    limiter.try_acquire(12.0, keys={Scope.CONNECTION: "busy"})
    assert limiter.sweep(12.5) == 0, "a key still inside its window is kept"
    assert limiter.sweep(13.0) == 1


def test_memory_stays_bounded_under_key_churn() -> None:
    limiter = RateLimiter(Rule(LeakyBucket(10, 1.0), Scope.CONNECTION), sweep_every=1.0)
    peak = 0
    for step in range(5000):
        now = step * 0.01
        limiter.try_acquire(now, keys={Scope.CONNECTION: step})
        peak = max(peak, len(limiter))
    assert peak <= 250


def test_invalid_rules() -> None:
    with pytest.raises(ValueError, match="weight"):
        Rule(SlidingWindow(1, 1.0), weight=0)
    with pytest.raises(ValueError):
        Rule(SlidingWindow(1, 1.0), "planet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a rate-limit algorithm"):
        RateLimiter(Rule(lambda: "nope"))  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="sweep_every"):
        RateLimiter(sweep_every=0)
    with pytest.raises(ValueError, match="exceeds the capacity"):
        RateLimiter(FixedWindow(2, 1.0)).try_acquire(0.0, 3)


def test_string_scopes_are_accepted() -> None:
    limiter = RateLimiter(Rule(SlidingWindow(1, 1.0), "ip"))  # type: ignore[arg-type]
    assert limiter.rules[0].scope is Scope.IP
    assert limiter.try_acquire(0.0, keys={Scope.IP: "x"}).allowed
    assert not limiter.try_acquire(0.0, keys={"ip": "x"}).allowed  # type: ignore[dict-item]


def test_threads_never_get_more_than_the_limit() -> None:
    limiter = RateLimiter(SlidingWindow(1000, 60.0), SlidingWindow(700, 60.0))
    admitted = [0] * 8

    def worker(i: int) -> None:
        for _ in range(300):
            if limiter.try_acquire(1.0).allowed:
                admitted[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 700


def test_package_exports() -> None:
    assert sorted(rl.__all__) == sorted(set(rl.__all__))
    for name in rl.__all__:
        assert hasattr(rl, name), name
    for name in (
        "TokenBucket",
        "LeakyBucket",
        "SlidingWindow",
        "SlidingWindowCounter",
        "FixedWindow",
        "Decision",
        "RateLimiter",
        "WebSocketRateLimiter",
        "VenueRateLimiter",
        "RateLimitEvent",
    ):
        assert name in rl.__all__
