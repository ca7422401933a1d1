"""Server-side dialects for MockVenue: how the mock venue reads client messages and writes its own.

Each venue dialect in :mod:`rxws.protocols` has a server twin here, so integration tests exercise
the client's dialect over a real socket. A server dialect is sans-I/O and tiny: it parses what a
client sent into a :class:`ClientOp` and renders acks, replies, errors and data frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeGuard

from rxws.protocols.base import json_dumps, json_loads
from rxws.protocols.okx import topic_arg, topic_of_arg

__all__ = [
    "SERVER_DIALECTS",
    "BinanceServerDialect",
    "BybitServerDialect",
    "ClientOp",
    "DeribitServerDialect",
    "GenericServerDialect",
    "JsonRpcServerDialect",
    "OkxServerDialect",
    "ServerDialect",
    "server_dialect",
]


@dataclass(slots=True)
class ClientOp:
    """One parsed client message.

    ``op`` is ``subscribe``, ``unsubscribe``, ``request``, ``ping`` (an application-level ping the
    server must answer with :meth:`ServerDialect.pong`), ``list`` (list subscriptions) or
    ``invalid`` (``detail`` says why).
    """

    op: Literal["subscribe", "unsubscribe", "request", "ping", "list", "invalid"]
    id: Any = None
    topics: list[str] = field(default_factory=list)
    method: str = ""
    params: Any = None
    detail: str = ""


class ServerDialect:
    """Base of the mock venue's server dialects."""

    name: ClassVar[str] = "base"

    def parse(self, frame: str | bytes) -> ClientOp:
        """Parse one client frame; never raises (bad input becomes ``op="invalid"``)."""
        raise NotImplementedError

    def ack(self, op: ClientOp) -> list[str]:
        """Frames acknowledging a subscribe or unsubscribe."""
        raise NotImplementedError

    def reply(self, request_id: Any, result: Any) -> str:
        """A successful reply frame."""
        raise NotImplementedError

    def error(self, request_id: Any, code: int, message: str) -> str:
        """An error reply frame (``request_id`` may be None)."""
        raise NotImplementedError

    def data(self, topic: str, seq: int, payload: Any) -> str:
        """A data frame on ``topic`` with sequence number ``seq``."""
        raise NotImplementedError

    def pong(self, op: ClientOp) -> str:
        """The answer to an application-level ping."""
        raise NotImplementedError

    def rate_limited(self, request_id: Any) -> str | None:
        """The venue's "too many requests" message, or None when it only closes with 1008."""
        return None

    def shutdown_notice(self, *, raw: bool = False) -> str | None:
        """The venue's "this connection closes soon" notice, or None when it documents none.

        Args:
            raw: the form a raw (non-combined) connection gets, where the venue has two.
        """
        return None

    def partial_reply(self, request_id: Any, result: Any) -> str | None:
        """One non-final part of a multi-frame reply, or None when the venue sends none (the
        default: the real venues answer each request with one frame)."""
        return None


class GenericServerDialect(ServerDialect):
    """The server side of :class:`rxws.protocols.GenericJson` (DESIGN.md section 4)."""

    name: ClassVar[str] = "generic"

    def parse(self, frame: str | bytes) -> ClientOp:
        try:
            msg = json_loads(frame)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return ClientOp("invalid", detail=f"not JSON: {exc}")
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            return ClientOp(
                "invalid",
                id=msg.get("id") if isinstance(msg, dict) else None,
                detail="expected an object with a string 'op'",
            )
        op = msg["op"]
        rid = msg.get("id")
        if op in ("subscribe", "unsubscribe"):
            args = msg.get("args")
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                return ClientOp("invalid", id=rid, detail="'args' must be a list of strings")
            return ClientOp(op, id=rid, topics=args)
        if op == "ping":
            return ClientOp("ping", id=rid)
        if op == "list_subscriptions":
            return ClientOp("list", id=rid)
        return ClientOp("request", id=rid, method=op, params=msg.get("params"))

    def ack(self, op: ClientOp) -> list[str]:
        return [self.reply(op.id, None)]

    def reply(self, request_id: Any, result: Any) -> str:
        return json_dumps({"id": request_id, "result": result})

    def error(self, request_id: Any, code: int, message: str) -> str:
        return json_dumps({"id": request_id, "error": {"code": code, "message": message}})

    def data(self, topic: str, seq: int, payload: Any) -> str:
        return json_dumps({"topic": topic, "seq": seq, "data": payload})

    def pong(self, op: ClientOp) -> str:
        return json_dumps({"id": op.id, "result": "pong"})

    # Multi-frame replies (issue 16) ---------------------------------------------------------
    def partial_reply(self, request_id: Any, result: Any) -> str | None:
        """``{"id": n, "result": part, "partial": true}`` (see :mod:`rxws.protocols.generic`)."""
        return json_dumps({"id": request_id, "result": result, "partial": True})


