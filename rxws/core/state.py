"""Connection states and the one table of legal transitions between them.

Everything that changes a client's connection state goes through :class:`StateMachine`, which
checks the table and raises :class:`~rxws.exceptions.InvalidTransition` on an illegal change.
"""

from __future__ import annotations

from enum import StrEnum

from rxws.exceptions import InvalidTransition

__all__ = ["TRANSITIONS", "ConnectionState", "StateMachine"]


class ConnectionState(StrEnum):
    """Where a client's connection stands."""

    DISCONNECTED = "DISCONNECTED"
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    DISCONNECTING = "DISCONNECTING"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


_S = ConnectionState

TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    _S.DISCONNECTED: frozenset({_S.CONNECTING}),
    _S.CONNECTING: frozenset({_S.CONNECTED, _S.ERROR, _S.DISCONNECTING, _S.DISCONNECTED}),
    _S.CONNECTED: frozenset({_S.DISCONNECTING, _S.DISCONNECTED, _S.ERROR}),
    _S.DISCONNECTING: frozenset({_S.DISCONNECTED, _S.ERROR}),
    _S.ERROR: frozenset({_S.CONNECTING, _S.DISCONNECTED}),
}
"""Legal transitions: ``TRANSITIONS[source]`` is the set of states reachable in one step."""


class StateMachine:
    """Holds the current :class:`ConnectionState` and enforces :data:`TRANSITIONS`."""

    __slots__ = ("_state",)

    def __init__(self, initial: ConnectionState = ConnectionState.DISCONNECTED) -> None:
        self._state = initial

    @property
    def state(self) -> ConnectionState:
        return self._state

    def can(self, target: ConnectionState) -> bool:
        """Whether ``target`` is reachable from the current state in one step."""
        return target in TRANSITIONS[self._state]

    def to(self, target: ConnectionState) -> ConnectionState:
        """Move to ``target``; returns the previous state.

        Raises:
            InvalidTransition: the table has no edge from the current state to ``target``.
        """
        source = self._state
        if target not in TRANSITIONS[source]:
            raise InvalidTransition(source, target)
        self._state = target
        return source
