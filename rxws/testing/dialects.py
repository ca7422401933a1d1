"""Server-side dialects for MockVenue: how the mock venue reads client messages and writes its own.

Each venue dialect in :mod:`rxws.protocols` has a server twin here, so integration tests exercise
the client's dialect over a real socket. A server dialect is sans-I/O and tiny: it parses what a
client sent into a :class:`ClientOp` and renders acks, replies, errors and data frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rxws.protocols.base import json_dumps, json_loads

__all__ = ["SERVER_DIALECTS", "ClientOp", "GenericServerDialect", "ServerDialect", "server_dialect"]


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


class GenericServerDialect(ServerDialect):
    """The server side of :class:`rxws.protocols.GenericJson` (DESIGN.md section 4)."""

    name: ClassVar[str] = "generic"

    def parse(self, frame: str | bytes) -> ClientOp:
        try:
            msg = json_loads(frame)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return ClientOp("invalid", detail=f"not JSON: {exc}")
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            return ClientOp("invalid", id=msg.get("id") if isinstance(msg, dict) else None,
                            detail="expected an object with a string 'op'")
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


SERVER_DIALECTS: dict[str, type[ServerDialect]] = {"generic": GenericServerDialect}
"""Server dialects by name; venue dialects register themselves here."""


def server_dialect(name: str) -> ServerDialect:
    """A new server dialect by name.

    Raises:
        ValueError: no dialect has that name.
    """
    try:
        return SERVER_DIALECTS[name]()
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(sorted(SERVER_DIALECTS))}") from None