_OKX_CHAINED = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
_OKX_PRIVATE = frozenset(
    {
        "account",
        "positions",
        "balance_and_position",
        "orders",
        "fills",
        "liquidation-warning",
        "account-greeks",
    }
)


def _load(frame: str | bytes) -> tuple[Any, str]:
    """The decoded frame and "", or None and why it could not be decoded."""
    try:
        return json_loads(frame), ""
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return None, f"not JSON: {exc}"


def _merged(payload: Any, **fields: Any) -> dict[str, Any]:
    """``payload`` (a dict, or ``{"value": payload}``) with ``fields`` added."""
    item = dict(payload) if isinstance(payload, dict) else {"value": payload}
    item.update(fields)
    return item


def _subscription_op(subscribe: bool, rid: Any, topics: Any, method: str, invalid: str) -> ClientOp:
    """A subscribe or unsubscribe of ``topics``, or an ``invalid`` op saying ``invalid`` when
    ``topics`` is not a list of strings."""
    if not _str_list(topics):
        return ClientOp("invalid", id=rid, detail=invalid)
    return ClientOp("subscribe" if subscribe else "unsubscribe", id=rid, topics=list(topics), method=method)


def _str_list(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class JsonRpcServerDialect(ServerDialect):
    """The server side of :class:`rxws.protocols.JsonRpc` with its default methods.

    ``subscribe``/``unsubscribe`` take ``{"channels": [...]}`` and reply with the channel list;
    ``ping`` is answered ``"pong"``; ``list_subscriptions`` lists; data are ``subscription``
    notifications ``{"channel": topic, "data": payload}`` (JSON-RPC has no sequence numbers).
    """

    name: ClassVar[str] = "jsonrpc"
    subscribe_methods: ClassVar[frozenset[str]] = frozenset({"subscribe"})
    unsubscribe_methods: ClassVar[frozenset[str]] = frozenset({"unsubscribe"})
    ping_methods: ClassVar[frozenset[str]] = frozenset({"ping"})
    list_methods: ClassVar[frozenset[str]] = frozenset({"list_subscriptions"})

    def parse(self, frame: str | bytes) -> ClientOp:
        msg, why = _load(frame)
        if why:
            return ClientOp("invalid", detail=why)
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            rid = msg.get("id") if isinstance(msg, dict) else None
            return ClientOp("invalid", id=rid, detail="expected a request object with a string 'method'")
        method: str = msg["method"]
        rid = msg.get("id")
        params = msg.get("params")
        if method in self.subscribe_methods or method in self.unsubscribe_methods:
            channels = params.get("channels") if isinstance(params, dict) else None
            subscribe = method in self.subscribe_methods
            return _subscription_op(
                subscribe, rid, channels, method, "'params.channels' must be a list of strings"
            )
        if method in self.ping_methods:
            return ClientOp("ping", id=rid, method=method)
        if method in self.list_methods:
            return ClientOp("list", id=rid, method=method)
        return ClientOp("request", id=rid, method=method, params=params)

    def ack(self, op: ClientOp) -> list[str]:
        return [self.reply(op.id, list(op.topics))]

    def reply(self, request_id: Any, result: Any) -> str:
        return json_dumps({"jsonrpc": "2.0", "id": request_id, "result": result})

    def error(self, request_id: Any, code: int, message: str) -> str:
        return json_dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})

    def data(self, topic: str, seq: int, payload: Any) -> str:
        return self._notify({"channel": topic, "data": payload})

    def pong(self, op: ClientOp) -> str:
        return self.reply(op.id, "pong")

    def _notify(self, params: dict[str, Any]) -> str:
        return json_dumps({"jsonrpc": "2.0", "method": "subscription", "params": params})


