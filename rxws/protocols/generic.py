"""GenericJson: the dialect MockVenue speaks (DESIGN.md section 4).

Client → venue: ``{"op": "subscribe" | "unsubscribe", "id": n, "args": [topic, ...]}`` and
requests ``{"op": method, "id": n, "params": {...}}``; ``{"op": "list_subscriptions", "id": n}``
asks for the connection's topics. Venue → client: replies
``{"id": n, "result": ...}`` or ``{"id": n, "error": {"code": c, "message": m}}``; data
``{"topic": t, "seq": n, "data": ...}`` with ``seq`` rising by one per topic.

Login (issue 13): ``{"op": "login", "id": n, "params": {"api_key": k, "timestamp": ms,
"signature": hex(HMAC_SHA256(secret, k + str(ms)))}}``, answered ``{"id": n, "result":
{"authenticated": true, "time": <venue ms>}}`` or an error reply (MockVenue: 401 bad key or
signature, 408 a timestamp more than 30 s off). Topics starting ``private.`` are private.

A multi-frame reply (issue 16) is sent as ``{"id": n, "result": part, "partial": true}`` for
every part but the last, then an ordinary reply (no ``partial``, or ``"partial": false``) with
the last part; an error reply ends it. MockVenue's ``parts`` request answers this way.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rxws.auth import generic_signature
from rxws.exceptions import VenueError
from rxws.protocols.base import LoginStep, MessageKind, Seq, VenueProtocol, make_seq

if TYPE_CHECKING:
    from rxws.auth import Credentials

__all__ = ["GenericJson"]

_DATA = MessageKind.DATA
_REPLY = MessageKind.REPLY
_UNKNOWN = MessageKind.UNKNOWN
_ERROR = MessageKind.ERROR


class GenericJson(VenueProtocol):
    """The generic JSON dialect; also a template for writing a venue dialect."""

    name: ClassVar[str] = "generic"
    seq_field: ClassVar[str | None] = "seq"  # what sequence() reads: Seq(n, n) for an int "seq"

    def __init__(
        self,
        *,
        max_topics_per_message: int | None = None,
        max_topics_per_connection: int | None = None,
    ) -> None:
        self.max_topics_per_message = max_topics_per_message
        self.max_topics_per_connection = max_topics_per_connection

    def subscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        return {"op": "subscribe", "id": request_id, "args": list(topics)}

    def unsubscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        return {"op": "unsubscribe", "id": request_id, "args": list(topics)}

    def request_message(self, method: str, params: Any, request_id: Hashable) -> Any:
        message: dict[str, Any] = {"op": method, "id": request_id}
        if params is not None:
            message["params"] = params
        return message

    def list_subscriptions_message(self, request_id: Hashable) -> Any:
        """``{"op": "list_subscriptions", "id": request_id}``, answered with the list of topics."""
        return {"op": "list_subscriptions", "id": request_id}

    def classify(self, message: Any) -> tuple[MessageKind, Any]:
        if type(message) is not dict:
            return _UNKNOWN, None
        topic = message.get("topic")
        if topic is not None:
            if type(topic) is str:
                return _DATA, topic
            return _UNKNOWN, None  # a topic must be a string: anything else is not routable
        if "id" in message:
            rid = message["id"]
            if rid is None and "error" in message:
                return _ERROR, _error_code(message)
            return _REPLY, rid
        if "error" in message:
            return _ERROR, _error_code(message)
        return _UNKNOWN, None

    def reply_error(self, message: Any) -> VenueError | None:
        error = message.get("error") if isinstance(message, dict) else None
        if error is None:
            return None
        if isinstance(error, dict):
            code = error.get("code")
            return VenueError(code, str(error.get("message", "")), message)
        return VenueError(None, str(error), message)

    def reply_result(self, message: Any) -> Any:
        return message.get("result") if type(message) is dict else None

    def sequence(self, message: Any) -> Seq | None:
        if type(message) is not dict:
            return None
        seq = message.get("seq")
        if type(seq) is not int:
            return None
        return make_seq(seq, seq)

    # Authentication (issue 13) --------------------------------------------------------------
    auth_window: float | None = 30.0

    def login_frames(self, credentials: Credentials, now_ms: int, request_id: Hashable) -> list[LoginStep]:
        """One ``login`` request signed with :func:`rxws.auth.generic_signature`."""
        key = credentials.api_key.get_secret_value()
        signature = generic_signature(credentials.secret.get_secret_value(), key, now_ms)
        params = {"api_key": key, "timestamp": now_ms, "signature": signature}
        return [LoginStep({"op": "login", "id": request_id, "params": params}, request_id)]

    def is_private(self, topic: str) -> bool:
        """Topics starting ``private.``."""
        return topic.startswith("private.")

    def server_time_ms(self, message: Any) -> float | None:
        """The ``time`` of a login reply's result."""
        result = message.get("result") if type(message) is dict else None
        time = result.get("time") if type(result) is dict else None
        return float(time) if type(time) is int or type(time) is float else None

    # Multi-frame replies (issue 16) ---------------------------------------------------------
    def is_partial(self, message: Any) -> bool:
        """True for ``{"id": n, "result": ..., "partial": true}``: more parts follow."""
        return type(message) is dict and message.get("partial") is True and "error" not in message


def _error_code(message: dict[str, Any]) -> Any:
    error = message.get("error")
    return error.get("code") if isinstance(error, dict) else None
