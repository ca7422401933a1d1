"""Test helpers that ship with rxws: a real mock venue, a fault-injecting proxy, a virtual-time
responder, server dialects, and session record and replay."""

from rxws.testing.dialects import SERVER_DIALECTS, ClientOp, ServerDialect, server_dialect
from rxws.testing.fault_proxy import FaultProxy, FaultSettings, ProxyStats
from rxws.testing.recorder import Recorder
from rxws.testing.replay import ReplayTransport, ReplayVenue
from rxws.testing.responder import Responder
from rxws.testing.venue import MockVenue, VenueConnection

__all__ = [
    "SERVER_DIALECTS",
    "ClientOp",
    "FaultProxy",
    "FaultSettings",
    "MockVenue",
    "ProxyStats",
    "Recorder",
    "ReplayTransport",
    "ReplayVenue",
    "Responder",
    "ServerDialect",
    "VenueConnection",
    "server_dialect",
]
