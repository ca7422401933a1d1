"""Client events: one small frozen pydantic model per event, matched on its ``kind`` field.

Events carry no behaviour. Each has ``at``, the client's scheduler time (seconds) when it was
emitted, so virtual-time tests can assert exact timelines. ``ClientEvent`` is the discriminated
union of them all; ``ClientEventAdapter.validate_python(d)`` parses one back from a dict.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rxws._html import fields_html

__all__ = [
    "AuthFailed",
    "Authenticated",
    "ClientEvent",
    "ClientEventAdapter",
    "ClockSkew",
    "Connected",
    "DecodeFailed",
    "DisconnectReason",
    "Disconnected",
    "Event",
    "GapDetected",
    "HeartbeatMissed",
    "InternalError",
    "KeepaliveFailed",
    "LateReply",
    "MessageDropped",
    "ObserverFailed",
    "OutboundFailed",
    "ReconnectDenied",
    "ReconnectProposed",
    "Reconnected",
    "Rotated",
    "RotationFailed",
    "RotationStarted",
    "SubscriptionChanged",
    "SubscriptionDrift",
    "SubscriptionFailed",
    "SubscriptionsRestored",
    "UnroutedMessage",
    "VenueNotice",
]


class DisconnectReason(StrEnum):
    """Why a connection ended (or failed to open)."""

    USER = "USER"
    """The host called ``close()``."""
    REMOTE_CLOSED = "REMOTE_CLOSED"
    """The venue sent a close frame; ``code``/``detail`` carry its code and reason."""
    NETWORK_ERROR = "NETWORK_ERROR"
    """The TCP connection broke without a close frame, or could not be opened."""
    PROTOCOL_ERROR = "PROTOCOL_ERROR"
    """The peer broke the WebSocket protocol, or sent a frame over ``max_size`` (1009)."""
    HEARTBEAT_TIMEOUT = "HEARTBEAT_TIMEOUT"
    """No pong or data arrived before the heartbeat deadline (half-open connection)."""
    RATE_LIMITED = "RATE_LIMITED"
    """The venue closed or refused us for sending too much (1008, HTTP 429/418, venue codes)."""
    INTERNAL_ERROR = "INTERNAL_ERROR"
    """rxws closed the connection (1011) after its own bookkeeping failed on an inbound frame."""

    def __str__(self) -> str:
        return self.value


class Event(BaseModel):
    """Base of all client events."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    at: float = 0.0

    def _repr_html_(self) -> str:  # issue 16: how Jupyter shows an event
        fields = self.model_dump()
        kind = fields.pop("kind", type(self).__name__)
        return fields_html(f"{type(self).__name__} ({kind})", fields)


class Connected(Event):
    """The connection is open (the first time or after a reconnect)."""

    kind: Literal["connected"] = "connected"
    url: str = ""
    attempt: int = 0


class Disconnected(Event):
    """The connection ended or could not be opened.

    ``code`` is the WebSocket close code when there was a close frame; ``detail`` names the cause.
    """

    kind: Literal["disconnected"] = "disconnected"
    reason: DisconnectReason
    code: int | None = None
    detail: str = ""


class ReconnectProposed(Event):
    """rxws proposes a reconnection; the host's ``approve`` sees this event and decides."""

    kind: Literal["reconnect_proposed"] = "reconnect_proposed"
    attempt: int
    delay: float
    cause: str


class ReconnectDenied(Event):
    """A proposed reconnection was refused (by the host or by the policy running out)."""

    kind: Literal["reconnect_denied"] = "reconnect_denied"
    attempt: int
    why: str = ""


class Reconnected(Event):
    """A reconnection succeeded; ``downtime`` is the seconds between the drop and now."""

    kind: Literal["reconnected"] = "reconnected"
    attempt: int
    downtime: float


class SubscriptionsRestored(Event):
    """After a reconnection, the desired topics were resubscribed."""

    kind: Literal["subscriptions_restored"] = "subscriptions_restored"
    confirmed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class SubscriptionChanged(Event):
    """A topic's subscription state changed (DESIRED, PENDING, CONFIRMED, FAILED, ...)."""

    kind: Literal["subscription_changed"] = "subscription_changed"
    topic: str
    state: str


