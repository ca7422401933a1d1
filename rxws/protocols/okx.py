"""Okx: the OKX v5 WebSocket API (https://www.okx.com/docs-v5/en/#overview-websocket), read 2026-11-25.

Topics. OKX subscribes channel *arguments* (``{"channel": "books", "instId": "BTC-USDT"}``) while
rxws topics are strings, so the two map one to one:

* ``{"channel": c, "instId": i}`` ⇄ ``"c:i"`` (``"books:BTC-USDT"``);
* any other argument keys are written ``key=value``, sorted and comma-separated:
  ``{"channel": "instruments", "instType": "SPOT"}`` ⇄ ``"instruments:instType=SPOT"``;
  ``instId`` then comes first (``"orders:BTC-USDT,instType=SPOT"``);
* a channel without arguments is its name alone.

:func:`topic_arg` and :func:`topic_of_arg` convert; OKX names never contain ``:``, ``,`` or ``=``.

Messages:

* subscribe ``{"id": "7", "op": "subscribe", "args": [{...}, ...]}``; the venue acknowledges each
  argument separately with ``{"event": "subscribe", "arg": {...}}``, read as ``ACK`` keyed by the
  topic (:meth:`Okx.ack_topics`). A rejected request is ``{"id": "7", "event": "error", ...}``:
  ``REPLY`` keyed by the id when it carries one, ``ERROR`` keyed by the code otherwise. The
  ``{"event": "unsubscribe", "arg": {...}}`` confirmation is ``CONTROL`` (``"unsubscribe"``).
* ids travel as strings (OKX requires alphanumeric strings of up to 32 characters); a decimal id
  that comes back is read as an int, so integer request ids round-trip.
* data ``{"arg": {...}, "data": [...]}`` is ``DATA`` keyed by the topic. Private pushes carry
  ``uid`` in ``arg`` ("Push data parameters: arg > uid User Identifier", Account channel, read
  2026-11-30) although the subscribe request and its ack never had it, and may leave out keys the
  subscription had (``ccy``, ``extraParams``). Such a push is routed to the subscription it
  belongs to (:meth:`Okx.subscribe_message` remembers the topics it subscribed): ``uid`` is
  dropped, then a subscribed topic of the same channel whose arguments the push matches (apart
  from ``extraParams``, never echoed) is taken — the most specific when several match — or else
  the channel's only subscription; a push that fits none keeps its own key (the client reports it
  as unrouted). An instance shared by several connections routes by all their subscriptions. The
  common public ``{"channel", "instId"}`` push never takes this path.
* sequence (gap detection follows each channel's documented rule: "Order book channel" and
  "Sequence number" sections, read 2026-11-30; a channel without a chain gets none):

  =================================================  =====================================  ============
  channel                                            documented rule                        ``sequence``
  =================================================  =====================================  ============
  ``books``, ``books-l2-tbt``, ``books50-l2-tbt``    ``prevSeqId`` == previous ``seqId``;   ``Seq(seqId,
                                                     also when idle (``seqId ==             seqId,
                                                     prevSeqId``) and after maintenance     prevSeqId)``
                                                     (``seqId < prevSeqId``)
  the same, ``action == "snapshot"``                 ``prevSeqId == -1``: starts a chain    ``Seq(seqId,
                                                                                            seqId,
                                                                                            reset=True)``
  ``books5``, ``bbo-tbt``, ``trades``, others        none: "prevSeqId ... only applicable   None
                                                     to books, books-l2-tbt,
                                                     books50-l2-tbt"; snapshot channels
                                                     re-send the latest snapshot with the
                                                     same ``seqId`` when idle; trade
                                                     ``seqId`` may repeat
  =================================================  =====================================  ============

* dedupe keys (for redundant connections, :meth:`Okx.dedupe_key`): the ``tradeId`` of a
  ``trades`` push (aggregated: "the last trade ID in the trades aggregation", with ``count``) or
  ``trades-all`` push ("Trades channel", "All trades channel", read 2026-11-30); the tuple of
  ids when a push carries several.
* error codes are strings on the wire (``"60012"``) and decimal ones become ints in
  :class:`~rxws.exceptions.VenueError`. Rate limits: 60014 "Requests too frequent", 60023 "Bulk
  login requests too frequent", 50011 "Rate limit reached", 50061 "Sub-account rate limit
  exceeded" give ``"okx_<code>"``.
* keepalive: the client sends the text ``ping`` when idle (every 25 s here; the venue drops a
  connection silent for 30 s) and the venue answers the text ``pong``, which :meth:`Okx.decode`
  accepts although it is not JSON and :meth:`Okx.classify` reads as ``CONTROL``.
* ``{"event": "notice", "code": "64008", "msg": "The connection will soon be closed for a service
  upgrade. Please reconnect.", ...}`` (sent before a service upgrade closes the connection;
  "Notification", read 2026-11-30) is ``NOTICE`` keyed ``"shutdown"``; a notice with another code
  is ``NOTICE`` keyed ``"notice"``. :meth:`Okx.notice_detail` gives ``(64008, msg)``.
  ``channel-conn-count`` events are ``CONTROL``; ``channel-conn-count-error`` is ``ERROR``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

from rxws.exceptions import VenueError
from rxws.protocols.base import MessageKind, Seq, VenueProtocol, _ids, json_dumps, make_seq

__all__ = ["Okx", "topic_arg", "topic_of_arg"]

_DATA = MessageKind.DATA
_REPLY = MessageKind.REPLY
_ACK = MessageKind.ACK
_UNACK = MessageKind.UNACK
_CONTROL = MessageKind.CONTROL
_ERROR = MessageKind.ERROR
_UNKNOWN = MessageKind.UNKNOWN
_NOTICE = MessageKind.NOTICE

_PUSH_ONLY = frozenset({"uid"})
_SUBSCRIBE_ONLY = frozenset({"extraParams"})
_SHUTDOWN_CODE = "64008"
_CHAINED = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
"""Channels with a ``prevSeqId`` chain ("prevSeqId ... Only applicable to books, books-l2-tbt,
books50-l2-tbt", Order book channel, read 2026-11-30)."""

_TRADES = frozenset({"trades", "trades-all"})
"""Channels whose pushes carry trade ids ("Trades channel", "All trades channel")."""

_RATE_LIMIT_CODES = frozenset({"60014", "60023", "50011", "50061"})
_PONG = "pong"


def topic_of_arg(arg: dict[str, Any]) -> str:
    """The rxws topic of an OKX channel argument (see the module docstring).

    Raises:
        ValueError: ``arg`` has no string ``channel``.
    """
    channel = arg.get("channel")
    if type(channel) is not str:
        raise ValueError(f"OKX argument without a channel: {arg!r}")
    inst_id = arg.get("instId")
    extra = sorted(f"{k}={v}" for k, v in arg.items() if k not in ("channel", "instId"))
    if inst_id is None and not extra:
        return channel
    parts = ([str(inst_id)] if inst_id is not None else []) + extra
    return f"{channel}:{','.join(parts)}"


def topic_arg(topic: str) -> dict[str, str]:
    """The OKX channel argument for an rxws topic; the inverse of :func:`topic_of_arg`."""
    channel, _, rest = topic.partition(":")
    arg = {"channel": channel}
    if rest:
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if eq:
                arg[key] = value
            else:
                arg["instId"] = part
    return arg


class Okx(VenueProtocol):
    """The OKX v5 WebSocket dialect (public, private and business endpoints).

    Args:
        heartbeat_interval: seconds between text ``ping`` frames (OKX closes after 30 s idle).
        max_topics_per_connection: channels allowed on one connection (None: OKX states no number).
    """

    name: ClassVar[str] = "okx"

    # "the total length of multiple channels cannot exceed 64 KB" (Subscribe section).
    max_chars_per_message: int | None = 64 * 1024

    def __init__(
        self, *, heartbeat_interval: float = 25.0, max_topics_per_connection: int | None = None
    ) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.max_topics_per_connection = max_topics_per_connection
        # channel -> {topic: its argument}, for topics whose push may not repeat their argument.
        self._subscribed: dict[str, dict[str, dict[str, str]]] = {}

    # Coding ------------------------------------------------------------------------------
    def decode(self, frame: str | bytes) -> Any:
        """Decode JSON, and the bare text ``pong`` (the answer to ``ping``) as the string ``"pong"``.

        Raises:
            DecodeError: the frame is neither JSON nor ``pong``.
        """
        if frame == _PONG or frame == b"pong":
            return _PONG
        return super().decode(frame)

    # Outbound messages -------------------------------------------------------------------
    def subscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """``{"id": "<id>", "op": "subscribe", "args": [<arg>, ...]}``.

        Remembers each topic that is not a plain ``channel:instId`` so that a push on it is
        routed back to it (module docstring).
        """
        args = [topic_arg(t) for t in topics]
        for topic, arg in zip(topics, args, strict=True):
            if len(arg) != 2 or "instId" not in arg:
                self._subscribed.setdefault(arg["channel"], {})[topic] = arg
        return {"id": str(request_id), "op": "subscribe", "args": args}

    def unsubscribe_message(self, topics: Sequence[str], request_id: Hashable) -> Any:
        """``{"id": "<id>", "op": "unsubscribe", "args": [<arg>, ...]}``; forgets the topics."""
        args = [topic_arg(t) for t in topics]
        for topic, arg in zip(topics, args, strict=True):
            by_channel = self._subscribed.get(arg["channel"])
            if by_channel is not None:
                by_channel.pop(topic, None)
                if not by_channel:
                    del self._subscribed[arg["channel"]]
        return {"id": str(request_id), "op": "unsubscribe", "args": args}

    def request_message(self, method: str, params: Any, request_id: Hashable) -> Any:
        """An operation ``{"id", "op": method, "args": [...]}``; a dict ``params`` becomes one arg."""
        message: dict[str, Any] = {"id": str(request_id), "op": method}
        if params is not None:
            message["args"] = params if isinstance(params, list) else [params]
        return message

    def heartbeat_message(self) -> Any | None:
        """The text ``ping``."""
        return "ping"

    def topic_chars(self, topic: str) -> int:
        """Characters the topic's argument object takes in the ``args`` array."""
        return len(json_dumps(topic_arg(topic))) + 1

    # Reading inbound messages --------------------------------------------------------------
    def classify(self, message: Any) -> tuple[MessageKind, Any]:
        """Data by topic, acks by topic, op replies and id-carrying errors by id (module docstring)."""
        if type(message) is not dict:
            if message == _PONG:
                return _CONTROL, _PONG
            return _UNKNOWN, None
        arg = message.get("arg")
        event = message.get("event")
        if event is None:
            if type(arg) is dict and "data" in message:
                channel = arg.get("channel")
                inst_id = arg.get("instId")
                if type(channel) is str and type(inst_id) is str and len(arg) == 2:  # the common case
                    return _DATA, f"{channel}:{inst_id}"
                return self._push_topic(arg)
            if "id" in message:
                return _reply_or_unknown(message["id"])
            if "code" in message:
                return _ERROR, _code(message.get("code"))
            return _UNKNOWN, None
        if event == "subscribe":
            if type(arg) is dict:
                return _topic_or_unknown(arg, _ACK)
            return _ACK, None
        if event == "unsubscribe":
            if type(arg) is dict:
                return _topic_or_unknown(arg, _UNACK)
            return _UNACK, None
        if event == "error":
            if "id" in message:
                return _reply_or_unknown(message["id"])
            return _ERROR, _code(message.get("code"))
        if event == "login":
            if "id" in message:
                return _reply_or_unknown(message["id"])
            return _CONTROL, event
        if event == "channel-conn-count-error":
            return _ERROR, event
        if event == "notice":
            return _NOTICE, "shutdown" if message.get("code") == _SHUTDOWN_CODE else "notice"
        if type(event) is str:
            return _CONTROL, event
        return _UNKNOWN, None

    def _push_topic(self, arg: dict[str, Any]) -> tuple[MessageKind, Any]:
        """The subscribed topic a push with a non-plain ``arg`` belongs to (module docstring)."""
        channel = arg.get("channel")
        if type(channel) is not str:
            return _UNKNOWN, None
        if not _PUSH_ONLY.isdisjoint(arg):
            arg = {k: v for k, v in arg.items() if k not in _PUSH_ONLY}
        key = topic_of_arg(arg)
        by_channel = self._subscribed.get(channel)
        if by_channel is None or key in by_channel:
            return _DATA, key
        best: str | None = None
        best_size = -1
        for topic, sub_arg in by_channel.items():
            size = 0
            for k, v in sub_arg.items():
                if k in _SUBSCRIBE_ONLY:
                    continue
                if arg.get(k) != v:
                    break
                size += 1
            else:
                if size > best_size:
                    best, best_size = topic, size
        if best is None and len(by_channel) == 1:
            best = next(iter(by_channel))
        return _DATA, key if best is None else best

    def notice_detail(self, message: Any) -> tuple[int | str | None, str]:
        """The notice's ``code`` (``64008`` as an int) and ``msg``."""
        if type(message) is not dict:
            return None, str(message)[:200]
        return _code(message.get("code")), str(message.get("msg", ""))[:200]

    def ack_topics(self, message: Any) -> tuple[str, ...]:
        """The topic a ``subscribe``/``unsubscribe`` event acknowledges."""
        if type(message) is dict:
            arg = message.get("arg")
            if type(arg) is dict and type(arg.get("channel")) is str:
                return (topic_of_arg(arg),)
        return ()

    def reply_error(self, message: Any) -> VenueError | None:
        """A VenueError for ``event: error`` and for op replies whose ``code`` is not ``"0"``."""
        if type(message) is not dict:
            return None
        if message.get("event") == "error" or ("code" in message and str(message["code"]) != "0"):
            return VenueError(_code(message.get("code")), str(message.get("msg", "")), message)
        return None

    def reply_result(self, message: Any) -> Any:
        """The ``data`` of an op reply; the whole message for a login or subscribe event."""
        if type(message) is not dict:
            return None
        return message.get("data", message)

    def sequence(self, message: Any) -> Seq | None:
        """``Seq(seqId, seqId, prev=prevSeqId)`` on the chained book channels (module docstring);
        a snapshot (``prevSeqId == -1``) starts a new chain (``reset=True``); None on every other
        channel (a push without ``prevSeqId`` is let go first, before the channel is looked at)."""
        if type(message) is not dict:
            return None
        data = message.get("data")
        if type(data) is not list or not data or type(data[0]) is not dict:
            return None
        item = data[0]
        seq_id = item.get("seqId")
        prev = item.get("prevSeqId")
        if type(seq_id) is not int or type(prev) is not int:
            return None  # no prevSeqId: a channel without a chain (trades, books5, bbo-tbt...)
        arg = message.get("arg")
        channel = arg.get("channel") if type(arg) is dict else None
        if type(channel) is not str or channel not in _CHAINED:
            return None
        if prev >= 0:
            return make_seq(seq_id, seq_id, prev)
        return make_seq(seq_id, seq_id, None, True)  # prevSeqId == -1: a snapshot

    def rate_limit_signal(self, message: Any) -> str | None:
        """``"okx_<code>"`` for OKX's too-many-requests codes, top-level or per item (``sCode``)."""
        if type(message) is not dict:
            return None
        code = message.get("code")
        if code is None:
            return None
        code = str(code)
        if code in _RATE_LIMIT_CODES:
            return f"okx_{code}"
        data = message.get("data")
        if code != "0" and type(data) is list:
            for item in data:
                s_code = str(item.get("sCode")) if type(item) is dict else None
                if s_code in _RATE_LIMIT_CODES:
                    return f"okx_{s_code}"
        return None

    # Redundant connections (issue 12) ------------------------------------------------------
    def dedupe_key(self, message: Any) -> Hashable | None:
        """The ``tradeId`` of a ``trades`` / ``trades-all`` push (the tuple of them when a push
        carries several); None on every other channel (module docstring)."""
        if type(message) is not dict:
            return None
        arg = message.get("arg")
        if type(arg) is not dict or arg.get("channel") not in _TRADES:
            return None
        return _ids(message.get("data"), "tradeId")


def _topic_or_unknown(arg: dict[str, Any], kind: MessageKind) -> tuple[MessageKind, Any]:
    channel = arg.get("channel")
    if type(channel) is not str:
        return _UNKNOWN, None
    inst_id = arg.get("instId")
    if len(arg) == 2 and type(inst_id) is str:  # the common case, without sorting
        return kind, f"{channel}:{inst_id}"
    return kind, topic_of_arg(arg)


def _reply_or_unknown(rid: Any) -> tuple[MessageKind, Any]:
    if type(rid) is str:
        return _REPLY, _wire_id(rid)
    if type(rid) is int:
        return _REPLY, rid
    return _UNKNOWN, None


def _wire_id(value: str) -> int | str:
    """A decimal id string as the int it was written from (``str(7) == "7"``); others unchanged."""
    if value.isdecimal() and value.isascii() and (value == "0" or value[0] != "0"):
        return int(value)
    return value


def _code(code: Any) -> int | str | None:
    if type(code) is str:
        return _wire_id(code)
    return code if type(code) is int else None
