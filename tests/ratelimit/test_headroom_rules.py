"""rxws.ratelimit.headroom: the margin holds whatever the delay jitter, in virtual time.

(Named apart from tests/integration/test_headroom.py: test modules share one namespace.)

The model (module docstring of :mod:`rxws.ratelimit.headroom`): a sender paces frames with a
limiter; each frame reaches the venue's count after a delay anywhere in ``[0, J]``. With a time
margin of at least ``J``, no window of ``per`` seconds at the venue sees more than ``N`` arrivals
(sliding or fixed); without it, a jitter far smaller than the window already breaks the limit.
"""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rxws.ratelimit import (
    FixedWindow,
    LeakyBucket,
    Rule,
    Scope,
    SlidingWindow,
    SlidingWindowCounter,
    TokenBucket,
    VenueRateLimiter,
)
from rxws.ratelimit.base import Algorithm
from rxws.ratelimit.headroom import DEFAULT_HEADROOM, NO_HEADROOM, Headroom


def paced(alg: Algorithm, requests: list[float], cost: float = 1) -> list[float]:
    """When a FIFO sender (the client's outbound queue) lets each request out through ``alg``."""
    sent: list[float] = []
    t = -math.inf
    for want in requests:
        t = max(t, want)
        for _ in range(10_000):
            d = alg.try_acquire(t, cost)
            if d.allowed:
                break
            t += d.retry_after
        else:  # pragma: no cover - a limiter that never admits is a bug this test must show
            pytest.fail(f"{alg!r} never admitted a request at {t}")
        sent.append(t)
    return sent


def most_in_any_window(arrivals: list[float], per: float) -> int:
    """The most arrivals in any half-open window ``[s, s + per)`` (s may be anything)."""
    xs = sorted(arrivals)
    return max((bisect.bisect_left(xs, x + per) - i for i, x in enumerate(xs)), default=0)


def most_in_fixed_windows(arrivals: list[float], per: float, offset: float) -> int:
    """The most arrivals in one aligned window ``[offset + k * per, offset + (k + 1) * per)``."""
    counts: dict[int, int] = {}
    for x in arrivals:
        k = math.floor((x - offset) / per)
        counts[k] = counts.get(k, 0) + 1
    return max(counts.values(), default=0)


# Time margin against jitter: property-based ---------------------------------------------------------------
requests_st = st.lists(st.integers(0, 5_000), min_size=1, max_size=60).map(
    lambda ms: sorted(m / 1000 for m in ms)  # a burst-prone schedule over 5 s, in ms steps
)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 10),
    per=st.sampled_from([0.5, 1.0, 3.0]),
    margin=st.sampled_from([0.05, 0.25]),
    fraction=st.sampled_from([0.0, 0.1]),
    requests=requests_st,
    data=st.data(),
)
def test_no_window_at_the_venue_sees_more_than_the_limit(
    limit: int, per: float, margin: float, fraction: float, requests: list[float], data: st.DataObject
) -> None:
    headroom = Headroom(fraction=fraction, margin=margin)
    sent = paced(headroom.apply(SlidingWindow(limit, per)), requests)
    # every frame delayed by an arbitrary amount in [0, J], J = the margin less the algorithms'
    # one-nanosecond clock grain (a send admitted on a nanosecond edge)
    jitter = margin - 2e-9
    delays = data.draw(st.lists(st.floats(0.0, jitter), min_size=len(sent), max_size=len(sent)))
    arrivals = [s + d for s, d in zip(sent, delays, strict=True)]
    assert most_in_any_window(arrivals, per) <= limit
    offset = data.draw(st.floats(0.0, per))
    assert most_in_fixed_windows(arrivals, per, offset) <= limit


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([5, 10, 100]),
    burst=st.sampled_from([10, 20, 50]),
    margin=st.sampled_from([0.05, 0.25]),
    leaky=st.booleans(),
    requests=requests_st,
    data=st.data(),
)
def test_a_bucket_with_headroom_conforms_to_the_venue_bucket_after_jitter(
    rate: int, burst: int, margin: float, leaky: bool, requests: list[float], data: st.DataObject
) -> None:
    per = 1.0
    assume(burst - rate * margin >= 1)  # else the margin leaves no room (a ValueError, tested below)
    documented = LeakyBucket(rate, per, burst=burst) if leaky else TokenBucket(rate, per, burst)
    sent = paced(Headroom(margin=margin).apply(documented), requests)
    jitter = margin - 2e-9
    delays = data.draw(st.lists(st.floats(0.0, jitter), min_size=len(sent), max_size=len(sent)))
    arrivals = sorted(s + d for s, d in zip(sent, delays, strict=True))
    # A venue bucket (rate, burst), full at the start, admits a sequence iff every run of
    # arrivals i..j fits: j - i + 1 <= burst + rate * (a_j - a_i) / per.
    for i in range(len(arrivals)):
        for j in range(i, len(arrivals)):
            assert j - i + 1 <= burst + rate * (arrivals[j] - arrivals[i]) / per + 1e-6


# Without the margin, jitter breaks an exact limiter --------------------------------------------------
def test_an_exact_window_is_broken_by_a_small_jitter() -> None:
    """The flaky-suite failure in miniature: 5 frames delayed 30 ms, the 6th (at exactly 1 s) 1 ms."""
    sent = paced(SlidingWindow(5, 1.0), [0.0] * 6)
    assert sent == [0.0] * 5 + [1.0]
    arrivals = [s + 0.030 for s in sent[:5]] + [sent[5] + 0.001]
    assert most_in_any_window(arrivals, 1.0) == 6  # the venue closes with 1008

    with_margin = paced(Headroom(margin=0.05).apply(SlidingWindow(5, 1.0)), [0.0] * 6)
    assert with_margin[5] == pytest.approx(1.05)
    arrivals = [s + 0.030 for s in with_margin[:5]] + [with_margin[5] + 0.001]
    assert most_in_any_window(arrivals, 1.0) == 5