class DeribitServerDialect(JsonRpcServerDialect):
    """The server side of :class:`rxws.protocols.Deribit`.

    ``public/subscribe`` and ``private/subscribe`` (and the unsubscribes) reply with the channel
    list; ``public/test`` is the ping (answered ``{"version": ...}``); data on a
    ``book.{instrument}.{interval}`` channel are book notifications whose ``change_id`` is the
    sequence number: the first (``seq == 1``) is ``type: snapshot`` without ``prev_change_id``,
    the others ``type: change`` with ``prev_change_id = seq - 1``; a grouped book
    ``book.{instrument}.{group}.{depth}.{interval}`` carries ``change_id`` only (a whole book, no
    chain); other channels carry the payload alone. "Too many requests" is error 10028.
    """

    name: ClassVar[str] = "deribit"
    subscribe_methods: ClassVar[frozenset[str]] = frozenset({"public/subscribe", "private/subscribe"})
    unsubscribe_methods: ClassVar[frozenset[str]] = frozenset({"public/unsubscribe", "private/unsubscribe"})
    ping_methods: ClassVar[frozenset[str]] = frozenset({"public/test"})
    list_methods: ClassVar[frozenset[str]] = frozenset({"public/get_subscriptions", "list_subscriptions"})

    def data(self, topic: str, seq: int, payload: Any) -> str:
        if not topic.startswith("book."):
            item = _merged(payload)
        elif topic.count(".") != 2:
            item = _merged(payload, change_id=seq)
        elif seq == 1:
            item = _merged(payload, type="snapshot", change_id=seq)
        else:
            item = _merged(payload, type="change", change_id=seq, prev_change_id=seq - 1)
        return self._notify({"channel": topic, "data": item})

    def pong(self, op: ClientOp) -> str:
        return self.reply(op.id, {"version": "1.2.26"})

    def rate_limited(self, request_id: Any) -> str | None:
        return self.error(request_id, 10028, "too_many_requests")

    def test_request(self) -> str:
        """The heartbeat ``test_request`` the venue sends after ``public/set_heartbeat``."""
        return json_dumps({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})


class BinanceServerDialect(ServerDialect):
    """The server side of :class:`rxws.protocols.Binance` (a combined-stream connection).

    ``SUBSCRIBE``/``UNSUBSCRIBE`` are acknowledged ``{"result": null, "id": n}``;
    ``LIST_SUBSCRIPTIONS`` lists; ``ping`` (as on the WebSocket API) answers ``{}``; errors are
    ``{"error": {"code", "msg"}, "id"}``; data are ``{"stream": topic, "data": {...}}``: on a
    diff depth stream (``<s>@depth``, ``<s>@depth@100ms``) a ``depthUpdate`` event with one
    update (``"U": seq, "u": seq``); on a partial depth stream (``<s>@depth5``...) a book with
    ``lastUpdateId`` and no event type; on others the event named after the stream with its id
    (``"t": seq`` for a trade). "Too many requests" is the WebSocket API's status 429 with code
    -1003. :meth:`shutdown_notice` gives ``serverShutdown`` in the combined form (``raw=True``:
    the raw form).
    """

    name: ClassVar[str] = "binance"

    def parse(self, frame: str | bytes) -> ClientOp:
        msg, why = _load(frame)
        if why:
            return ClientOp("invalid", detail=why)
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            rid = msg.get("id") if isinstance(msg, dict) else None
            return ClientOp("invalid", id=rid, detail="Invalid request: missing field `method`")
        method: str = msg["method"]
        rid = msg.get("id")
        params = msg.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            subscribe = method == "SUBSCRIBE"
            return _subscription_op(
                subscribe, rid, params, method, "Invalid request: 'params' must list streams"
            )
        if method == "LIST_SUBSCRIPTIONS":
            return ClientOp("list", id=rid, method=method)
        if method == "ping":
            return ClientOp("ping", id=rid, method=method)
        return ClientOp("request", id=rid, method=method, params=params)

    def ack(self, op: ClientOp) -> list[str]:
        return [self.reply(op.id, None)]

    def reply(self, request_id: Any, result: Any) -> str:
        return json_dumps({"result": result, "id": request_id})

    def error(self, request_id: Any, code: int, message: str) -> str:
        return json_dumps({"error": {"code": code, "msg": message}, "id": request_id})

    def data(self, topic: str, seq: int, payload: Any) -> str:
        symbol, _, stream = topic.partition("@")
        kind = stream.partition("@")[0]
        if kind == "depth":
            item = _merged(payload, e="depthUpdate", E=seq, s=symbol.upper(), U=seq, u=seq)
        elif kind.startswith("depth"):
            item = _merged(payload, lastUpdateId=seq)
        else:
            item = _merged(payload, e=kind or topic, E=seq, s=symbol.upper(), t=seq)
        return json_dumps({"stream": topic, "data": item})

    def shutdown_notice(self, *, raw: bool = False) -> str | None:
        event = {"e": "serverShutdown", "E": 1770123456789}
        return json_dumps(event if raw else {"stream": "!serverShutdown", "data": event})

    def pong(self, op: ClientOp) -> str:
        return json_dumps({"id": op.id, "status": 200, "result": {}})

    def rate_limited(self, request_id: Any) -> str | None:
        return json_dumps(
            {
                "id": request_id,
                "status": 429,
                "error": {
                    "code": -1003,
                    "msg": "Too much request weight used; please use WebSocket Streams.",
                },
            }
        )


