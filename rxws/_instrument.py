"""A request's result that reports its end to the client's instrumentation sinks.

Made instead of a plain :class:`~rxws._command.CommandResult` by ``client.request()`` only while a
sink is attached (``client.add_instrumentation``), so requests cost nothing more without one. It
hears every way a request ends — the reply, an error reply, its deadline, the connection's end,
its caller giving up, a failure before it was sent — because each of them settles the result.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rxws._client_base import ClientContext
from rxws._command import CommandResult
from rxws.exceptions import ConnectionLost, NotConnected, RequestTimeout, TransportError

__all__ = ["TimedRequest", "outcome_of"]


def outcome_of(error: BaseException | None) -> str:
    """The outcome label of a request that ended with ``error`` (None: answered).

    ``"ok"``; ``"timeout"`` (:class:`RequestTimeout`); ``"lost"`` (the connection ended first, or
    there was none: :class:`ConnectionLost`, :class:`NotConnected`, a transport failure);
    ``"cancelled"`` (every waiter gave up); ``"error"`` (an error reply, or the request could not
    be made: encoding, ``max_in_flight``).
    """
    if error is None:
        return "ok"
    if isinstance(error, RequestTimeout):
        return "timeout"
    if isinstance(error, ConnectionLost | NotConnected | TransportError):
        return "lost"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return "error"


class TimedRequest(CommandResult[Any]):
    """A request's result that tells ``ctx``'s sinks, once, how it ended and how long it took
    (from its creation, in ``request()``: time queued behind the limiter included)."""

    def __init__(self, ctx: ClientContext, method: str) -> None:
        super().__init__("request", method)
        self._ctx = ctx
        self._method = method
        # the client's clock once bound (virtual time in tests); before that the loop's own clock
        self._clock = ctx.now if ctx.scheduler is not None else time.monotonic
        self._started = self._clock()
        self._ended = False

    def _first_end(self) -> bool:
        with self._lock:
            first = not self._ended and not self.done
            self._ended = True
            return first

    def set_result(self, value: Any) -> None:
        """Complete with ``value`` and report ``"ok"`` (once)."""
        first = self._first_end()
        super().set_result(value)
        if first:
            self._ctx.request_done(self._method, self._clock() - self._started, "ok")

    def set_error(self, error: BaseException) -> None:
        """Fail with ``error`` and report its outcome (once)."""
        first = self._first_end()
        super().set_error(error)
        if first:
            self._ctx.request_done(self._method, self._clock() - self._started, outcome_of(error))