def test_a_count_fraction_alone_does_not_help() -> None:
    """4 per exact second, two bursts 1 s apart, the first delayed: 8 arrive within one second."""
    sent = paced(Headroom(fraction=0.2).apply(SlidingWindow(5, 1.0)), [0.0] * 8)
    assert sent == [0.0] * 4 + [1.0] * 4
    arrivals = [s + (0.02 if s == 0.0 else 0.0) for s in sent]
    assert most_in_any_window(arrivals, 1.0) == 8


# What apply() builds ------------------------------------------------------------------------------------
def test_apply_to_each_algorithm() -> None:
    h = Headroom(fraction=0.1, margin=0.25)
    w = h.apply(SlidingWindow(5, 1.0))
    assert isinstance(w, SlidingWindow) and (w.limit, w.per) == (4, 1.25)
    c = h.apply(SlidingWindowCounter(100, 2.0, buckets=4))
    assert isinstance(c, SlidingWindowCounter) and (c.limit, c.per, c.buckets) == (90, 2.25, 4)
    f = h.apply(FixedWindow(10, 1.0))
    assert isinstance(f, SlidingWindowCounter), "a fixed window admits 2x across a boundary"
    assert (f.limit, f.per) == (9, 1.25)
    b = h.apply(TokenBucket(8, 1.0, 20))
    assert isinstance(b, TokenBucket) and (b.rate, b.per, b.burst) == (7, 1.0, 16)  # 18 - 7 * 0.25
    g = h.apply(LeakyBucket(10, 1.0, burst=10))
    assert isinstance(g, LeakyBucket) and (g.rate, g.burst) == (9, 6)  # 9 - 9 * 0.25 = 6.75
    fresh = NO_HEADROOM.apply(SlidingWindow(5, 1.0))
    assert isinstance(fresh, SlidingWindow) and (fresh.limit, fresh.per) == (5, 1.0)


def test_counts_round_down_but_never_below_one() -> None:
    h = Headroom(fraction=0.1)
    assert [h.count(n) for n in (1, 3, 5, 10, 300, 480)] == [1, 2, 4, 9, 270, 432]
    assert h.count(2.5) == pytest.approx(2.25), "a fractional limit is not rounded"
    assert Headroom(fraction=0.99).count(5) == 1


def test_bad_headroom_and_what_it_cannot_shrink() -> None:
    for bad in ({"fraction": 1.0}, {"fraction": -0.1}, {"margin": -1.0}, {"margin": math.inf}):
        with pytest.raises(ValueError, match="Headroom"):
            Headroom(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="leaves no room"):
        Headroom(margin=2.0).apply(TokenBucket(10, 1.0, 20))  # 20 tokens refill in 2 s
    with pytest.raises(ValueError, match="too small for one request of weight 500"):
        DEFAULT_HEADROOM.rule(Rule(TokenBucket(10_000, 1.0, 3_000), Scope.IP, weight=500))  # 450 left

    class Custom(SlidingWindow):
        pass

    assert isinstance(DEFAULT_HEADROOM.apply(Custom(5, 1.0)), SlidingWindow)

    class Opaque:
        capacity = 1.0

        def check(self, now: float, cost: float = 1) -> object: ...
        def commit(self, now: float, cost: float = 1) -> None: ...
        def try_acquire(self, now: float, cost: float = 1) -> object: ...
        def idle(self, now: float) -> bool: ...
        def clone(self) -> Opaque: ...

    with pytest.raises(ValueError, match="size it yourself"):
        DEFAULT_HEADROOM.apply(Opaque())  # type: ignore[arg-type]


def test_rules_keep_the_documented_name_and_factories_are_shrunk_per_key() -> None:
    rule = DEFAULT_HEADROOM.rule(Rule(SlidingWindow(5, 1.0), Scope.CONNECTION, name="5 / s"))
    assert rule.label.startswith("5 / s (headroom 10% of the count, 0.25 s of time")
    made = DEFAULT_HEADROOM.rule(Rule(lambda: SlidingWindow(5, 1.0), Scope.CONNECTION)).make("c1")
    assert isinstance(made, SlidingWindow) and (made.limit, made.per) == (4, 1.25)
    assert NO_HEADROOM.rule(rule) is rule


def test_venue_limiter_takes_headroom_from_every_rate_rule_not_caps() -> None:
    lim = VenueRateLimiter(
        connect=[SlidingWindow(10, 10.0)],
        message=[SlidingWindow(5, 1.0)],
        subscribe=[SlidingWindow(20, 60.0)],
        max_topics_per_connection=3,
        headroom=DEFAULT_HEADROOM,
    )
    assert lim.headroom == DEFAULT_HEADROOM
    assert [repr(r.limit) for r in (*lim.connect_rules, *lim.message_rules, *lim.subscribe_rules)] == [
        "SlidingWindow(limit=9, per=10.25)",
        "SlidingWindow(limit=4, per=1.25)",
        "SlidingWindow(limit=18, per=60.25)",
    ]
    assert lim.acquire_connect("c", 0.0).allowed
    assert lim.acquire_subscribe("c", 0.0, 3).allowed, "the topic cap is exact"
    assert not lim.acquire_subscribe("c", 0.0, 1).allowed