class SubscriptionFailed(Event):
    """The venue refused to subscribe a topic."""

    kind: Literal["subscription_failed"] = "subscription_failed"
    topic: str
    code: int | str | None = None
    detail: str = ""


class SubscriptionDrift(Event):
    """The venue's own list of subscriptions differs from what the client believes."""

    kind: Literal["subscription_drift"] = "subscription_drift"
    missing_at_venue: tuple[str, ...] = ()
    unexpected_at_venue: tuple[str, ...] = ()


class GapDetected(Event):
    """Data on ``topic`` may have been missed between ``start`` and ``end`` (scheduler seconds).

    ``kind_of_gap`` is ``"disconnect"`` for a connection loss, ``"sequence"`` for a jump in the
    topic's sequence numbers, ``"duplicate"`` or ``"regression"`` for numbers that repeat or go back.
    """

    kind: Literal["gap_detected"] = "gap_detected"
    topic: str
    gap: Literal["disconnect", "sequence", "duplicate", "regression"]
    start: float | None = None
    end: float | None = None
    last_seq: int | None = None
    next_seq: int | None = None


class HeartbeatMissed(Event):
    """No pong or data arrived within the heartbeat deadline."""

    kind: Literal["heartbeat_missed"] = "heartbeat_missed"
    silent_for: float
    topic: str | None = None


class MessageDropped(Event):
    """A message was dropped on purpose (overflow policy, closed stream); ``count`` says how many."""

    kind: Literal["message_dropped"] = "message_dropped"
    reason: str
    count: int = 1
    topic: str | None = None


class DecodeFailed(Event):
    """An inbound frame (or a topic's typed model) could not be decoded; the stream goes on."""

    kind: Literal["decode_failed"] = "decode_failed"
    detail: str
    topic: str | None = None
    sample: str = ""


class UnroutedMessage(Event):
    """A data message for a topic nobody watches, or with no topic at all."""

    kind: Literal["unrouted_message"] = "unrouted_message"
    topic: str | None = None
    why: str = ""


class LateReply(Event):
    """A reply whose request already timed out, or whose id nobody is waiting for."""

    kind: Literal["late_reply"] = "late_reply"
    request_id: Any = None
    why: str = ""


class ObserverFailed(Event):
    """A host observer raised; it was isolated and the other observers went on.

    ``stream`` says which stream the observer was on: ``"topic"`` (a ``watch()``; ``topic``
    names it), ``"messages"``, ``"events"``, ``"state"``, ``"rate_limit_events"`` or
    ``"instrumentation"`` (a sink given to ``client.add_instrumentation`` raised). An
    observer of ``events`` that raises on this very event is only logged and counted (no
    further event: the report cannot loop).
    """

    kind: Literal["observer_failed"] = "observer_failed"
    topic: str | None = None
    error: str
    stream: str = "topic"


class InternalError(Event):
    """An exception was raised while handling an inbound frame; the frame was skipped.

    ``where`` names what raised: ``"protocol.<method>"`` when the venue dialect failed on this
    frame (the connection goes on with the next frame), ``"client.<function>"`` when rxws's own
    bookkeeping failed (its state can no longer be trusted: the connection is closed with 1011
    and a ``Disconnected(reason=INTERNAL_ERROR)`` follows). ``error`` is the exception's type and
    text, ``sample`` the start of the frame. Counted in ``ClientStats.internal_errors`` and
    logged at WARNING with the traceback.
    """

    kind: Literal["internal_error"] = "internal_error"
    where: str
    error: str
    sample: str = ""


class VenueNotice(Event):
    """A venue message that is an error or notice not tied to any request (e.g. a bad frame).

    ``notice`` says which: ``"error"`` for an error message, else the label the dialect gives a
    venue notice (``MessageKind.NOTICE``): ``"shutdown"`` when the venue says it will close this
    connection soon (Binance ``serverShutdown``, OKX ``64008``), ``"maintenance"`` for a
    scheduled maintenance announcement. The host decides whether to reconnect or rotate.
    """

    kind: Literal["venue_notice"] = "venue_notice"
    code: int | str | None = None
    detail: str = ""
    notice: str = "error"


