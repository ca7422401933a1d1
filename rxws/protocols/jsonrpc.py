"""JsonRpc: the JSON-RPC 2.0 dialect (https://www.jsonrpc.org/specification).

Client → venue: requests ``{"jsonrpc": "2.0", "id": n, "method": m, "params": p}``; subscriptions are
requests too, ``{"method": subscribe_method, "params": {channels_param: [topic, ...]}}``.
Venue → client: replies ``{"jsonrpc": "2.0", "id": n, "result": r}`` or
``{"jsonrpc": "2.0", "id": n, "error": {"code": c, "message": m}}``; data arrives as notifications
``{"jsonrpc": "2.0", "method": notification_method, "params": {"channel": topic, "data": d}}``
(the shape Deribit uses; other servers can be matched with the constructor's keywords).

How messages are read:

* a reply whose ``id`` is an int or a string is ``REPLY`` keyed by that id;
* an error reply with ``"id": null`` (the spec's answer to unparsable input) is ``ERROR`` keyed by
  its code; a reply whose id is any other JSON type (list, object, float, bool) is ``UNKNOWN``;
* a notification with ``method == notification_method`` and a string ``params.channel`` is
  ``DATA`` keyed by that channel; without a channel it is ``UNKNOWN``;
* any other request or notification from the server is ``CONTROL`` keyed by its method name;
* batches (a JSON array) and every non-object are ``UNKNOWN``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

from rxws.exceptions import VenueError
from rxws.protocols.base import MessageKind, VenueProtocol

__all__ = ["JsonRpc"]

_DATA = MessageKind.DATA
_REPLY = MessageKind.REPLY
_CONTROL = MessageKind.CONTROL
_ERROR = MessageKind.ERROR
_UNKNOWN = MessageKind.UNKNOWN


class JsonRpc(VenueProtocol):
    """The JSON-RPC 2.0 dialect, with configurable subscribe methods.

    Args:
        subscribe_method: method of the request that subscribes channels.
        unsubscribe_method: method of the request that unsubscribes channels.
        channels_param: name of the list of channels inside ``params``.
        notification_method: method of the server's data notifications.
        max_topics_per_message: channels allowed in one subscribe request (None = no limit).
        max_topics_per_connection: channels allowed on one connection (None = no limit).
    """

    name: ClassVar[str] = "jsonrpc"

    def __init__(
        self,
        *,
        # Methods
        subscribe_method: str = "subscribe",
        unsubscribe_method: str = "unsubscribe",
        channels_param: str = "channels",
        notification_method: str = "subscription",
        # Limits
        max_topics_per_message: int | None = None,
        max_topics_per_connection: int | None = None,
    ) -> None:
        self.subscribe_method = subscribe_method
        self.unsubscribe_method = unsubscribe_method
        self.channels_param = channels_param
        self.notification_method = notification_method
        self.max_topics_per_message = max_topics_per_message
        self.max_topics_per_connection = max_topics_per_connection

    # Outbound messages -------------------------------------------------------------------
    def subscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """A request calling ``subscribe_method`` with ``{channels_param: topics}``."""
        return self.request_message(self.subscribe_method, {self.channels_param: list(topics)}, request_id)

    def unsubscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """A request calling ``unsubscribe_method`` with ``{channels_param: topics}``."""
        return self.request_message(self.unsubscribe_method, {self.channels_param: list(topics)}, request_id)

    def request_message(self, method: str, params: Any, request_id: Hashable) -> Any:
        """A JSON-RPC 2.0 request object; ``params`` is left out when None."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        return message

    # Reading inbound messages --------------------------------------------------------------
    def classify(self, message: Any) -> tuple[MessageKind, Any]:
        """Say whether ``message`` is a reply, a notification with data, or a server request."""
        if type(message) is not dict:
            return _UNKNOWN, None
        method = message.get("method")
        if method is not None:
            if method == self.notification_method:
                params = message.get("params")
                if type(params) is dict:
                    channel = params.get("channel")
                    if type(channel) is str:
                        return _DATA, channel
                return _UNKNOWN, None
            if type(method) is str:
                return _CONTROL, method
            return _UNKNOWN, None
        if "id" in message:
            rid = message["id"]
            if type(rid) is int or type(rid) is str:
                return _REPLY, rid
            if rid is None and "error" in message:
                return _ERROR, _error_code(message.get("error"))
            return _UNKNOWN, None
        if "error" in message:
            return _ERROR, _error_code(message.get("error"))
        return _UNKNOWN, None

    def reply_error(self, message: Any) -> VenueError | None:
        """The ``error`` member as a VenueError; a missing or non-scalar code becomes None."""
        if type(message) is not dict or message.get("error") is None:
            return None
        error = message["error"]
        if type(error) is dict:
            return VenueError(_error_code(error), str(error.get("message", "")), message)
        return VenueError(None, str(error), message)

    def reply_result(self, message: Any) -> Any:
        """The ``result`` member (None when absent)."""
        return message.get("result") if type(message) is dict else None


def _error_code(error: Any) -> int | str | None:
    """The ``code`` of a JSON-RPC error object when it is an int or a string, else None."""
    if type(error) is not dict:
        return None
    code = error.get("code")
    return code if type(code) is int or type(code) is str else None
