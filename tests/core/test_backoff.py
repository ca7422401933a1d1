"""Tests for rxws.core.backoff: delays per jitter mode, exhaustion, stable-after reset."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxws.core.backoff import ExponentialBackoff


def delays(policy: ExponentialBackoff, n: int) -> list[float | None]:
    state = policy.start()
    return [state.next_delay() for _ in range(n)]


def test_no_jitter_doubles_up_to_max() -> None:
    policy = ExponentialBackoff(0.5, 2.0, 5.0, jitter="none")
    assert delays(policy, 6) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_with_seed_is_fixed_and_in_range() -> None:
    policy = ExponentialBackoff(1.0, 2.0, 8.0, jitter="full", seed=42)
    rng = random.Random(42)
    expected = [rng.uniform(0, b) for b in (1.0, 2.0, 4.0, 8.0, 8.0)]
    got = delays(policy, 5)
    assert got == expected
    assert got == delays(policy, 5)  # every state of a seeded policy draws the same delays


def test_equal_jitter_with_seed() -> None:
    policy = ExponentialBackoff(1.0, 3.0, 9.0, jitter="equal", seed=7)
    rng = random.Random(7)
    expected = [b / 2 + rng.uniform(0, b / 2) for b in (1.0, 3.0, 9.0, 9.0)]
    got = delays(policy, 4)
    assert got == expected
    for d, b in zip(got, (1.0, 3.0, 9.0, 9.0), strict=True):
        assert d is not None and b / 2 <= d <= b


def test_decorrelated_jitter_with_seed() -> None:
    policy = ExponentialBackoff(0.5, 2.0, 10.0, jitter="decorrelated", seed=3)
    rng = random.Random(3)
    prev, expected = 0.5, []
    for _ in range(8):
        prev = min(10.0, rng.uniform(0.5, prev * 3))
        expected.append(prev)
    assert delays(policy, 8) == expected


def test_shared_rng_is_used_across_states() -> None:
    rng = random.Random(1)
    policy = ExponentialBackoff(1.0, 2.0, 4.0, rng=rng)
    a = policy.start().next_delay()
    b = policy.start().next_delay()
    ref = random.Random(1)
    assert [a, b] == [ref.uniform(0, 1.0), ref.uniform(0, 1.0)]


def test_max_attempts_exhausts_and_stays_exhausted() -> None:
    state = ExponentialBackoff(1.0, 2.0, 10.0, jitter="none", max_attempts=2).start()
    assert state.next_delay() == 1.0
    assert not state.exhausted
    assert state.next_delay() == 2.0
    assert state.exhausted
    assert state.next_delay() is None
    assert state.next_delay() is None
    assert state.attempt == 2
    state.reset()
    assert state.attempt == 0
    assert state.next_delay() == 1.0


def test_zero_attempts_never_retries() -> None:
    assert ExponentialBackoff(max_attempts=0).start().next_delay() is None


def test_reset_only_after_stable_after() -> None:
    state = ExponentialBackoff(1.0, 2.0, 60.0, jitter="none", stable_after=10.0).start()
    assert state.next_delay() == 1.0
    # Accepted and closed at once: no reset, the next delay grows.
    state.on_connected(100.0)
    assert state.on_disconnected(100.0) is False
    assert state.next_delay() == 2.0
    # Up for 9.99 s: still not stable.
    state.on_connected(200.0)
    assert state.on_disconnected(209.99) is False
    assert state.next_delay() == 4.0
    assert state.attempt == 3
    # Up for exactly 10 s: stable, the counter resets.
    state.on_connected(300.0)
    state.on_connected(305.0)  # a second call does not move the stability clock
    assert state.connected_since == 300.0
    assert state.on_disconnected(310.0) is True
    assert state.attempt == 0
    assert state.connected_since is None
    assert state.next_delay() == 1.0


def test_disconnect_without_connect_does_not_reset() -> None:
    state = ExponentialBackoff(jitter="none", stable_after=0.0).start()
    state.next_delay()
    assert state.on_disconnected(1_000.0) is False
    assert state.attempt == 1


def test_decorrelated_reset_restarts_from_initial() -> None:
    policy = ExponentialBackoff(1.0, 2.0, 100.0, jitter="decorrelated", seed=5)
    state = policy.start()
    first = [state.next_delay() for _ in range(3)]
    state.reset()
    again = state.next_delay()
    assert again is not None and 1.0 <= again <= 3.0
    assert first[0] is not None and 1.0 <= first[0] <= 3.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = ExponentialBackoff(1.0, 10.0, 30.0, jitter="none")
    assert policy.base_delay(5_000) == 30.0
    with pytest.raises(ValueError, match="1-based"):
        policy.base_delay(0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0}, "initial must be > 0"),
        ({"initial": float("nan")}, "initial must be finite"),
        ({"initial": "1"}, "initial must be a number"),
        ({"factor": 0.5}, "factor must be >= 1"),
        ({"initial": 2.0, "max_delay": 1.0}, "max_delay"),
        ({"stable_after": -1}, "stable_after"),
        ({"jitter": "random"}, "jitter must be one of"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"seed": 1, "rng": random.Random()}, "either seed or rng"),
    ],
)
def test_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExponentialBackoff(**kwargs)  # type: ignore[arg-type]


def test_policy_is_a_value() -> None:
    a = ExponentialBackoff(1.0, seed=1)
    b = ExponentialBackoff(1.0, seed=1)
    assert a == b and hash(a) == hash(b)
    assert a != ExponentialBackoff(2.0, seed=1)
    assert "seed=1" in repr(a)
    with pytest.raises(AttributeError):
        a.initial = 3.0  # type: ignore[misc]


@given(
    initial=st.floats(0.001, 10.0),
    factor=st.floats(1.0, 5.0),
    extra=st.floats(0.0, 100.0),
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    seed=st.integers(0, 2**32),
)
def test_delays_stay_within_bounds(
    initial: float, factor: float, extra: float, jitter: str, seed: int
) -> None:
    policy = ExponentialBackoff(initial, factor, initial + extra, jitter=jitter, seed=seed)  # type: ignore[arg-type]
    state = policy.start()
    for n in range(1, 30):
        d = state.next_delay()
        assert d is not None
        assert 0.0 <= d <= policy.max_delay
        if jitter == "none":
            assert d == policy.base_delay(n)
        if jitter == "decorrelated":
            assert d >= policy.initial or d == policy.max_delay
