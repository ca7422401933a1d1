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
    InternalError,
    MessageDropped,
    ObserverFailed,
    OutboundFailed,
    ReconnectDenied,
    Reconnected,
    ReconnectProposed,
    Rotated,
    RotationFailed,
    RotationStarted,
    SubscriptionsRestored,
    VenueNotice,
)
from rxws.exceptions import (
    ConnectFailed,
    ConnectionClosed,
    ConnectionLost,
    DecodeError,
    EncodeError,
    HandshakeRejected,
    HeartbeatTimeout,
    InvalidURL,
    MessageTooBig,
    NotConnected,
    ProxyAuthFailed,
    ProxyError,
    RateLimitExceeded,
    RecordingError,
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
    "EncodeError",
    "ExponentialBackoff",
    "GapDetected",
    "HandshakeRejected",
    "HeartbeatTimeout",
    "InternalError",
    "InvalidURL",
    "MessageDropped",
    "MessageTooBig",
    "NotConnected",
    "ObserverFailed",
    "OutboundFailed",
    "ProxyAuthFailed",
    "ProxyError",
    "RateLimitExceeded",
    "ReconnectDenied",
    "ReconnectPolicy",
    "ReconnectProposed",
    "Reconnected",
    "RecordingError",
    "RequestTimeout",
    "Rotated",
    "RotationFailed",
    "RotationStarted",
    "RxwsError",
    "SharedStoreError",
    "SubscriptionLimitExceeded",
    "SubscriptionManager",
    "SubscriptionSnapshot",
    "SubscriptionsRestored",
    "TransportError",
    "UsageError",
    "VenueError",
    "VenueNotice",
    "WebSocketClient",
]

# Issue 13: authentication, clock skew, keepalive tasks
from rxws.auth import Credentials
from rxws.events import Authenticated, AuthFailed, ClockSkew, KeepaliveFailed
from rxws.exceptions import AuthenticationError

__all__ += [
    "AuthFailed",
    "Authenticated",
    "AuthenticationError",
    "ClockSkew",
    "Credentials",
    "KeepaliveFailed",
]
