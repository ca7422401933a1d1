"""Rate-limit events: what a dashboard needs to see, one small frozen model each.

Events are emitted for what is *not* routine: a wait, a queue, a refusal, a drop, a venue's
complaint, a penalty starting or ending, a connection released. An allowed action emits nothing.
``at`` is the caller's clock (the ``now`` passed to the limiter, or the scheduler's time in the
``rate_limit`` operator), in seconds.

``PenaltyEnded`` is emitted lazily: the limiter has no timer, so it notices that a penalty is over
on the first call after its end (an ``acquire_*`` or ``report_violation``) and emits it then, with
``at`` set to that call's ``now``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter

from rxws.events import Event
from rxws.ratelimit.base import Action

__all__ = [
    "ConnectionReleased",
    "Dropped",
    "LedgerRestored",
    "LedgerUnavailable",
    "PenaltyEnded",
    "PenaltyStarted",
    "Queued",
    "RateLimitEvent",
    "RateLimitEventAdapter",
    "Rejected",
    "Throttled",
    "ViolationReported",
]


class Throttled(Event):
    """An action must wait ``delay`` seconds before a limit allows it (emitted once per wait)."""

    kind: Literal["throttled"] = "throttled"
    action: Action = Action.MESSAGE
    conn_id: str = ""
    delay: float


class Queued(Event):
    """Items are waiting in a queue, which now holds exactly ``depth`` of them.

    The client's outbound queue (frames waiting for the rate limiter or for a back-pressured link
    to drain) emits it when the queue starts (``depth`` 1), each time its depth reaches a power of
    two (2, 4, 8, 16, ...), and with ``depth`` 0 when it is empty again (drained, or failed at a
    drop): a reported depth is never stale by more than a factor of two, and a plot always comes
    back to 0. The ``rate_limit`` operator emits it each time an item joins its queue.
    """

    kind: Literal["queued"] = "queued"
    action: Action = Action.MESSAGE
    conn_id: str = ""
    depth: int


class Dropped(Event):
    """Queued items were discarded, each handed to ``on_drop`` first; never silent.

    ``reason``: ``"drop_newest"`` / ``"drop_oldest"`` (the queue was full and that policy chose),
    ``"error"`` (the stream ended in an error with items still queued), ``"disposed"`` (the
    subscription was disposed with items still queued). ``count`` items went; ``depth`` remain.
    """

    kind: Literal["dropped"] = "dropped"
    action: Action = Action.MESSAGE
    conn_id: str = ""
    reason: Literal["drop_newest", "drop_oldest", "error", "disposed"]
    count: int = 1
    depth: int = 0


class Rejected(Event):
    """The limiter refused an action.

        ``why`` is ``"penalty"`` (a venue violation is being served), ``"rate"`` (a rate rule),
        ``"connections"`` (the concurrent-connection cap), ``"ledger"`` (the shared ledger is unavailable
    and the policy is ``fail_closed``) or ``"topics"`` (the per-connection topic cap;
        ``retry_after`` is then ``inf``). Message-rate refusals are left to the queue in front of the
        limiter, which reports them as ``Throttled``.
    """

    model_config = ConfigDict(ser_json_inf_nan="strings")  # retry_after=inf survives JSON

    kind: Literal["rejected"] = "rejected"
    action: Action
    conn_id: str = ""
    why: str
    retry_after: float


class ViolationReported(Event):
    """The venue said "too many" (``signal``, see ``rxws.ratelimit.Signal``) on ``conn_id``."""

    kind: Literal["violation_reported"] = "violation_reported"
    conn_id: str = ""
    signal: str


class PenaltyStarted(Event):
    """A penalty of ``seconds`` started (or was extended) for ``scope`` (e.g. ``"ip:10.0.0.1"``)."""

    kind: Literal["penalty_started"] = "penalty_started"
    scope: str
    seconds: float


class PenaltyEnded(Event):
    """The penalty for ``scope`` is over; emitted lazily, by the first call after its end."""

    kind: Literal["penalty_ended"] = "penalty_ended"
    scope: str


class ConnectionReleased(Event):
    """A connection ended: its concurrent slot and per-connection budgets were freed."""

    kind: Literal["connection_released"] = "connection_released"
    conn_id: str


class LedgerUnavailable(Event):
    """The shared ledger (Redis) stopped answering within its timeout; ``policy`` now decides.

    ``policy`` is ``"fail_closed"`` (shared budgets refuse until it is back) or ``"local_share"``
    (each process spends a local fraction of every shared budget). ``at`` is this host's monotonic
    clock (the ledger has no caller clock); ``detail`` says what failed.
    """

    kind: Literal["ledger_unavailable"] = "ledger_unavailable"
    policy: str
    detail: str = ""


class LedgerRestored(Event):
    """The shared ledger answers again after ``downtime`` seconds; held leases were re-asserted."""

    kind: Literal["ledger_restored"] = "ledger_restored"
    downtime: float


RateLimitEvent = Annotated[
    Throttled
    | Queued
    | Dropped
    | Rejected
    | ViolationReported
    | PenaltyStarted
    | PenaltyEnded
    | ConnectionReleased
    | LedgerUnavailable
    | LedgerRestored,
    Field(discriminator="kind"),
]
"""Any rate-limit event, discriminated by ``kind``."""

RateLimitEventAdapter: TypeAdapter[RateLimitEvent] = TypeAdapter(RateLimitEvent)
"""Parses a rate-limit event back from a dict: ``RateLimitEventAdapter.validate_python(d)``."""
