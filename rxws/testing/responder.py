"""Responder: the mock venue's behaviour on a MemoryTransport, in virtual time.

``MemoryTransport(responder=Responder())`` answers subscribes, requests and pings exactly as
MockVenue does over real sockets (both run :mod:`rxws.testing._venue_core`), but on the test's
scheduler, so marble tests get realistic replies without scripting every frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rxws._time import clock_of
from rxws.testing._venue_core import Close, SessionCore, VenueCore
from rxws.testing.dialects import ServerDialect
from rxws.transport.base import Frame
from rxws.transport.memory import MemoryPeer

__all__ = ["Responder"]


class Responder:
    """Plays the venue's side of each memory connection.

    Args:
        dialect: server dialect name or instance.
        refuse_topics: topics whose subscribe is refused.
        max_messages_per_second: close with 1008 above this client message rate.
    """

    def __init__(
        self,
        *,
        dialect: str | ServerDialect = "generic",
        refuse_topics: Iterable[str] = (),
        max_messages_per_second: int | None = None,
    ) -> None:
        self.core = VenueCore(
            dialect=dialect, refuse_topics=set(refuse_topics), max_messages_per_second=max_messages_per_second
        )
        self.sessions: list[tuple[MemoryPeer, SessionCore]] = []

    def __call__(self, peer: MemoryPeer) -> None:
        session = SessionCore(self.core, len(self.sessions) + 1)
        self.sessions.append((peer, session))
        now = clock_of(peer.scheduler)

        def on_receive(frame: Frame) -> None:
            for action in session.receive(frame, now()):
                if isinstance(action, Close):
                    peer.close(action.code, action.reason)
                    return
                if action.delay > 0:
                    peer.scheduler.schedule_relative(action.delay, _push_later(peer, action.frame))
                else:
                    peer.push(action.frame)

        peer.on_receive = on_receive

    @property
    def peer(self) -> MemoryPeer:
        """The newest connection's peer."""
        return self.sessions[-1][0]

    def topics(self) -> list[str]:
        """Topics the newest open connection is subscribed to."""
        for peer, session in reversed(self.sessions):
            if peer.open:
                return list(session.topics)
        return []

    def publish(self, topic: str, payload: Any = None, *, skip: int = 0) -> int:
        """Push one data message on ``topic`` to every open subscriber; returns how many."""
        frame = self.core.data_frame(topic, payload, skip)
        sent = 0
        for peer, session in self.sessions:
            if peer.open and topic in session.topics:
                peer.push(frame)
                sent += 1
        return sent


def _push_later(peer: MemoryPeer, frame: str) -> Any:
    def action(_s: Any, _st: Any = None) -> None:
        peer.push(frame)

    return action
