"""The host's reconnection policy: rxws proposes, the host approves.

``WebSocketClient(..., reconnect=None)`` (the default) never reconnects by itself. With a
:class:`ReconnectPolicy`, every drop becomes a :class:`~rxws.events.ReconnectProposed` event that
``approve`` sees — sync, async, or an observable of bool — before each attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from reactivex import Observable, abc

from rxws.core.backoff import ExponentialBackoff
from rxws.events import ReconnectDenied, ReconnectProposed, VenueNotice
from rxws.exceptions import AuthenticationError, ConnectionClosed, HandshakeRejected
from rxws.operators._retry import retry_with_backoff

__all__ = ["Approval", "ReconnectPolicy", "default_retry_on"]

Approval = Callable[[ReconnectProposed], bool | Awaitable[bool] | Observable[bool]]
"""The host's decision on one proposal."""

NOT_RETRYABLE_CLOSE_CODES = frozenset({1008})
"""Close codes after which the default policy does not propose a reconnection (policy violation)."""

AUTH_STATUSES = frozenset({401, 403})


def default_retry_on(error: BaseException) -> bool:
    """The default: retry any drop except a policy-violation close (1008) or an auth failure
    (HTTP 401/403, or a login the venue refused: a wrong key replayed on every backoff step is
    how an account or an IP gets banned; a login that timed out is retried)."""
    if isinstance(error, ConnectionClosed) and error.code in NOT_RETRYABLE_CLOSE_CODES:
        return False
    if isinstance(error, AuthenticationError) and error.refused:
        return False
    return not (isinstance(error, HandshakeRejected) and error.status in AUTH_STATUSES)


_T = TypeVar("_T")


def _approve_all(_: ReconnectProposed) -> bool:
    return True


@dataclass(frozen=True)
class ReconnectPolicy:
    """How (and whether) to reconnect after a drop.

    Args:
        backoff: the delays between attempts, and how many attempts.
        approve: asked before every attempt with the proposal; the default approves.
        retry_on: which causes are worth proposing at all; the default refuses 1008, 401/403 and
            a refused login.
            A host that wants to decide those too passes ``retry_on=lambda e: True``.
        rotate_on_notice: on a venue notice that the connection will end (a
            :class:`~rxws.events.VenueNotice` with ``notice`` ``"shutdown"`` or
            ``"maintenance"``), rotate to a new connection before it does (make before break):
            ``True``, ``False`` (the default: the notice is only reported), or a function that
            sees the notice and says yes or no (the host decides).
    """

    backoff: ExponentialBackoff = field(default_factory=ExponentialBackoff)
    approve: Approval = _approve_all
    retry_on: Callable[[BaseException], bool] = default_retry_on
    rotate_on_notice: bool | Callable[[VenueNotice], bool] = False

    def retrying(
        self,
        *,
        wanted: Callable[[], bool],
        on_proposal: Callable[[ReconnectProposed], None],
        on_denied: Callable[[ReconnectDenied], None],
        scheduler: abc.SchedulerBase | None,
    ) -> Callable[[Observable[_T]], Observable[_T]]:
        """:func:`~rxws.operators.retry_with_backoff` with this policy's backoff and approval; a
        cause is proposed only while ``wanted()`` (the caller still wants a connection) and
        :attr:`retry_on` accepts it."""
        retry_on = self.retry_on
        return retry_with_backoff(
            self.backoff,
            approve=self.approve,
            retry_on=lambda exc: wanted() and retry_on(exc),
            on_proposal=on_proposal,
            on_denied=on_denied,
            scheduler=scheduler,
        )