class OkxServerDialect(ServerDialect):
    """The server side of :class:`rxws.protocols.Okx`.

    Reads the text ``ping`` and ``{"op", "id", "args"}`` operations (``args`` of one object are
    passed to requests as that object); acknowledges each argument with its own
    ``{"event": "subscribe", "arg": ...}``; errors are ``{"event": "error", "code": "<c>", ...}``;
    replies ``{"id", "code": "0", "msg": "", "data": result}``; data on the chained book channels
    (``books``, ``books-l2-tbt``, ``books50-l2-tbt``) carry ``seqId = seq`` and ``prevSeqId =
    seq - 1`` (the first, ``seq == 1``, is ``action: snapshot`` with ``prevSeqId = -1``); other
    public channels carry ``seqId = seq`` alone (no chain); pushes on private channels
    (``account``, ``orders``, ...) carry ``uid`` in ``arg`` as the venue's do. "Too many
    requests" is 60014; :meth:`shutdown_notice` is the ``64008`` notice.
    """

    name: ClassVar[str] = "okx"
    conn_id: ClassVar[str] = "a4d3ae55"
    uid: ClassVar[str] = "44*********584"
    """The ``uid`` private pushes carry (the value in OKX's Account channel example)."""

    def parse(self, frame: str | bytes) -> ClientOp:
        if frame == "ping" or frame == b"ping":
            return ClientOp("ping")
        msg, why = _load(frame)
        if why:
            return ClientOp("invalid", detail=why)
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            rid = msg.get("id") if isinstance(msg, dict) else None
            return ClientOp("invalid", id=rid, detail="Invalid request: expected an object with 'op'")
        op: str = msg["op"]
        rid = msg.get("id")
        args = msg.get("args")
        if op in ("subscribe", "unsubscribe"):
            if not isinstance(args, list) or not all(
                isinstance(a, dict) and isinstance(a.get("channel"), str) for a in args
            ):
                return ClientOp("invalid", id=rid, detail="Invalid args: expected channel objects")
            kind: Literal["subscribe", "unsubscribe"] = "subscribe" if op == "subscribe" else "unsubscribe"
            return ClientOp(kind, id=rid, topics=[topic_of_arg(a) for a in args], method=op)
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
            args = args[0]
        return ClientOp("request", id=rid, method=op, params=args)

    def ack(self, op: ClientOp) -> list[str]:
        head = {} if op.id is None else {"id": op.id}
        return [
            json_dumps({**head, "event": op.op, "arg": topic_arg(t), "connId": self.conn_id})
            for t in op.topics
        ]

    def reply(self, request_id: Any, result: Any) -> str:
        return json_dumps({"id": request_id, "code": "0", "msg": "", "data": result})

    def error(self, request_id: Any, code: int, message: str) -> str:
        head = {} if request_id is None else {"id": request_id}
        frame = {**head, "event": "error", "code": str(code), "msg": message, "connId": self.conn_id}
        return json_dumps(frame)

    def data(self, topic: str, seq: int, payload: Any) -> str:
        arg: dict[str, str] = topic_arg(topic)
        channel = arg["channel"]
        if channel in _OKX_PRIVATE:
            frame: dict[str, Any] = {"arg": {**arg, "uid": self.uid}, "data": [_merged(payload)]}
        elif channel in _OKX_CHAINED:
            action = "snapshot" if seq == 1 else "update"
            item = _merged(payload, seqId=seq, prevSeqId=-1 if seq == 1 else seq - 1)
            frame = {"arg": arg, "action": action, "data": [item]}
        else:
            frame = {"arg": arg, "data": [_merged(payload, seqId=seq)]}
        return json_dumps(frame)

    def shutdown_notice(self, *, raw: bool = False) -> str | None:
        return json_dumps(
            {
                "event": "notice",
                "code": "64008",
                "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
                "connId": self.conn_id,
            }
        )

    def pong(self, op: ClientOp) -> str:
        return "pong"

    def rate_limited(self, request_id: Any) -> str | None:
        return self.error(request_id, 60014, "Requests too frequent")


