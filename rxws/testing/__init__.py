"""Test helpers that ship with rxws: a real mock venue, a fault-injecting proxy, a virtual-time
responder, server dialects, session record and replay, and HTTP CONNECT / SOCKS5 proxies."""

from rxws.testing._proxies import HttpConnectProxy, Socks5Proxy, TunnelStats
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
    "HttpConnectProxy",
    "MockVenue",
    "ProxyStats",
    "Recorder",
    "ReplayTransport",
    "ReplayVenue",
    "Responder",
    "ServerDialect",
    "Socks5Proxy",
    "TunnelStats",
    "VenueConnection",
    "server_dialect",
]
