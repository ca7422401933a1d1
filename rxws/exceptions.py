"""The rxws error tree.

Every error rxws raises derives from :class:`RxwsError`. Local misuse (a bad argument, a command
in the wrong state) is kept apart from remote failures (what the network or the venue did), so a
host can catch "the venue said no" without also catching its own bugs::

    RxwsError
    ├── UsageError                      local misuse: fix the calling code
    │   ├── InvalidURL                  the URL is not ws:// or wss:// with a host
    │   ├── InvalidTransition           a ConnectionState change the table forbids
    │   ├── EncodeError                 an outbound message cannot be encoded (e.g. not JSON-able)
    │   └── NotConnected                a command that needs a live connection, without one
    ├── TransportError                  the network or the WebSocket protocol failed
    │   ├── ConnectFailed               the connection could not be opened (refused, DNS, TLS)
    │   │   ├── HandshakeRejected       the server answered the upgrade with an HTTP status
    │   │   └── ProxyError              the proxy was unreachable, refused the tunnel or broke off
    │   │       └── ProxyAuthFailed     the proxy refused the credentials (407, SOCKS5 auth)
    │   ├── ConnectionLost              an open connection ended before the work was done
    │   │   └── ConnectionClosed        the peer (or we) closed it with a close code
    │   ├── ProtocolError               the peer broke the WebSocket protocol
    │   │   └── MessageTooBig           an inbound frame over ``max_size`` (close 1009)
    │   └── HeartbeatTimeout            no pong or data before the deadline (half-open)
    ├── DecodeError                     an inbound frame could not be decoded
    ├── VenueError                      the venue answered a request with an error
    ├── RequestTimeout                  no reply before the request's deadline
    ├── RateLimitExceeded               a rate limit refused the action or its queue overflowed
    │   └── PenaltyActive               the venue said "too many" and the penalty has not ended
    ├── SharedStoreError                the shared rate-limit ledger (Redis) failed
    ├── SubscriptionLimitExceeded       more topics than the venue allows per connection
    ├── ReconnectDeniedError            the host's policy refused to reconnect
    ├── BackoffExhausted                the backoff policy ran out of attempts
    ├── SnapshotError                   a subscription snapshot is corrupt or foreign
    ├── RecordingError                  a session recording is corrupt, truncated or foreign
    └── AuthenticationError             the venue refused the login, or it got no answer
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BackoffExhausted",
    "ConnectFailed",
    "ConnectionClosed",
    "ConnectionLost",
    "DecodeError",
    "EncodeError",
    "HandshakeRejected",
    "HeartbeatTimeout",
    "InvalidTransition",
    "InvalidURL",
    "MessageTooBig",
    "NotConnected",
    "PenaltyActive",
    "ProtocolError",
    "ProxyAuthFailed",
    "ProxyError",
    "RateLimitExceeded",
    "ReconnectDeniedError",
    "RecordingError",
    "RequestTimeout",
    "RxwsError",
    "SharedStoreError",
    "SnapshotError",
    "SubscriptionLimitExceeded",
    "TransportError",
    "UsageError",
    "VenueError",
]


class RxwsError(Exception):
    """Root of every error rxws raises."""


class UsageError(RxwsError):
    """Local misuse: the calling code asked for something that cannot be done."""


class InvalidURL(UsageError, ValueError):
    """The URL is not a ``ws://`` or ``wss://`` URL with a host."""


class InvalidTransition(UsageError):
    """A connection state change that the transition table forbids."""

    def __init__(self, source: object, target: object) -> None:
        super().__init__(f"illegal connection state transition {source} -> {target}")
        self.source = source
        self.target = target


class EncodeError(UsageError, TypeError):
    """An outbound message (``send()``, ``request()`` params) cannot be encoded into a frame.

    Raised through the command's result, whichever JSON library is installed; the message names
    the offending type. Also a ``TypeError``, as the JSON libraries' own errors were.
    """


class NotConnected(UsageError):
    """A command that needs a live connection was called without one."""


class TransportError(RxwsError):
    """The network or the WebSocket protocol failed."""


class ConnectFailed(TransportError):
    """The connection could not be opened (refused, unreachable, DNS, TLS)."""


class HandshakeRejected(ConnectFailed):
    """The server answered the WebSocket upgrade with an HTTP status instead of 101."""

    def __init__(self, status: int, retry_after: float | None = None, detail: str = "") -> None:
        super().__init__(f"handshake rejected with HTTP {status}" + (f": {detail}" if detail else ""))
        self.status = status
        self.retry_after = retry_after