class OutboundFailed(Event):
    """Queued outbound messages were failed (not sent) because the connection was lost."""

    kind: Literal["outbound_failed"] = "outbound_failed"
    count: int
    why: str = ""


# Issue 13: authentication, clock offset, keepalive tasks ---------------------------------------
class Authenticated(Event):
    """The venue accepted the login (after connecting, reconnecting, rotating or refreshing).

    ``expires_in`` is how long the authorization lasts when the venue says (Deribit), in seconds;
    ``refreshed`` marks a token refresh rather than a login.
    """

    kind: Literal["authenticated"] = "authenticated"
    expires_in: float | None = None
    refreshed: bool = False


class AuthFailed(Event):
    """The venue refused the login, or no answer came in time (``code`` None, ``refused`` False).

    ``code`` and ``detail`` are the venue's; no credential ever appears in them.
    """

    kind: Literal["auth_failed"] = "auth_failed"
    code: int | str | None = None
    detail: str = ""
    refused: bool = True


class ClockSkew(Event):
    """The estimated venue clock offset (venue minus local, seconds) nears the venue's window
    for login timestamps (``window`` seconds: OKX 30, Bybit the ``expires`` margin, Binance 1)."""

    kind: Literal["clock_skew"] = "clock_skew"
    offset: float
    window: float | None = None


class KeepaliveFailed(Event):
    """One run of a ``client.every`` task failed; the task keeps its schedule.

    ``error`` is the exception's type and text (secrets masked).
    """

    kind: Literal["keepalive_failed"] = "keepalive_failed"
    name: str
    error: str


# issue 12: make-before-break rotation ------------------------------------------------------------


class RotationStarted(Event):
    """A new connection opens beside the serving one, to take over from it (make before break).

    ``reason``: ``"host"`` (``client.rotate()``), ``"max_age"`` (``max_connection_age``) or
    ``"notice"`` (a venue shutdown/maintenance notice the host's policy rotates on).
    """

    kind: Literal["rotation_started"] = "rotation_started"
    reason: str = "host"
    conn_id: str = ""


class Rotated(Event):
    """The new connection took over; the old one is closing with 1000.

    ``overlap`` is how long both connections delivered; ``switched`` lists every topic moved over,
    ``unsequenced`` those among them without sequence numbers or dedupe keys, which switched at
    their first message on the new connection after the overlap (a duplicate or a missed message
    at that instant cannot be ruled out for them).
    """

    kind: Literal["rotated"] = "rotated"
    overlap: float = 0.0
    switched: tuple[str, ...] = ()
    unsequenced: tuple[str, ...] = ()
    conn_id: str = ""


class RotationFailed(Event):
    """The new connection could not open, subscribe or catch up: the old one keeps serving."""

    kind: Literal["rotation_failed"] = "rotation_failed"
    reason: str = "host"
    detail: str = ""


# The union of every event above (keep it last) ---------------------------------------------------
ClientEvent = Annotated[
    Connected
    | Disconnected
    | ReconnectProposed
    | ReconnectDenied
    | Reconnected
    | SubscriptionsRestored
    | SubscriptionChanged
    | SubscriptionFailed
    | SubscriptionDrift
    | GapDetected
    | HeartbeatMissed
    | MessageDropped
    | DecodeFailed
    | UnroutedMessage
    | LateReply
    | ObserverFailed
    | InternalError
    | OutboundFailed
    | VenueNotice
    | Authenticated
    | AuthFailed
    | ClockSkew
    | KeepaliveFailed
    | RotationStarted
    | Rotated
    | RotationFailed,
    Field(discriminator="kind"),
]
"""Any client event, discriminated on ``kind``."""

ClientEventAdapter: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)
"""Parses and dumps any client event: ``ClientEventAdapter.validate_python(d)``."""
