"""Test helpers shared by many test modules: virtual-time clients and event timelines.

Imported as ``from harness import Virtual`` (not from ``conftest``: several conftest modules exist
in the tree, and ``import conftest`` finds whichever pytest loaded first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from reactivex.testing import TestScheduler

from rxws import ConnectionState, WebSocketClient
from rxws.events import Event
from rxws.protocols import GenericJson
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport

URL = "ws://venue.test/ws"


class Timeline:
    """Everything a host sees of one client: states and events, in order, with a way to wait."""

    def __init__(self, client: WebSocketClient, now: Callable[[], float] | None = None) -> None:
        self.states: list[ConnectionState] = []
        self.events: list[Event] = []
        self.timed_states: list[tuple[float, ConnectionState]] = []
        self.completed: list[str] = []
        self._now = now or (lambda: 0.0)
        self._changed: asyncio.Event | None = None
        client.state.subscribe(self._on_state, on_completed=lambda: self.completed.append("state"))
        client.events.subscribe(self._on_event, on_completed=lambda: self.completed.append("events"))

    def _on_state(self, state: ConnectionState) -> None:
        self.states.append(state)
        self.timed_states.append((self._now(), state))
        self.poke()

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self.poke()

    def poke(self) -> None:
        """Re-check waiting predicates (call it when something else they read changed)."""
        if self._changed is not None:
            self._changed.set()

    def kinds(self) -> list[str]:
        return [getattr(e, "kind", "?") for e in self.events]

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checked on every state change and event."""
        self._changed = asyncio.Event()
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_event(self, cls: type[Any], count: int = 1, timeout: float = 5.0) -> Any:
        """Wait for the ``count``-th event of type ``cls``; return it."""
        await self.wait(lambda: len(self.of(cls)) >= count, timeout)
        return self.of(cls)[count - 1]


class Virtual:
    """A TestScheduler, a MemoryTransport answered by a Responder, and a client factory.

    Unpacks as ``scheduler, transport, make_client``. ``make_client(**kw)`` builds a GenericJson
    client on them and records it in ``self.timeline`` (states stamped with virtual time).
    """

    def __init__(self, latency: float = 0.25) -> None:
        self.scheduler = TestScheduler()
        self.responder = Responder()
        self.transport = MemoryTransport(latency=latency, responder=self.responder)
        self.timeline: Timeline | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.scheduler, self.transport, self.client))

    def client(self, **kwargs: Any) -> WebSocketClient:
        kwargs.setdefault("protocol", GenericJson())
        kwargs.setdefault("ping_interval", None)
        client = WebSocketClient(URL, transport=self.transport, scheduler=self.scheduler, **kwargs)
        self.timeline = Timeline(client, self.now)
        return client

    def now(self) -> float:
        return float(self.scheduler.clock)

    def at(self, time: float, action: Callable[[], Any]) -> None:
        """Run ``action`` at virtual time ``time``."""
        self.scheduler.schedule_absolute(time, lambda _s, _st: action())

    def run(self, until: float | None = None) -> None:
        """Advance virtual time to ``until`` (or until nothing is scheduled)."""
        if until is None:
            self.scheduler.start()
        else:
            self.scheduler.advance_to(until)
