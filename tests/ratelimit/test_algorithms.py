"""rxws.ratelimit algorithms: exactness by brute force, GCRA against a reference bucket, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxws.ratelimit import (
    ALLOWED,
    Algorithm,
    Decision,
    FixedWindow,
    LeakyBucket,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
)
from rxws.ratelimit.base import to_ns

NS = 1_000_000_000

# Arrival streams: sorted integer-nanosecond times (up to 20 s) with whole-number weights.
arrivals = st.lists(st.tuples(st.integers(0, 20 * NS), st.integers(1, 4)), min_size=1, max_size=120).map(
    lambda xs: sorted(xs)
)
dense_arrivals = st.lists(st.tuples(st.integers(0, 3 * NS), st.integers(1, 3)), min_size=1, max_size=120).map(
    lambda xs: sorted(xs)
)


def run(alg: Algorithm, stream: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Feed the stream; return the admitted (t_ns as the algorithm saw it, cost)."""
    admitted = []
    for t_ns, cost in stream:
        now = t_ns / NS
        if cost > alg.capacity:
            with pytest.raises(ValueError):
                alg.try_acquire(now, cost)
            continue
        d = alg.try_acquire(now, cost)
        if d.allowed:
            assert d == ALLOWED
            admitted.append((to_ns(now), cost))
        else:
            assert d.retry_after > 0
            assert alg.check(now + d.retry_after, cost).allowed, "retry_after must be enough"
    return admitted


def max_in_sliding_window(admitted: list[tuple[int, int]], per_ns: int) -> int:
    """The most cost in any half-open window [s, s + per): brute force over window starts."""
    best = 0
    for i, (ti, _) in enumerate(admitted):
        best = max(best, sum(c for tj, c in admitted[i:] if tj < ti + per_ns))
    return best


# Exactness -----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(dense_arrivals, st.integers(1, 8), st.sampled_from([0.25, 0.5, 1.0, 0.3]))
def test_sliding_window_is_exact(stream: list[tuple[int, int]], limit: int, per: float) -> None:
    alg = SlidingWindow(limit, per)
    per_ns = math.ceil(per * NS)
    admitted: list[tuple[int, int]] = []
    for t_ns, cost in stream:
        now = t_ns / NS
        t = to_ns(now)
        if cost > limit:
            continue
        in_window = sum(c for ta, c in admitted if ta > t - per_ns)
        d = alg.try_acquire(now, cost)
        assert d.allowed == (in_window + cost <= limit), "must admit exactly when it fits"
        if d.allowed:
            admitted.append((t, cost))
    assert max_in_sliding_window(admitted, per_ns) <= limit


@pytest.mark.parametrize(
    "make",
    [
        lambda limit, per: SlidingWindow(limit, per),
        lambda limit, per: SlidingWindowCounter(limit, per),
        lambda limit, per: SlidingWindowCounter(limit, per, buckets=1),
        lambda limit, per: SlidingWindowCounter(limit, per, buckets=7),
    ],
    ids=["SlidingWindow", "SlidingWindowCounter", "Counter-1-bucket", "Counter-7-buckets"],
)
@settings(max_examples=80, deadline=None)
@given(stream=dense_arrivals, limit=st.integers(1, 8), per=st.sampled_from([0.25, 0.5, 1.0, 0.3]))
def test_window_algorithms_never_exceed_limit_in_any_window(
    make: Callable[[int, float], Algorithm], stream: list[tuple[int, int]], limit: int, per: float
) -> None:
    admitted = run(make(limit, per), stream)
    assert max_in_sliding_window(admitted, math.ceil(per * NS)) <= limit


