"""rxws: a reactive WebSocket client for trading venues.

Connection state, inbound messages, rate-limit events and gap notifications are ``reactivex``
observables; the host decides every lifecycle step. See README.md for a tour.
"""

from rxws.client import ClientStats, WebSocketClient
from rxws.core.backoff import ExponentialBackoff
from rxws.core.state import ConnectionState
from rxws.events import (
    ClientEvent,
    Connected,
    DecodeFailed,
    Disconnected,
    DisconnectReason,
    GapDetected,
    MessageDropped,
    ReconnectDenied,
    Reconnected,
    ReconnectProposed,
    SubscriptionsRestored,
)
from rxws.exceptions import (
    ConnectFailed,
    ConnectionClosed,
    ConnectionLost,
    DecodeError,
    HandshakeRejected,
    HeartbeatTimeout,
    InvalidURL,
    MessageTooBig,
    NotConnected,
    RateLimitExceeded,
    RequestTimeout,
    RxwsError,
    SharedStoreError,
    SubscriptionLimitExceeded,
    TransportError,
    UsageError,
    VenueError,
)
from rxws.pool import ConnectionPool
from rxws.reconnect import ReconnectPolicy
from rxws.subscriptions import SubscriptionManager, SubscriptionSnapshot

__version__ = "0.1.0"

__all__ = [
    "ClientEvent",
    "ClientStats",
    "ConnectFailed",
    "Connected",
    "ConnectionClosed",
    "ConnectionLost",
    "ConnectionPool",
    "ConnectionState",
    "DecodeError",
    "DecodeFailed",
    "DisconnectReason",
    "Disconnected",
    "ExponentialBackoff",
    "GapDetected",
    "HandshakeRejected",
    "HeartbeatTimeout",
    "InvalidURL",
    "MessageDropped",
    "MessageTooBig",
    "NotConnected",
    "RateLimitExceeded",
    "ReconnectDenied",
    "ReconnectPolicy",
    "ReconnectProposed",
    "Reconnected",
    "RequestTimeout",
    "RxwsError",
    "SharedStoreError",
    "SubscriptionLimitExceeded",
    "SubscriptionManager",
    "SubscriptionSnapshot",
    "SubscriptionsRestored",
    "TransportError",
    "UsageError",
    "VenueError",
    "WebSocketClient",
]
