"""rxws.core.state: the connection states and the one transition table."""

from __future__ import annotations

import pytest

from rxws.core.state import TRANSITIONS, ConnectionState, StateMachine
from rxws.exceptions import InvalidTransition, UsageError

S = ConnectionState


def test_every_state_has_a_row_and_no_self_loops() -> None:
    assert set(TRANSITIONS) == set(S)
    for source, targets in TRANSITIONS.items():
        assert source not in targets
        assert targets <= set(S)


def test_starts_disconnected_and_follows_a_session() -> None:
    sm = StateMachine()
    assert sm.state is S.DISCONNECTED
    for target in (S.CONNECTING, S.CONNECTED, S.ERROR, S.CONNECTING, S.CONNECTED, S.DISCONNECTING):
        previous = sm.state
        assert sm.to(target) is previous
        assert sm.state is target
    assert sm.to(S.DISCONNECTED) is S.DISCONNECTING


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s in S for t in S if t not in TRANSITIONS[s]],
)
def test_illegal_transition_raises_and_leaves_the_state(
    source: ConnectionState, target: ConnectionState
) -> None:
    sm = StateMachine(source)
    assert not sm.can(target)
    with pytest.raises(InvalidTransition) as info:
        sm.to(target)
    assert isinstance(info.value, UsageError)
    assert (info.value.source, info.value.target) == (source, target)
    assert f"{source} -> {target}" in str(info.value)
    assert sm.state is source


def test_a_connected_client_cannot_skip_to_connecting_and_a_closed_one_only_reopens() -> None:
    assert not StateMachine(S.CONNECTED).can(S.CONNECTING)
    assert TRANSITIONS[S.DISCONNECTED] == frozenset({S.CONNECTING})


def test_states_print_as_their_names() -> None:
    assert str(S.ERROR) == "ERROR" and S("CONNECTED") is S.CONNECTED
