"""Bybit: the Bybit v5 WebSocket API (https://bybit-exchange.github.io/docs/v5/ws/connect), read 2026-11-25.

* Subscribe ``{"req_id": "7", "op": "subscribe", "args": ["orderbook.50.BTCUSDT", ...]}``,
  acknowledged by ``{"success": true, "ret_msg": "...", "req_id": "7", "op": "subscribe", ...}``
  (``REPLY`` keyed by the id; decimal ``req_id`` strings are read back as ints). Option channels
  acknowledge with ``{"type": "COMMAND_RESP", "data": {"successTopics": [...], ...}}``: ``ACK``.
* Data ``{"topic": "orderbook.50.BTCUSDT", "type": "snapshot" | "delta", "data": {...}}`` is
  ``DATA`` keyed by ``topic``.
* Sequence (gap detection follows each topic's documented rule; v5 "Orderbook" page,
  https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook, read 2026-11-30; a topic
  without a chain gets none, only disconnect windows):

  ====================================  ========================================  =====================
  topic and message                     documented rule                           ``sequence``
  ====================================  ========================================  =====================
  ``orderbook.{depth}.{symbol}`` delta  ``u`` "Update ID", continuous in general  ``Seq(u, u)``
  ``orderbook...`` snapshot             a snapshot resets the book; level 1       ``Seq(u, u,
                                        re-sends it after 3 s idle, same ``u``    reset=True)``
  ``orderbook...`` with ``u == 1``      the service restarted: a new snapshot     ``Seq(1, 1,
                                                                                  reset=True)``
  trades, tickers, klines, others       none (``seq``, the cross sequence, is     None
                                        not consecutive)
  ====================================  ========================================  =====================

* Notices: Bybit documents no message announcing that a connection will close (read
  2026-11-30), so this dialect produces no ``NOTICE``. Platform maintenance is announced on the
  ``system.status`` topic of the ``/v5/public/misc/status`` endpoint ("Get System Status":
  ``{"topic": "system.status", "data": [{"title", "state", "begin", "end", ...}]}``; it says that
  short pauses and WebSocket disconnections are *not* announced there). That topic is subscribed,
  so it stays ``DATA`` for its watchers (a ``NOTICE`` is never routed to a watcher).
* Dedupe keys (for redundant connections, :meth:`Bybit.dedupe_key`): the trade id ``i`` of
  each trade in a ``publicTrade.{symbol}`` push, whose ``data`` is a list of trades (v5
  "Trade", https://bybit-exchange.github.io/docs/v5/websocket/public/trade, read 2026-11-30):
  the id of a one-trade push, the tuple of ids otherwise.
* Heartbeat: ``{"op": "ping"}`` every 20 s; the answers ``{"success": true, "ret_msg": "pong",
  "op": "ping"}`` (public) and ``{"op": "pong", "args": [...]}`` (private) are ``CONTROL``.
* Errors: ``"success": false`` with ``ret_msg`` (no code: ``VenueError.code`` is None) and, on the
  order-entry endpoint, ``retCode``/``retMsg`` keyed by ``reqId``. Rate limits: ``retCode`` 10006
  "Too many visits", 10403 (IP limit) and 10429 (system frequency protection) give
  ``"bybit_<code>"``.
* Limits (public connections): spot takes at most 10 args per subscribe request; the ``args`` of
  one connection may not exceed 21,000 characters in all (:attr:`Bybit.max_chars_per_connection`);
  options take at most 2,000 args per connection.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, Literal

from rxws.exceptions import VenueError
from rxws.protocols.base import MessageKind, Seq, VenueProtocol, _ids, _remember, make_seq

__all__ = ["Bybit"]

_DATA = MessageKind.DATA
_REPLY = MessageKind.REPLY
_ACK = MessageKind.ACK
_CONTROL = MessageKind.CONTROL
_ERROR = MessageKind.ERROR
_UNKNOWN = MessageKind.UNKNOWN

_RATE_LIMIT_CODES = frozenset({10006, 10403, 10429})
_ARGS_CHARS_PER_CONNECTION = 21_000

Category = Literal["spot", "linear", "inverse", "option", "spread", "private"]


class Bybit(VenueProtocol):
    """The Bybit v5 WebSocket dialect.

    Args:
        category: which endpoint the connection uses; it sets the documented limits (spot: 10
            topics per subscribe request; option: 2,000 topics per connection).
        heartbeat_interval: seconds between ``{"op": "ping"}`` messages (20 s recommended).
    """

    name: ClassVar[str] = "bybit"

    max_chars_per_connection: int | None = _ARGS_CHARS_PER_CONNECTION
    """Characters all ``args`` of one public connection may take together (21,000)."""

    def __init__(self, *, category: Category = "linear", heartbeat_interval: float = 20.0) -> None:
        self.category = category
        self._chained: dict[str, bool] = {}  # topic -> is an order book topic
        self.heartbeat_interval = heartbeat_interval
        self.max_topics_per_message = 10 if category == "spot" else None
        self.max_topics_per_connection = 2000 if category == "option" else None
        public = category != "private"
        self.max_chars_per_message = _ARGS_CHARS_PER_CONNECTION if public else None
        self.max_chars_per_connection = _ARGS_CHARS_PER_CONNECTION if public else None

    # Outbound messages -------------------------------------------------------------------
    def subscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """``{"req_id": "<id>", "op": "subscribe", "args": [...]}``."""
        return {"req_id": str(request_id), "op": "subscribe", "args": list(topics)}

    def unsubscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """``{"req_id": "<id>", "op": "unsubscribe", "args": [...]}``."""
        return {"req_id": str(request_id), "op": "unsubscribe", "args": list(topics)}

    def request_message(self, method: str, params: Any, request_id: Hashable) -> Any:
        """``{"req_id": "<id>", "op": method, "args": [...]}``; a non-list ``params`` becomes one arg."""
        message: dict[str, Any] = {"req_id": str(request_id), "op": method}
        if params is not None:
            message["args"] = params if isinstance(params, list) else [params]
        return message

    def heartbeat_message(self) -> Any | None:
        """``{"op": "ping"}`` (without ``req_id``, so that the pong is never taken for a reply)."""
        return {"op": "ping"}

    # Reading inbound messages --------------------------------------------------------------
    def classify(self, message: Any) -> tuple[MessageKind, Any]:
        """Data by topic, pongs as CONTROL, replies by ``req_id``/``reqId`` (module docstring)."""
        if type(message) is not dict:
            return _UNKNOWN, None
        topic = message.get("topic")
        if topic is not None:
            return (_DATA, topic) if type(topic) is str else (_UNKNOWN, None)
        op = message.get("op")
        if op == "ping" or op == "pong":
            return _CONTROL, "pong"
        rid = message.get("req_id")
        if rid is None:
            rid = message.get("reqId")
        if rid is not None and rid != "":
            if type(rid) is str:
                return _REPLY, _wire_id(rid)
            if type(rid) is int:
                return _REPLY, rid
            return _UNKNOWN, None
        if message.get("type") == "COMMAND_RESP":
            return _ACK, None
        if message.get("success") is False or _ret_code(message) not in (None, 0):
            return _ERROR, _ret_code(message)
        if op == "subscribe" or op == "unsubscribe":
            return _ACK, None
        if type(op) is str:
            return _CONTROL, op
        return _UNKNOWN, None

    def ack_topics(self, message: Any) -> tuple[str, ...]:
        """The ``successTopics`` of an option ``COMMAND_RESP``; other acks name no topics."""
        if type(message) is not dict:
            return ()
        data = message.get("data")
        topics = data.get("successTopics") if type(data) is dict else None
        if type(topics) is list:
            return tuple(t for t in topics if type(t) is str)
        return ()

    def reply_error(self, message: Any) -> VenueError | None:
        """A VenueError for ``success: false`` or a non-zero ``retCode``; a missing code is None."""
        if type(message) is not dict:
            return None
        code = _ret_code(message)
        if message.get("success") is False or code not in (None, 0):
            text = message.get("ret_msg", message.get("retMsg", ""))
            return VenueError(code, str(text), message)
        return None

    def reply_result(self, message: Any) -> Any:
        """The reply's ``data`` (None for subscribe acknowledgements)."""
        return message.get("data") if type(message) is dict else None

    def sequence(self, message: Any) -> Seq | None:
        """``Seq(u, u)`` of an order book delta; a snapshot (or ``u == 1``) starts a new chain
        (``reset=True``); None for every other topic (module docstring)."""
        if type(message) is not dict:
            return None
        topic = message.get("topic")
        if type(topic) is not str:
            return None
        chained = self._chained.get(topic)
        if chained is None:
            chained = _remember(self._chained, topic, topic.startswith("orderbook."))
        if not chained:
            return None
        data = message.get("data")
        if type(data) is not dict:
            return None
        update = data.get("u")
        if type(update) is not int:
            return None
        if update == 1 or message.get("type") == "snapshot":
            return make_seq(update, update, None, True)
        return make_seq(update, update)

    def rate_limit_signal(self, message: Any) -> str | None:
        """``"bybit_<code>"`` for ``retCode`` 10006, 10403 or 10429, else None."""
        if type(message) is not dict:
            return None
        code = _ret_code(message)
        if code in _RATE_LIMIT_CODES:
            return f"bybit_{code}"
        return None

    # Redundant connections (issue 12) ------------------------------------------------------
    def dedupe_key(self, message: Any) -> Hashable | None:
        """The trade id ``i`` of a ``publicTrade`` push (the tuple of them when it carries several);
        None for every other topic (module docstring)."""
        if type(message) is not dict:
            return None
        topic = message.get("topic")
        if type(topic) is not str or not topic.startswith("publicTrade."):
            return None
        return _ids(message.get("data"), "i")


def _ret_code(message: dict[str, Any]) -> int | None:
    code = message.get("retCode", message.get("ret_code"))
    return code if type(code) is int else None


def _wire_id(value: str) -> int | str:
    """A decimal id string as the int it was written from (``str(7) == "7"``); others unchanged."""
    if value.isdecimal() and value.isascii() and (value == "0" or value[0] != "0"):
        return int(value)
    return value
