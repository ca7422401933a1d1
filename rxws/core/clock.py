"""The venue's clock, estimated from what the venue says about it (sans-I/O).

Logins are signed with a timestamp the venue checks against its own clock (OKX: 30 s; Bybit: the
``expires`` margin; Binance: at most 1 s ahead). A :class:`VenueClock` keeps an estimate of the
offset ``venue time - local time`` from samples:

* the handshake response's HTTP ``Date`` header (:meth:`VenueClock.add_date_header`): one-second
  resolution, so the venue's time lies anywhere in ``[date, date + 1)``;
* a server time stated in a reply (:meth:`VenueClock.add_server_time`: Bybit's private pong,
  Deribit's ``usOut``, Binance's ``serverTime``), taken at the midpoint of the round trip;
* a host source (:meth:`VenueClock.add_sample`), e.g. the venue's REST ``time`` endpoint.

Each sample has an uncertainty (half the round trip, plus half a second for a ``Date``). The
estimate is robust to outliers: of the last ``window`` samples, those whose uncertainty is at most
twice the smallest are kept (a slow round trip is the usual source of a wrong sample) and their
median offset is taken. :class:`SkewRule` decides when a ``ClockSkew`` event is due. Times are
plain seconds (Unix time for "local"); nothing here reads a clock.
"""

from __future__ import annotations

import statistics
from collections import deque
from email.utils import parsedate_to_datetime
from typing import NamedTuple

__all__ = ["ClockSample", "SkewRule", "VenueClock"]


class ClockSample(NamedTuple):
    """One estimate of ``venue - local`` (seconds) and how far off it may be (seconds)."""

    offset: float
    uncertainty: float
    source: str


class VenueClock:
    """An estimate of the venue's clock offset from a window of samples.

    Args:
        window: how many recent samples the estimate uses.
    """

    def __init__(self, *, window: int = 16) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._samples: deque[ClockSample] = deque(maxlen=window)
        self._offset: float | None = None

    @property
    def samples(self) -> list[ClockSample]:
        """The samples the estimate uses, oldest first."""
        return list(self._samples)

    @property
    def offset(self) -> float | None:
        """``venue - local`` in seconds, or None before any sample."""
        return self._offset

    @property
    def uncertainty(self) -> float | None:
        """The smallest uncertainty among the samples, or None before any."""
        return min((s.uncertainty for s in self._samples), default=None)

    def now_venue(self, local_now: float) -> float:
        """The venue's time at local time ``local_now`` (``local_now`` itself before any sample)."""
        return local_now + (self._offset or 0.0)

    def add_sample(self, offset: float, uncertainty: float = 0.0, source: str = "host") -> float:
        """Add an offset measured elsewhere (a host source); returns the new estimate.

        Raises:
            ValueError: a negative uncertainty or a non-finite offset.
        """
        if uncertainty < 0 or offset != offset or abs(offset) == float("inf"):
            raise ValueError(f"bad clock sample: offset={offset!r}, uncertainty={uncertainty!r}")
        self._samples.append(ClockSample(offset, uncertainty, source))
        best = min(s.uncertainty for s in self._samples)
        kept = [s.offset for s in self._samples if s.uncertainty <= 2 * best + 1e-9]
        self._offset = statistics.median(kept)
        return self._offset

    def add_server_time(self, server_ms: float, local_sent: float, local_received: float) -> float:
        """Add a server time (Unix ms) stated in a reply to a request sent at ``local_sent`` and
        received at ``local_received`` (local Unix seconds); returns the new estimate.

        Raises:
            ValueError: the reply was received before the request was sent.
        """
        rtt = _round_trip(local_sent, local_received)
        midpoint = local_sent + rtt / 2
        return self.add_sample(server_ms / 1000.0 - midpoint, rtt / 2, "reply")

    def add_date_header(self, date: str, local_sent: float, local_received: float) -> float | None:
        """Add the HTTP ``Date`` of the handshake response (RFC 9110 format) for a handshake sent
        at ``local_sent`` and answered at ``local_received``; returns the new estimate, or None
        (nothing added) when ``date`` cannot be parsed.

        Raises:
            ValueError: the response was received before the request was sent.
        """
        rtt = _round_trip(local_sent, local_received)
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return None
        midpoint = local_sent + rtt / 2
        # The header truncates to the second: the venue's time is in [server, server + 1).
        return self.add_sample(server + 0.5 - midpoint, rtt / 2 + 0.5, "date")


def _round_trip(sent: float, received: float) -> float:
    if received < sent:
        raise ValueError(f"received ({received}) before sent ({sent})")
    return received - sent


class SkewRule:
    """When a ``ClockSkew`` event is due: once when ``|offset|`` reaches ``ratio * window``, and
    again only after it has fallen below half that (so a wobbling estimate does not flood events).

    Args:
        window: the venue's accepted window in seconds (None: never due).
        ratio: the fraction of the window that counts as "near".
    """

    def __init__(self, window: float | None, *, ratio: float = 0.5) -> None:
        if not 0 < ratio <= 1:
            raise ValueError("ratio must be in (0, 1]")
        self.window = window
        self.ratio = ratio
        self._armed = True

    def check(self, offset: float | None) -> bool:
        """Whether ``offset`` (the current estimate) makes a ``ClockSkew`` event due now."""
        if self.window is None or offset is None:
            return False
        threshold = self.ratio * self.window
        if abs(offset) >= threshold:
            if self._armed:
                self._armed = False
                return True
            return False
        if abs(offset) < threshold / 2:
            self._armed = True
        return False