@settings(max_examples=100, deadline=None)
@given(dense_arrivals, st.integers(1, 8), st.sampled_from([0.25, 0.5, 1.0]))
def test_fixed_window_never_exceeds_limit_in_its_windows(
    stream: list[tuple[int, int]], limit: int, per: float
) -> None:
    admitted = run(FixedWindow(limit, per), stream)
    per_ns = math.ceil(per * NS)
    by_window: dict[int, int] = {}
    for t, c in admitted:
        by_window[t // per_ns] = by_window.get(t // per_ns, 0) + c
    assert all(v <= limit for v in by_window.values())
    # ... and, as documented, at most twice the limit across a boundary.
    assert max_in_sliding_window(admitted, per_ns) <= 2 * limit


@pytest.mark.parametrize("kind", ["token", "leaky"])
@settings(max_examples=100, deadline=None)
@given(stream=arrivals, rate=st.sampled_from([1, 2, 5, 10, 0.5, 3]), burst=st.integers(1, 6))
def test_buckets_never_exceed_burst_plus_rate(
    kind: str, stream: list[tuple[int, int]], rate: float, burst: int
) -> None:
    alg: Algorithm = TokenBucket(rate, 1.0, burst) if kind == "token" else LeakyBucket(rate, 1.0, burst=burst)
    admitted = run(alg, stream)
    r = Fraction(rate)
    for i, (ti, _) in enumerate(admitted):
        total = 0
        for tj, c in admitted[i:]:
            total += c
            assert total <= burst + r * Fraction(tj - ti, NS), "over burst + rate * elapsed"


def reference_token_bucket(rate: Fraction, burst: int, stream: list[tuple[int, int]]) -> list[bool]:
    """A textbook token bucket in exact rational arithmetic."""
    tokens, last, out = Fraction(burst), None, []
    for t_ns, cost in stream:
        t = Fraction(to_ns(t_ns / NS), NS)
        if last is not None:
            tokens = min(Fraction(burst), tokens + (t - last) * rate)
        last = t
        ok = cost <= tokens
        if ok:
            tokens -= cost
        out.append(ok)
    return out


@settings(max_examples=150, deadline=None)
@given(arrivals, st.sampled_from([1, 2, 4, 5, 8, 10, 0.5, 0.25]), st.integers(4, 6))
def test_gcra_matches_reference_token_bucket(stream: list[tuple[int, int]], rate: float, burst: int) -> None:
    """LeakyBucket (GCRA), TokenBucket and an exact reference agree on every decision.

    Rates whose interval is a whole number of nanoseconds, so the three are the same rule exactly.
    """
    gcra = LeakyBucket(rate, 1.0, burst=burst)
    bucket = TokenBucket(rate, 1.0, burst)
    expected = reference_token_bucket(Fraction(rate), burst, stream)
    got_gcra = [gcra.try_acquire(t / NS, c).allowed for t, c in stream]
    got_bucket = [bucket.try_acquire(t / NS, c).allowed for t, c in stream]
    assert got_gcra == expected
    assert got_bucket == expected


@settings(max_examples=60, deadline=None)
@given(arrivals, st.sampled_from([3, 7, 0.3]), st.integers(4, 6))
def test_gcra_with_rounded_interval_is_never_looser_than_reference(
    stream: list[tuple[int, int]], rate: float, burst: int
) -> None:
    """Where per / rate is not a whole nanosecond, GCRA rounds against admission."""
    gcra = LeakyBucket(rate, 1.0, burst=burst)
    expected = reference_token_bucket(Fraction(rate), burst, stream)
    got = [gcra.try_acquire(t / NS, c).allowed for t, c in stream]
    # Compare on the prefix where both agree so far: the first disagreement must be a refusal.
    for g, e in zip(got, expected, strict=True):
        if g != e:
            assert not g
            break


# Behaviour -----------------------------------------------------------------------------------

FIVE_PER_SECOND = [
    TokenBucket(5, 1.0, 5),
    LeakyBucket(5, 1.0, burst=5),
    SlidingWindow(5, 1.0),
    SlidingWindowCounter(5, 1.0),
    FixedWindow(5, 1.0),
]


def test_decision_is_a_small_tuple() -> None:
    d = Decision(False, 0.5)
    assert d.allowed is False and d.retry_after == 0.5
    assert ALLOWED == (True, 0.0)


@pytest.mark.parametrize(
    "alg",
    FIVE_PER_SECOND,
    ids=repr,
)
def test_five_per_second_then_refusal_with_retry_after(alg: Algorithm) -> None:
    alg = alg.clone()  # the parameter list is shared between tests
    now = 100.0
    assert all(alg.try_acquire(now).allowed for _ in range(5))
    d = alg.try_acquire(now)
    assert not d.allowed
    # The counter may hold a sub-bucket (0.1 s here) longer than the exact window.
    assert 0 < d.retry_after <= (1.1 if isinstance(alg, SlidingWindowCounter) else 1.0)
    assert alg.try_acquire(now + d.retry_after).allowed


def test_leaky_bucket_default_spaces_evenly() -> None:
    lb = LeakyBucket(5, 1.0)
    assert lb.interval == 0.2
    assert lb.try_acquire(0.0).allowed
    assert lb.try_acquire(0.1) == Decision(False, pytest.approx(0.1))
    assert lb.try_acquire(0.2).allowed


def test_sliding_window_retry_after_is_when_the_oldest_leaves() -> None:
    sw = SlidingWindow(2, 1.0)
    assert sw.try_acquire(10.0).allowed
    assert sw.try_acquire(10.25).allowed
    assert sw.try_acquire(10.5).retry_after == pytest.approx(0.5)
    assert sw.try_acquire(10.999).allowed is False
    assert sw.try_acquire(11.0).allowed
    assert len(sw) == 2


def test_fixed_window_resets_on_the_boundary() -> None:
    fw = FixedWindow(2, 1.0)
    assert fw.try_acquire(0.9).allowed and fw.try_acquire(0.95).allowed
    assert fw.try_acquire(0.99).retry_after == pytest.approx(0.01)
    assert fw.try_acquire(1.0).allowed and fw.try_acquire(1.0).allowed


@pytest.mark.parametrize(
    "alg",
    FIVE_PER_SECOND,
    ids=repr,
)
def test_check_does_not_commit_and_commit_goes_into_debt(alg: Algorithm) -> None:
    alg = alg.clone()  # the parameter list is shared between tests
    for _ in range(10):
        assert alg.check(1.0, 5).allowed
    alg.commit(1.0, 5)
    assert not alg.check(1.0).allowed
    alg.commit(1.0, 3)  # forced: already sent
    d = alg.check(1.0)
    assert not d.allowed
    assert alg.clone().check(1.0, 5).allowed, "a clone starts fresh"


@pytest.mark.parametrize(
    "alg",
    FIVE_PER_SECOND,
    ids=repr,
)
def test_cost_over_capacity_or_negative_is_a_clear_error(alg: Algorithm) -> None:
    alg = alg.clone()  # the parameter list is shared between tests
    with pytest.raises(ValueError, match="exceeds the capacity"):
        alg.try_acquire(0.0, 6)
    with pytest.raises(ValueError, match="exceeds the capacity"):
        alg.check(0.0, 6)
    with pytest.raises(ValueError, match=">= 0"):
        alg.try_acquire(0.0, -1)
    assert alg.try_acquire(0.0, 0).allowed
    assert alg.try_acquire(0.0, 2.5).allowed, "fractional costs are accepted"


@pytest.mark.parametrize(
    "make",
    [
        lambda: TokenBucket(0, 1, 1),
        lambda: TokenBucket(1, 0, 1),
        lambda: TokenBucket(1, 1, 0),
        lambda: TokenBucket(1, math.inf, 1),
        lambda: LeakyBucket(-1, 1),
        lambda: LeakyBucket(1, 1, burst=math.nan),
        lambda: SlidingWindow(0, 1),
        lambda: SlidingWindow(1, -1),
        lambda: SlidingWindowCounter(1, 1, buckets=0),
        lambda: FixedWindow(True, 1),
        lambda: FixedWindow(1, "1"),
    ],
)
def test_invalid_parameters_raise_value_error(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        make()


@pytest.mark.parametrize(
    "alg",
    FIVE_PER_SECOND,
    ids=repr,
)
def test_idle_once_back_to_fresh_state(alg: Algorithm) -> None:
    alg = alg.clone()  # the parameter list is shared between tests
    assert alg.idle(0.0)
    alg.try_acquire(0.0, 3)
    assert not alg.idle(0.5)
    assert alg.idle(2.5)
    assert isinstance(alg, Algorithm)


def test_counter_refuses_early_rather_than_over() -> None:
    c = SlidingWindowCounter(4, 1.0, buckets=4)  # 250 ms sub-buckets
    assert all(c.try_acquire(0.9).allowed for _ in range(4))
    # At 1.8 the exact window (0.8, 1.8] still holds them; at 1.9 exactly they leave, but the
    # counter only drops the sub-bucket [0.75, 1.0) once all of it has left: at 1.999999999.
    assert not c.try_acquire(1.9).allowed
    d = c.try_acquire(1.5)
    assert not d.allowed and 1.5 + d.retry_after == pytest.approx(2.0, abs=1e-8)
    assert c.try_acquire(2.0).allowed


def test_time_running_backwards_is_taken_as_the_latest_time() -> None:
    sw = SlidingWindow(1, 1.0)
    assert sw.try_acquire(5.0).allowed
    assert not sw.try_acquire(4.5).allowed
    assert sw.try_acquire(6.0).allowed


def test_retry_after_survives_large_epoch_times() -> None:
    now = 1_790_000_000.123
    sw = SlidingWindow(1, 0.2)
    assert sw.try_acquire(now).allowed
    d = sw.try_acquire(now + 1e-7)
    assert not d.allowed
    assert sw.try_acquire(now + 1e-7 + d.retry_after).allowed
