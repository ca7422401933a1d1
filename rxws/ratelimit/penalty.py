"""Violation backoff: what happens after a venue says "too many".

A venue's complaint is a *signal*, a short string naming what it said (:class:`Signal`;
:func:`classify_violation` builds one from a close code, an HTTP status, or a venue error code or
text). The :class:`PenaltyBox` turns signals into penalties per scope key: the first violation
costs ``initial`` seconds, each further one ``factor`` times more, up to ``max``; a ``Retry-After``
from the venue is honoured when it asks for longer. After ``reset_after`` quiet seconds following
the end of a penalty, the next violation starts from ``initial`` again.

Pure: no clock, no threads; the caller passes ``now`` and holds any lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["PenaltyBox", "PenaltyPolicy", "Signal", "classify_violation"]


class Signal:
    """The violation signals rxws recognises, as the strings ``report_violation`` receives.

    Venue codes follow the pattern ``"<venue>_<code>"`` (e.g. ``"okx_60014"``); any such string is
    accepted, these constants are the documented ones.
    """

    CLOSE_1008 = "close_1008"
    """WebSocket close 1008 (policy violation), Binance's "Too many requests"."""
    HTTP_429 = "http_429"
    """HTTP 429 Too Many Requests at the handshake."""
    HTTP_418 = "http_418"
    """HTTP 418, Binance's IP ban after ignoring 429s."""
    BINANCE_1003 = "binance_-1003"
    """Binance error -1003 TOO_MANY_REQUESTS."""
    BYBIT_10006 = "bybit_10006"
    """Bybit retCode 10006, too many visits."""
    DERIBIT_10028 = "deribit_10028"
    """Deribit error 10028 too_many_requests (the session is then terminated)."""
    KRAKEN_EXCEEDED_MSG_RATE = "kraken_exceeded_msg_rate"
    """Kraken "Exceeded msg rate"."""
    OKX_50011 = "okx_50011"
    """OKX 50011 "Rate limit reached" (*unverified* for WebSocket: secondary sources)."""
    OKX_60014 = "okx_60014"
    """OKX 60014 "Requests too frequent" (*unverified*: secondary sources)."""

    RATE_LIMIT_CLOSE_CODES: ClassVar[frozenset[int]] = frozenset({1008})
    RATE_LIMIT_HTTP_STATUSES: ClassVar[frozenset[int]] = frozenset({418, 429})
    VENUE_CODES: ClassVar[dict[str, frozenset[str]]] = {
        "binance": frozenset({"-1003"}),
        "bybit": frozenset({"10006"}),
        "deribit": frozenset({"10028"}),
        "okx": frozenset({"50011", "60014"}),
    }
    VENUE_TEXTS: ClassVar[dict[str, tuple[tuple[str, str], ...]]] = {
        "kraken": (("exceeded msg rate", "kraken_exceeded_msg_rate"),),
        "deribit": (("too_many_requests", "deribit_10028"),),
    }


def classify_violation(
    *,
    close_code: int | None = None,
    http_status: int | None = None,
    venue: str | None = None,
    code: int | str | None = None,
    message: str | None = None,
) -> str | None:
    """The signal for what the venue said, or None when it is not a rate-limit complaint.

    Examples::

        classify_violation(close_code=1008)                  # "close_1008"
        classify_violation(http_status=429)                  # "http_429"
        classify_violation(venue="binance", code=-1003)      # "binance_-1003"
        classify_violation(venue="kraken", message="EGeneral:Exceeded msg rate")
                                                             # "kraken_exceeded_msg_rate"
    """
    if close_code is not None and close_code in Signal.RATE_LIMIT_CLOSE_CODES:
        return f"close_{close_code}"
    if http_status is not None and http_status in Signal.RATE_LIMIT_HTTP_STATUSES:
        return f"http_{http_status}"
    if venue is None:
        return None
    v = venue.lower()
    if code is not None and str(code) in Signal.VENUE_CODES.get(v, frozenset()):
        return f"{v}_{code}"
    if message:
        text = message.lower()
        for needle, signal in Signal.VENUE_TEXTS.get(v, ()):
            if needle in text:
                return signal
    return None


@dataclass(frozen=True, slots=True)
class PenaltyPolicy:
    """How long a penalty lasts.

    Attributes:
        initial: seconds of the first penalty.
        factor: growth per further violation.
        max: the longest penalty rxws computes (a venue's Retry-After may ask for more).
        reset_after: quiet seconds after a penalty ends before the next one starts at ``initial``.
    """

    initial: float = 1.0
    factor: float = 2.0
    max: float = 600.0
    reset_after: float = 300.0

    def __post_init__(self) -> None:
        for name in ("initial", "max", "reset_after"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"PenaltyPolicy.{name} must be finite and > 0, got {value!r}")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError(f"PenaltyPolicy.factor must be finite and >= 1, got {self.factor!r}")
        if self.max < self.initial:
            raise ValueError(f"PenaltyPolicy.max ({self.max}) must be >= initial ({self.initial})")

    def seconds(self, level: int) -> float:
        """The penalty for the ``level``-th violation in a row (0 = the first)."""
        if level > 1000:
            return self.max
        return min(self.max, self.initial * self.factor**level)


@dataclass(slots=True)
class _Penalty:
    level: int
    until: float
    announced: bool = True  # PenaltyStarted emitted, PenaltyEnded not yet


class PenaltyBox:
    """Penalties per scope key (e.g. ``"ip:10.0.0.1"``), with exponential growth and reset."""

    __slots__ = ("_entries", "policy")

    def __init__(self, policy: PenaltyPolicy | None = None) -> None:
        self.policy = policy or PenaltyPolicy()
        self._entries: dict[str, _Penalty] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def report(self, key: str, now: float, retry_after: float | None = None) -> float:
        """Start or extend the penalty of ``key``; returns the seconds from ``now`` to its end."""
        entry = self._entries.get(key)
        level = 0
        if entry is not None and now - entry.until < self.policy.reset_after:
            level = entry.level
        seconds = self.policy.seconds(level)
        if retry_after is not None and retry_after > seconds and math.isfinite(retry_after):
            seconds = retry_after
        until = now + seconds
        if entry is not None and entry.until > until:
            until = entry.until
        self._entries[key] = _Penalty(level + 1, until)
        return until - now

    def remaining(self, key: str, now: float) -> float:
        """Seconds left of the penalty of ``key`` (0.0 when none is active)."""
        entry = self._entries.get(key)
        if entry is None or now >= entry.until:
            return 0.0
        return entry.until - now

    def ended(self, key: str, now: float) -> bool:
        """True once, on the first call after the penalty of ``key`` ended (for PenaltyEnded).

        Also forgets the key once its quiet period has passed, so memory does not grow.
        """
        entry = self._entries.get(key)
        if entry is None or now < entry.until:
            return False
        if now - entry.until >= self.policy.reset_after:
            del self._entries[key]
        if entry.announced:
            entry.announced = False
            return True
        return False
