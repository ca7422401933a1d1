"""The inbound path after a session decoded and routed a frame: replies, acks, notices.

A :class:`~rxws._session.Session` decodes and classifies every frame and hands data straight to
the router; everything else comes here (:class:`Inbound`, the client's
:class:`~rxws._session.SessionInbound`): a reply settles its request, an ack by topic settles its
subscription (or a rotation's), a venue error or notice becomes a ``VenueNotice`` (and may start a
rotation when the host's policy says so), and data nobody watches is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from rxws._client_base import ClientContext, _plain
from rxws._lifecycle import Lifecycle
from rxws._requests import Requests
from rxws._rotation import Rotation
from rxws._session import Session
from rxws._watching import Topics
from rxws.events import UnroutedMessage, VenueNotice
from rxws.protocols.base import MessageKind
from rxws.transport.base import Frame

__all__: list[str] = []

_ACK, _UNACK, _CONTROL, _ERROR = MessageKind.ACK, MessageKind.UNACK, MessageKind.CONTROL, MessageKind.ERROR


class Inbound:
    """Where sessions hand what is not routed data (see the module docstring)."""

    def __init__(
        self,
        ctx: ClientContext,
        *,
        requests: Requests,
        topics: Topics,
        lifecycle: Lifecycle,
        rotation: Rotation,
        server_time: Callable[[Any, float | None], None] = lambda _message, _sent: None,
    ) -> None:
        self._ctx = ctx
        self._requests = requests
        self._topics = topics
        self._lifecycle = lifecycle
        self._rotation = rotation
        self._server_time = server_time
        # A reply read on a session settles its request: handed to the requests part directly,
        # one call less per reply than through a method here.
        self.session_reply: Callable[[Session, Hashable, Any], None] = requests.on_reply

    def session_unrouted(self, key: Any, message: Any) -> None:
        """Data nobody watches (or with no topic): counted and reported."""
        self.unrouted(key, message)

    def session_internal_error(self, session: Session, error: Exception, frame: Frame) -> None:
        """Handling a frame raised: reported (see :meth:`ClientContext.internal_error`); when
        rxws's own bookkeeping raised, the connection is closed with 1011 and handled as a drop."""
        untrusted = self._ctx.internal_error(error, frame)
        if untrusted is not None:
            self._lifecycle.untrusted(untrusted)

    def session_control(self, session: Session, kind: MessageKind, key: Any, message: Any) -> None:
        """Acks by topic, venue errors tied to no request, notices, control frames."""
        ctx = self._ctx
        protocol = ctx.protocol
        if session is not self._lifecycle.session and self._rotation.control(session, kind, message):
            return
        if kind is _ACK:
            self._topics.on_ack_topics(session, protocol.ack_topics(message), protocol.reply_error(message))
        elif kind is _UNACK:
            self._topics.on_ack_topics(
                session, protocol.ack_topics(message), protocol.reply_error(message), unsubscribe=True
            )
        elif kind is _ERROR:
            error = protocol.reply_error(message)
            ctx.emit(
                VenueNotice(
                    at=ctx.now(),
                    code=None if error is None else _plain(error.code),
                    detail=str(error.message if error is not None else message)[:200],
                )
            )
        elif kind is MessageKind.NOTICE:
            code, detail = protocol.notice_detail(message)
            notice = VenueNotice(at=ctx.now(), code=code, detail=detail, notice=str(key))
            ctx.emit(notice)
            self._rotation.notice(session, notice)
        elif kind is _CONTROL:  # a pong may state the venue's time (Bybit's private pong)
            self._server_time(message, session.app_ping_at)
        else:
            self.unrouted(None, message)

    def unrouted(self, topic: Any, message: Any) -> None:
        """Count and report a data message nobody receives."""
        ctx = self._ctx
        ctx.stats.unrouted += 1
        why = "no topic" if topic is None else "nobody watches this topic"
        ctx.emit(UnroutedMessage(at=ctx.now(), topic=None if topic is None else str(topic), why=why))
