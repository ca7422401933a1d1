"""Message routing: one dict from route key (topic) to the sink of that topic's observers.

Routing costs one dict lookup per message whatever the number of topics — never a filter per
observer. The router is sans-I/O: sinks are plain callables.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["Router"]

Sink = Callable[[Any], None]


class Router:
    """Sends each message to the sink registered for its key, and counts what it could not route."""

    __slots__ = ("_routes", "lookup", "routed", "unrouted")

    def __init__(self) -> None:
        self._routes: dict[Hashable, Sink] = {}
        self.lookup: Callable[[Hashable], Sink | None] = self._routes.get
        """The sink for a key, or None: the dict's own ``get``, for hot paths."""
        self.routed = 0
        self.unrouted = 0

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._routes

    def keys(self) -> list[Hashable]:
        return list(self._routes)

    def add(self, key: Hashable, sink: Sink) -> None:
        """Route ``key`` to ``sink``.

        Raises:
            KeyError: ``key`` already has a sink.
        """
        if key in self._routes:
            raise KeyError(f"route {key!r} already exists")
        self._routes[key] = sink

    def remove(self, key: Hashable) -> Sink | None:
        """Stop routing ``key``; returns its sink, or None if it had none."""
        return self._routes.pop(key, None)

    def get(self, key: Hashable) -> Sink | None:
        """The sink for ``key``, or None."""
        return self._routes.get(key)

    def route(self, key: Hashable, message: Any) -> bool:
        """Deliver ``message`` to ``key``'s sink; False (and counted) when nobody watches ``key``."""
        sink = self._routes.get(key)
        if sink is None:
            self.unrouted += 1
            return False
        self.routed += 1
        sink(message)
        return True
