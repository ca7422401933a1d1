"""The rate limiter's view of one connection: its connect slot, frames, topics and penalties.

A client's limiter may be shared by several clients and by several sessions of one client (a
rotation, a redundant twin): each session asks it under its own connection id, through one
:class:`ConnectionBudget`. Without a limiter every question is answered "yes".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxws._client_base import ClientContext
from rxws.exceptions import NotConnected
from rxws.ratelimit.base import Decision
from rxws.ratelimit.events import ViolationReported

__all__: list[str] = []

_YES = Decision(True, 0.0)


class ConnectionBudget:
    """One connection's account with the client's rate limiter (``ctx.limiter``, read each time)."""

    def __init__(self, ctx: ClientContext, conn_id: str) -> None:
        self._ctx = ctx
        self.conn_id = conn_id
        self._connection_held = False
        self._connect_task: asyncio.Task[Decision] | None = None  # a ledger's connect decision

    def acquire_connect(self) -> Decision:
        """May this connection open now? A yes holds a connection slot until :meth:`release_connection`."""
        limiter = self._ctx.limiter
        if limiter is None:
            return _YES
        decision = limiter.acquire_connect(self.conn_id, self._ctx.now())
        if decision.allowed:
            self._connection_held = True
        return decision

    def ask_connect(self, decided: Callable[[Decision | Exception], None]) -> None:
        """Ask :meth:`acquire_connect` and give ``decided`` the answer: at once, or, when the
        limiter asks a shared ledger (``limiter.ledger``) on an asyncio loop, once the ledger
        answered (``limiter.acquire_connect_async`` awaited on the loop instead of a synchronous
        call polled every 2 ms). In virtual time nothing is awaited: the answer is at once."""
        ctx = self._ctx
        loop = ctx.loop
        if getattr(ctx.limiter, "ledger", None) is None or not isinstance(ctx.scheduler, AsyncIOScheduler):
            loop = None
        if loop is None:
            decided(self.acquire_connect())
            return
        task = loop.create_task(self._acquire_connect_async())
        self._connect_task = task  # held until done

        def done(task: asyncio.Task[Decision]) -> None:
            self._connect_task = None
            if task.cancelled():
                decided(NotConnected("the connect decision was cancelled"))
                return
            error = task.exception()
            if error is None:
                decided(task.result())
            else:  # the limiter raised: the opening fails with it
                decided(error if isinstance(error, Exception) else RuntimeError(repr(error)))

        task.add_done_callback(done)

    async def _acquire_connect_async(self) -> Decision:
        limiter: Any = self._ctx.limiter
        decision: Decision = await limiter.acquire_connect_async(self.conn_id, self._ctx.now())
        if decision.allowed:
            self._connection_held = True
        return decision

    def release_connection(self) -> None:
        """The connection ended: its slot is free again (once)."""
        limiter = self._ctx.limiter
        if self._connection_held and limiter is not None:
            self._connection_held = False
            limiter.release_connection(self.conn_id, self._ctx.now())

    def acquire_message(self) -> Decision:
        """May one more frame go out now?"""
        limiter = self._ctx.limiter
        return _YES if limiter is None else limiter.acquire_message(self.conn_id, self._ctx.now())

    def charge_message(self) -> None:
        """A frame already went out (a pong the transport sent by itself): charge it."""
        limiter = self._ctx.limiter
        if limiter is None:
            return
        charge = getattr(limiter, "charge_message", None)
        if charge is not None:
            charge(self.conn_id, self._ctx.now())
        else:
            limiter.acquire_message(self.conn_id, self._ctx.now())

    def acquire_subscribe(self, count: int) -> Decision:
        """May ``count`` more topics be subscribed on this connection now?"""
        limiter = self._ctx.limiter
        return _YES if limiter is None else limiter.acquire_subscribe(self.conn_id, self._ctx.now(), count)

    def release_subscriptions(self, count: int) -> None:
        """``count`` topics left this connection (or were refused): their budget is free again."""
        limiter = self._ctx.limiter
        if limiter is not None:
            limiter.release_subscriptions(self.conn_id, self._ctx.now(), count)

    def violation(self, signal: str, retry_after: float | None = None) -> None:
        """The venue said "too many": the limiter starts its penalty (or, without one, an event)."""
        ctx = self._ctx
        limiter = ctx.limiter
        if limiter is None:
            ctx.emit_rate(ViolationReported(at=ctx.now(), conn_id=self.conn_id, signal=signal))
            return
        limiter.report_violation(self.conn_id, signal, ctx.now(), retry_after)

    def check_rate_signal(self, message: Any) -> None:
        """Report a violation when ``message`` says the venue saw too much."""
        signal = self._ctx.protocol.rate_limit_signal(message)
        if signal is not None:
            self.violation(signal)

    def penalty_remaining(self) -> float:
        """Seconds the venue's penalty still runs on this connection (0 without one)."""
        remaining = getattr(self._ctx.limiter, "penalty_remaining", None)
        return float(remaining(self.conn_id, self._ctx.now())) if remaining is not None else 0.0
