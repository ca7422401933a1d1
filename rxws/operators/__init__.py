"""Custom reactive operators: each a function returning an operator for ``Observable.pipe``.

Every operator takes ``scheduler`` last, defaulting to the one given at subscribe time.
"""

from rxws.operators._correlate import CorrelationStats, correlate
from rxws.operators._gaps import detect_gaps
from rxws.operators._idle import idle_watchdog
from rxws.operators._ratelimit import rate_limit
from rxws.operators._retry import Approval, ApproveFn, ReconnectProposal, retry_with_backoff

__all__ = [
    "Approval",
    "ApproveFn",
    "CorrelationStats",
    "ReconnectProposal",
    "correlate",
    "detect_gaps",
    "idle_watchdog",
    "rate_limit",
    "retry_with_backoff",
]