class ConnectionLost(TransportError):
    """An open connection ended before the work that needed it was done."""


class ConnectionClosed(ConnectionLost):
    """The connection was closed with a close frame (by the peer or locally)."""

    def __init__(self, code: int | None, reason: str = "", *, by_peer: bool = True) -> None:
        who = "peer" if by_peer else "client"
        super().__init__(f"connection closed by {who} with code {code}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.reason = reason
        self.by_peer = by_peer


class ProtocolError(TransportError):
    """The peer broke the WebSocket protocol; ``code`` is the close code we failed it with."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class MessageTooBig(ProtocolError):
    """An inbound frame was larger than ``max_size``; the connection is closed with 1009."""


class HeartbeatTimeout(TransportError):
    """No pong (or no data) arrived before the heartbeat deadline: the connection is half-open."""


class DecodeError(RxwsError):
    """An inbound frame could not be decoded into a message."""


class VenueError(RxwsError):
    """The venue answered with an error.

    Attributes:
        code: the venue's error code, or ``None`` when the venue gave none.
        message: the venue's error text.
        payload: the whole decoded error reply, for venue-specific details.
    """

    def __init__(self, code: int | str | None, message: str, payload: Any = None) -> None:
        super().__init__(f"venue error {code}: {message}")
        self.code = code
        self.message = message
        self.payload = payload


class RequestTimeout(RxwsError, TimeoutError):
    """No reply arrived before the request's deadline; the pending entry has been removed."""

    def __init__(self, request_id: object, timeout: float) -> None:
        super().__init__(f"request {request_id!r} got no reply within {timeout:g}s")
        self.request_id = request_id
        self.timeout = timeout


class RateLimitExceeded(RxwsError):
    """A rate limit refused the action, or the queue in front of it overflowed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PenaltyActive(RateLimitExceeded):
    """The venue signalled a violation and the penalty for that scope has not ended yet."""


class SharedStoreError(RxwsError):
    """The shared ledger (Redis) could not be reached or refused a command."""


class SubscriptionLimitExceeded(RxwsError):
    """More topics than the venue allows on one connection."""


class ReconnectDeniedError(RxwsError):
    """The host's reconnect policy refused the attempt."""


class BackoffExhausted(RxwsError):
    """The backoff policy has no attempts left."""


class SnapshotError(RxwsError):
    """A subscription snapshot is corrupt, of an unknown schema, or for another venue."""


class RecordingError(RxwsError):
    """A session recording (:mod:`rxws.testing.recorder`) is corrupt, truncated or of an unknown format.

    Attributes:
        path: the file (or stream name) the recording was read from.
        line: the 1-based line at fault, or ``None`` when the fault is not on one line.
    """

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


# Issue 13: authentication -----------------------------------------------------------------------
class AuthenticationError(RxwsError):
    """The login failed: the venue refused it (``refused``), or no answer came in time.

    A refusal is never retried without the host's approval. The message holds the venue's code
    and text only, never a credential.

    Attributes:
        code: the venue's error code, or None.
        detail: the venue's text (or why no answer came).
        refused: True when the venue said no; False for a timeout or a lost connection.
    """

    def __init__(self, code: int | str | None, detail: str, *, refused: bool = True) -> None:
        what = "login refused" if refused else "login failed"
        super().__init__(f"{what} ({code}): {detail}" if code is not None else f"{what}: {detail}")
        self.code = code
        self.detail = detail
        self.refused = refused


# Issue 14 (proxies) -------------------------------------------------------------------------------


class ProxyError(ConnectFailed):
    """The proxy could not be reached, refused the tunnel, or broke off its own handshake.

    The message names the proxy by scheme, host and port only: its credentials never appear.

    Attributes:
        code: the proxy's answer, when it gave one: the HTTP status of its reply to ``CONNECT``, or
            the SOCKS5 reply code (RFC 1928 section 6: ``0x02`` not allowed by ruleset, ``0x05``
            connection refused, ...); ``None`` when it answered nothing usable.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ProxyAuthFailed(ProxyError):
    """The proxy refused the credentials: HTTP ``407``, or a failed SOCKS5 username/password
    sub-negotiation (RFC 1929) or no acceptable authentication method."""
