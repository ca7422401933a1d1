"""A stand-in for WebSocketClient's public surface, for the metrics tests (not a test module).

It has what ``rxws.metrics`` reads (``name``, ``protocol``, ``events``, ``rate_limit_events``,
``messages``, ``stats``, ``state_value``, ``pending_requests``) and, with ``hooked=True``, the
instrumentation hook and ``outbound_queue_depth`` the lead is to add to the real client: the test
plays the client, calling the sink the way the client will.
"""

from __future__ import annotations

from typing import Any

from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

from rxws import ConnectionState
from rxws.client import ClientStats
from rxws.metrics import ClientInstrumentation
from rxws.protocols import GenericJson
from rxws.protocols.base import MessageKind, VenueProtocol


class FakeClient:
    """The public surface of a client, driven by hand."""

    def __init__(self, name: str = "fake", protocol: VenueProtocol | None = None) -> None:
        self.name = name
        self.protocol = protocol or GenericJson()
        self.events: Subject[Any] = Subject()
        self.rate_limit_events: Subject[Any] = Subject()
        self.messages: Subject[Any] = Subject()
        self.stats = ClientStats()
        self.state_value = ConnectionState.DISCONNECTED
        self.pending_requests = 0


class HookedClient(FakeClient):
    """A client that offers ``add_instrumentation`` and ``outbound_queue_depth``."""

    def __init__(self, name: str = "hooked", protocol: VenueProtocol | None = None) -> None:
        super().__init__(name, protocol)
        self.sinks: list[ClientInstrumentation] = []
        self.outbound_queue_depth = 0

    def add_instrumentation(self, sink: ClientInstrumentation) -> abc.DisposableBase:
        self.sinks.append(sink)
        return Disposable(lambda: self.sinks.remove(sink))

    def frame(self, frame: str) -> None:
        """What the client does with one inbound frame: decode, classify, call the sinks, publish."""
        self.stats.frames_in += 1
        message = self.protocol.decode(frame)
        kind, key = self.protocol.classify(message)
        topic = key if kind is MessageKind.DATA else None
        for sink in self.sinks:
            sink.on_message(topic, len(frame.encode()), message)
        self.messages.on_next(message)
