"""rxws.core.clock: the venue clock estimate (Date header, reply server times, host samples) and the
ClockSkew rule."""

from __future__ import annotations

import pytest

from rxws.core.clock import SkewRule, VenueClock


def test_without_samples_the_venue_clock_is_the_local_one() -> None:
    clock = VenueClock()
    assert clock.offset is None and clock.uncertainty is None
    assert clock.now_venue(1000.0) == 1000.0


def test_a_reply_server_time_is_read_at_the_round_trip_midpoint() -> None:
    clock = VenueClock()
    # sent at 100.0, answered at 100.2: the venue said 105.1 s at the midpoint 100.1
    assert clock.add_server_time(105_100.0, 100.0, 100.2) == pytest.approx(5.0)
    assert clock.uncertainty == pytest.approx(0.1)
    assert clock.now_venue(200.0) == pytest.approx(205.0)


def test_a_date_header_counts_half_a_second_of_resolution() -> None:
    clock = VenueClock()
    # Mon, 30 Nov 2026 06:00:00 GMT = 1796018400; the handshake took 0.2 s around local 1796018390.1
    offset = clock.add_date_header("Mon, 30 Nov 2026 06:00:00 GMT", 1796018390.0, 1796018390.2)
    assert offset == pytest.approx(1796018400.5 - 1796018390.1)
    assert clock.uncertainty == pytest.approx(0.6)


def test_an_unreadable_date_header_adds_nothing() -> None:
    clock = VenueClock()
    assert clock.add_date_header("not a date", 1.0, 1.1) is None
    assert clock.samples == [] and clock.offset is None


def test_a_slow_round_trip_is_an_outlier_that_does_not_move_the_estimate() -> None:
    clock = VenueClock()
    for i in range(4):
        clock.add_server_time((1000.0 + i + 2.0) * 1000, 1000.0 + i, 1000.0 + i + 0.02)
    # a reply delayed 8 s in one direction: midpoint reading off by ~4 s, uncertainty 4 s
    clock.add_server_time((1010.0 + 2.0) * 1000, 1010.0, 1018.0)
    assert clock.offset == pytest.approx(2.0, abs=0.02)


def test_the_median_resists_one_wrong_precise_sample() -> None:
    clock = VenueClock()
    for offset in (3.0, 3.1, 2.9, 50.0, 3.05):
        clock.add_sample(offset, 0.05)
    assert clock.offset == pytest.approx(3.05)


def test_only_the_last_window_samples_count() -> None:
    clock = VenueClock(window=3)
    for offset in (10.0, 10.0, 10.0, 1.0, 1.0, 1.0):
        clock.add_sample(offset, 0.1)
    assert clock.offset == 1.0 and len(clock.samples) == 3


def test_bad_samples_are_refused() -> None:
    clock = VenueClock()
    with pytest.raises(ValueError):
        clock.add_server_time(1.0, 10.0, 9.0)
    with pytest.raises(ValueError):
        clock.add_sample(float("nan"))
    with pytest.raises(ValueError):
        clock.add_sample(1.0, -1.0)
    with pytest.raises(ValueError):
        VenueClock(window=0)


def test_skew_is_due_once_near_the_window_and_again_after_recovering() -> None:
    rule = SkewRule(30.0)  # OKX: 30 s, "near" = half of it
    assert [rule.check(o) for o in (None, 14.0, 15.0, 16.0, -20.0, 10.0)] == [
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    assert rule.check(7.0) is False  # below half the threshold: re-armed
    assert rule.check(-15.5) is True


def test_a_venue_without_a_window_never_warns() -> None:
    assert SkewRule(None).check(1e6) is False
    with pytest.raises(ValueError):
        SkewRule(1.0, ratio=0.0)