class BybitServerDialect(ServerDialect):
    """The server side of :class:`rxws.protocols.Bybit` (a public linear connection).

    Reads ``{"req_id", "op", "args"}``; acknowledges ``{"success": true, "ret_msg": "subscribe",
    "req_id", "op"}``; answers ``{"op": "ping"}`` with ``{"success": true, "ret_msg": "pong",
    "op": "ping"}``; errors are ``{"success": false, "retCode": c, "ret_msg": m, "req_id"}``; data
    on ``orderbook.*`` topics are order book messages whose ``u`` is the sequence number (the
    first, ``seq == 1``, a ``snapshot``, then ``delta``); other topics carry the payload alone
    (``type: snapshot``). "Too many requests" is 10006.
    """

    name: ClassVar[str] = "bybit"
    conn_id: ClassVar[str] = "2324d924-aa4d-45b0-a858-7b8be29ab52b"

    def parse(self, frame: str | bytes) -> ClientOp:
        msg, why = _load(frame)
        if why:
            return ClientOp("invalid", detail=why)
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            rid = msg.get("req_id") if isinstance(msg, dict) else None
            return ClientOp("invalid", id=rid, detail="expected an object with a string 'op'")
        op: str = msg["op"]
        rid = msg.get("req_id")
        args = msg.get("args")
        if op in ("subscribe", "unsubscribe"):
            return _subscription_op(op == "subscribe", rid, args, op, "'args' must be a list of topics")
        if op == "ping":
            return ClientOp("ping", id=rid, method=op)
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
            args = args[0]
        return ClientOp("request", id=rid, method=op, params=args)

    def _frame(self, success: bool, ret_msg: str, request_id: Any, **fields: Any) -> str:
        """A response in the documented field order, with ``conn_id`` and ``req_id``."""
        head = {"success": success, "ret_msg": ret_msg, "conn_id": self.conn_id}
        return json_dumps({**head, "req_id": "" if request_id is None else request_id, **fields})

    def ack(self, op: ClientOp) -> list[str]:
        return [self._frame(True, op.op, op.id, op=op.op)]

    def reply(self, request_id: Any, result: Any) -> str:
        return self._frame(True, "", request_id, data=result)

    def error(self, request_id: Any, code: int, message: str) -> str:
        return self._frame(False, message, request_id, retCode=code)

    def data(self, topic: str, seq: int, payload: Any) -> str:
        ts = 1672304484978 + seq
        if not topic.startswith("orderbook."):
            return json_dumps({"topic": topic, "type": "snapshot", "ts": ts, "data": _merged(payload)})
        item = _merged(payload, u=seq, seq=seq)
        kind = "snapshot" if seq == 1 else "delta"
        return json_dumps({"topic": topic, "type": kind, "ts": ts, "data": item, "cts": ts})

    def pong(self, op: ClientOp) -> str:
        return self._frame(True, "pong", op.id, op="ping")

    def rate_limited(self, request_id: Any) -> str | None:
        return self.error(request_id, 10006, "Too many visits!")


SERVER_DIALECTS: dict[str, type[ServerDialect]] = {
    "generic": GenericServerDialect,
    "jsonrpc": JsonRpcServerDialect,
    "binance": BinanceServerDialect,
    "okx": OkxServerDialect,
    "bybit": BybitServerDialect,
    "deribit": DeribitServerDialect,
}
"""Server dialects by name."""


def server_dialect(name: str) -> ServerDialect:
    """A new server dialect by name.

    Raises:
        ValueError: no dialect has that name.
    """
    try:
        return SERVER_DIALECTS[name]()
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(sorted(SERVER_DIALECTS))}") from None
