"""Binance: the spot and futures WebSocket market streams and WebSocket API.

Sources: Binance spot API docs, ``web-socket-streams.md`` and ``web-socket-api.md``
(https://github.com/binance/binance-spot-api-docs), read 2026-11-25.

* Subscribe: ``{"method": "SUBSCRIBE", "params": ["btcusdt@trade", ...], "id": 1}``, acknowledged
  by ``{"result": null, "id": 1}``. A connection carries at most 1024 streams.
* Data on a combined-stream connection (``/stream?streams=...`` or ``/stream``) is wrapped as
  ``{"stream": "<name>", "data": <payload>}`` and is ``DATA`` keyed by the stream name.
* Raw payloads (``/ws/...`` connections) do not name their stream. An object with an event type
  ``e`` and a symbol ``s`` is ``DATA`` keyed by a name derived from them
  (:func:`raw_stream_name`): exact for ``trade``, ``aggTrade``, ``kline_<interval>``, ``ticker``,
  ``miniTicker``, ``avgPrice`` and ``depth``, but a stream with a speed suffix (``@depth@100ms``)
  or without ``e`` (``bookTicker``, partial depth) cannot be told apart. Prefer combined streams:
  their routing is exact.
* Errors: replies ``{"error": {"code": c, "msg": m}, "id": n}`` (WebSocket API, with ``status``),
  and the stream API's ``{"code": c, "msg": m}`` which may lack an id (then ``ERROR`` keyed by the
  code).
* Notices: ``serverShutdown`` ("sent when the server is about to shut down ... Please establish a
  new connection as soon as possible", ``web-socket-streams.md`` "Server Shutdown" and the WebSocket
  API's "Connection events", read 2026-11-30) is ``NOTICE`` keyed ``"shutdown"`` in all three
  documented forms: raw ``{"e": "serverShutdown", "E": t}``, combined
  ``{"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": t}}`` and WebSocket API
  ``{"event": {"e": "serverShutdown", "E": t}}``. :meth:`Binance.notice_detail` gives
  ``(None, "serverShutdown E=<t>")``. The client reports it as ``VenueNotice(notice="shutdown")``;
  the host decides whether to rotate the connection.
* Sequence (gap detection follows each stream's documented rule; a stream without an update
  chain gets none, only disconnect windows):

  ================================  ===============================  ======================
  stream                            documented rule                  ``sequence``
  ================================  ===============================  ======================
  ``<s>@depth[@100ms]`` (spot)      ``U`` == previous ``u`` + 1      ``Seq(U, u)``
  ``<s>@depth[@speed]`` (futures)   ``pu`` == previous ``u``         ``Seq(U, u, prev=pu)``
  ``<s>@depth<5|10|20>[@speed]``    none: a whole top-N book (the    None
                                    futures' ``pu`` refers to the
                                    diff stream, not this one)
  ``<s>@bookTicker``                none: its ``u`` is the book's    None
                                    update id, not a chain
  trades, klines, tickers, others   none                             None
  ================================  ===============================  ======================

  On a raw connection only ``e == "depthUpdate"`` is read (as diff depth): a raw USD-M partial
  depth stream, which also says ``depthUpdate``, cannot be told apart — use combined streams.
  Sources: spot ``web-socket-streams.md`` "Diff. Depth Stream" and "How to manage a local order
  book correctly"; USD-M futures "Diff. Book Depth Streams", "Partial Book Depth Streams" and
  "How to manage a local order book correctly" (developers.binance.com), read 2026-11-30.
* Dedupe keys (for redundant connections, :meth:`Binance.dedupe_key`): the trade id ``t`` of a
  ``trade`` event ("Trade Streams") and the aggregate trade id ``a`` of an ``aggTrade`` event
  ("Aggregate Trade Streams"; USD-M "Aggregate Trade Streams"), read 2026-11-30.
* Rate limits: code -1003 (too many requests, IP ban) gives ``"binance_-1003"`` and -1015 (too
  many orders) ``"binance_-1015"``. Exceeding 5 messages a second closes the stream connection
  with 1008 instead, which the transport reports.
* Login (WebSocket API ``session.logon``, ``web-socket-api.md`` "Session Authentication" and
  "Request security"): ``{"id", "method": "session.logon", "params": {"apiKey", "timestamp",
  "signature"}}`` signed with :func:`rxws.auth.binance_sign` over :func:`rxws.auth.binance_payload`.
  Binance documents session logon for Ed25519 keys only (a PEM secret; needs ``cryptography``);
  an HMAC secret is signed the documented HMAC way, which the venue's other signed requests take
  and MockVenue's twin accepts. "timestamp < serverTime + 1000 && serverTime - timestamp <=
  recvWindow" (5 s by default): :attr:`Binance.auth_window` is the 1 s a clock may run ahead.
  Refusals: -1022 invalid signature, -1021 timestamp outside the window, -2015 invalid key.
  Replies stating ``result.serverTime`` give the venue's time. A topic without ``@`` (a
  listenKey, not a ``!`` market stream) is private.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rxws.auth import binance_payload, binance_sign
from rxws.exceptions import VenueError
from rxws.protocols.base import LoginStep, MessageKind, Seq, VenueProtocol, _millis, _remember, make_seq

if TYPE_CHECKING:
    from rxws.auth import Credentials

__all__ = ["Binance", "raw_stream_name"]

_DATA = MessageKind.DATA
_REPLY = MessageKind.REPLY
_ERROR = MessageKind.ERROR
_UNKNOWN = MessageKind.UNKNOWN
_NOTICE = MessageKind.NOTICE

_SHUTDOWN_STREAM = "!serverShutdown"
_SHUTDOWN = "serverShutdown"

_RATE_LIMIT_CODES = frozenset({-1003, -1015})
_EVENT_STREAMS = {
    "depthUpdate": "depth",
    "24hrTicker": "ticker",
    "24hrMiniTicker": "miniTicker",
}


class Binance(VenueProtocol):
    """The Binance WebSocket dialect (spot and futures market streams, WebSocket API replies).

    Args:
        max_topics_per_connection: streams allowed on one connection (1024 per Binance's docs).
    """

    name: ClassVar[str] = "binance"

    def __init__(self, *, max_topics_per_connection: int | None = 1024) -> None:
        self.max_topics_per_connection = max_topics_per_connection
        self._chained: dict[str, bool] = {}  # stream -> has an update chain (a diff depth stream)

    # Outbound messages -------------------------------------------------------------------
    def subscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """``{"method": "SUBSCRIBE", "params": [...], "id": request_id}``."""
        return {"method": "SUBSCRIBE", "params": list(topics), "id": request_id}

    def unsubscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """``{"method": "UNSUBSCRIBE", "params": [...], "id": request_id}``."""
        return {"method": "UNSUBSCRIBE", "params": list(topics), "id": request_id}

    def list_subscriptions_message(self, request_id: Hashable) -> Any:
        """``LIST_SUBSCRIPTIONS``: the venue answers with the streams this connection has."""
        return {"method": "LIST_SUBSCRIPTIONS", "id": request_id}

    def request_message(self, method: str, params: Any, request_id: Hashable) -> Any:
        """``{"method": method, "params": params, "id": request_id}``; params left out when None."""
        message: dict[str, Any] = {"method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        return message

    # Reading inbound messages --------------------------------------------------------------
    def classify(self, message: Any) -> tuple[MessageKind, Any]:
        """Combined-stream data by stream name, replies by id, errors by code (module docstring)."""
        if type(message) is not dict:
            return _UNKNOWN, None
        stream = message.get("stream")
        if type(stream) is str:
            if stream == _SHUTDOWN_STREAM:
                return _NOTICE, "shutdown"
            return _DATA, stream
        if "id" in message:
            rid = message["id"]
            if type(rid) is int or type(rid) is str:
                return _REPLY, rid
            if rid is None and ("error" in message or "code" in message):
                return _ERROR, _code(message)
            return _UNKNOWN, None
        event = message.get("e")
        if type(event) is str:
            if event == _SHUTDOWN:
                return _NOTICE, "shutdown"
            name = raw_stream_name(message)
            return (_DATA, name) if name is not None else (_UNKNOWN, None)
        if "error" in message or "code" in message:
            return _ERROR, _code(message)
        wrapped = message.get("event")  # the WebSocket API's connection events
        if type(wrapped) is dict and wrapped.get("e") == _SHUTDOWN:
            return _NOTICE, "shutdown"
        return _UNKNOWN, None

    def notice_detail(self, message: Any) -> tuple[int | str | None, str]:
        """``(None, "serverShutdown E=<event time>")`` for any of the three shutdown forms."""
        payload = _shutdown_payload(message)
        if payload is None:
            return None, str(message)[:200]
        return None, f"{_SHUTDOWN} E={payload.get('E')}"

    def reply_error(self, message: Any) -> VenueError | None:
        """The error of a reply in either of Binance's two shapes; a missing code becomes None."""
        if type(message) is not dict:
            return None
        error = message.get("error")
        if error is not None:
            if type(error) is dict:
                return VenueError(_scalar(error.get("code")), str(error.get("msg", "")), message)
            return VenueError(None, str(error), message)
        if "code" in message and "result" not in message:
            return VenueError(_scalar(message["code"]), str(message.get("msg", "")), message)
        return None

    def reply_result(self, message: Any) -> Any:
        """The ``result`` member (``None`` for subscribe acknowledgements)."""
        return message.get("result") if type(message) is dict else None

    def sequence(self, message: Any) -> Seq | None:
        """``Seq(U, u, prev=pu)`` of a diff-depth event (table in the module docstring); else None."""
        if type(message) is not dict:
            return None
        stream = message.get("stream")
        data: Any
        if stream is None:
            data = message
            if data.get("e") != "depthUpdate":
                return None
        else:
            if type(stream) is not str:
                return None
            chained = self._chained.get(stream)
            if chained is None:
                chained = _remember(self._chained, stream, stream.endswith("@depth") or "@depth@" in stream)
            if not chained:
                return None
            data = message.get("data")
            if type(data) is not dict:
                return None
        first = data.get("U")
        last = data.get("u")
        if type(first) is not int or type(last) is not int:
            return None
        prev = data.get("pu")
        return make_seq(first, last, prev if type(prev) is int else None)

    def rate_limit_signal(self, message: Any) -> str | None:
        """``"binance_-1003"`` / ``"binance_-1015"`` when the message carries that code, else None."""
        if type(message) is not dict:
            return None
        code = _code(message)
        if code in _RATE_LIMIT_CODES:
            return f"binance_{code}"
        return None

    # Authentication (issue 13) --------------------------------------------------------------
    auth_window: float | None = 1.0

    def login_frames(self, credentials: Credentials, now_ms: int, request_id: Hashable) -> list[LoginStep]:
        """``session.logon`` (module docstring)."""
        params: dict[str, Any] = {"apiKey": credentials.api_key.get_secret_value(), "timestamp": now_ms}
        params["signature"] = binance_sign(credentials.secret.get_secret_value(), binance_payload(params))
        return [LoginStep({"id": request_id, "method": "session.logon", "params": params}, request_id)]

    def is_private(self, topic: str) -> bool:
        """A listenKey topic: no ``@`` and not a ``!`` market stream."""
        return "@" not in topic and not topic.startswith("!")

    def server_time_ms(self, message: Any) -> float | None:
        """``result.serverTime`` (``time`` and ``session.logon`` replies)."""
        result = message.get("result") if type(message) is dict else None
        server = result.get("serverTime") if type(result) is dict else None
        return float(server) if type(server) is int else None

    # Redundant connections (issue 12) ------------------------------------------------------
    max_connection_age: float | None = 24 * 3600.0
    """Binance disconnects every connection after 24 hours."""

    def dedupe_key(self, message: Any) -> Hashable | None:
        """The trade id of a trade event (``t`` of ``trade``, ``a`` of ``aggTrade``), combined or
        raw; None for every other event (module docstring)."""
        if type(message) is not dict:
            return None
        data = message.get("data") if "stream" in message else message
        if type(data) is not dict:
            return None
        event = data.get("e")
        if event == "trade":
            key = data.get("t")
        elif event == "aggTrade":
            key = data.get("a")
        else:
            return None
        return key if type(key) is int else None

    # Issue 15 (metrics) ---------------------------------------------------------------------
    def event_time(self, message: Any) -> float | None:
        """The payload's ``E`` ("Event time", milliseconds; every market stream payload in
        ``web-socket-streams.md`` carries it), in seconds; raw or combined (``data``) form."""
        if type(message) is not dict:
            return None
        data = message.get("data") if "stream" in message else message
        return _millis(data.get("E")) if type(data) is dict else None


def raw_stream_name(payload: Any) -> str | None:
    """The stream name a raw (non-combined) payload most likely came from, or None.

    ``{"e": "trade", "s": "BNBBTC"}`` gives ``"bnbbtc@trade"``; kline events give
    ``"<symbol>@kline_<interval>"``; ``depthUpdate``, ``24hrTicker`` and ``24hrMiniTicker`` map to
    ``@depth``, ``@ticker`` and ``@miniTicker``. A payload without a string ``e`` and ``s`` gives None.
    """
    if type(payload) is not dict:
        return None
    event = payload.get("e")
    symbol = payload.get("s")
    if type(event) is not str or type(symbol) is not str:
        return None
    if event == "kline":
        kline = payload.get("k")
        interval = kline.get("i") if type(kline) is dict else None
        if type(interval) is str:
            return f"{symbol.lower()}@kline_{interval}"
    return f"{symbol.lower()}@{_EVENT_STREAMS.get(event, event)}"


def _shutdown_payload(message: Any) -> dict[str, Any] | None:
    """The ``{"e": "serverShutdown", ...}`` object of a raw, combined or WebSocket API notice."""
    if type(message) is not dict:
        return None
    for payload in (message, message.get("data"), message.get("event")):
        if type(payload) is dict and payload.get("e") == _SHUTDOWN:
            return payload
    return None


def _scalar(code: Any) -> int | str | None:
    return code if type(code) is int or type(code) is str else None


def _code(message: dict[str, Any]) -> int | str | None:
    error = message.get("error")
    if type(error) is dict:
        return _scalar(error.get("code"))
    return _scalar(message.get("code"))
