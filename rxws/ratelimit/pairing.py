"""Which dialect a venue's limits belong to, and the check that a client pairs them right.

A preset carries the limits of one venue (``binance_spot()`` paces 5 frames per second because
Binance counts that way). Paired with another venue's dialect it paces the wrong budget and
nothing says so: a client speaking OKX under Binance's limits is throttled where it need not be
and unprotected where it must be. So a :class:`~rxws.ratelimit.VenueRateLimiter` names its
dialect in ``venue`` (the protocol's ``name``: ``"binance"``, ``"okx"``, ``"bybit"``,
``"deribit"``, ``"coinbase"``, ``"kraken"``), and :func:`check_pairing`, called when a client or
a pool is built, refuses a mismatch with a :class:`~rxws.exceptions.UsageError` naming both.

The mock venue's dialect, ``GenericJson`` (name ``"generic"``), is no venue's: a preset paired
with it is a mismatch too. Two ways to pair on purpose:

- a custom dialect of a known venue declares it: ``class MyBinance(VenueProtocol): name = "binance"``
  (a subclass of :class:`~rxws.protocols.Binance` inherits it);
- a limiter lends its limits to any dialect with ``venue=None``: ``binance_spot(venue=None)``
  (e.g. to test Binance's pacing against a ``GenericJson`` MockVenue), or a hand-built
  ``VenueRateLimiter(...)``, whose ``venue`` is None unless given.

A limiter that is not a ``VenueRateLimiter`` (any other :class:`~rxws.ratelimit.WebSocketRateLimiter`)
is checked through a ``venue`` attribute when it has one, and fits any dialect when it has none.
"""

from __future__ import annotations

from rxws.exceptions import UsageError

__all__ = ["check_pairing", "venue_of"]


def venue_of(limiter: object) -> str | None:
    """The dialect name ``limiter``'s limits belong to, or None when they fit any dialect."""
    venue = getattr(limiter, "venue", None)
    return venue if isinstance(venue, str) else None


def check_pairing(protocol: object, limiter: object | None) -> None:
    """Refuse a rate limiter built for another venue's dialect than ``protocol``.

    Args:
        protocol: the client's dialect (a :class:`~rxws.protocols.base.VenueProtocol`); its
            class attribute ``name`` says which venue it speaks.
        limiter: the client's rate limiter, or None (nothing to check).

    Raises:
        UsageError: the limiter names a venue (``venue``) other than the protocol's ``name``.
    """
    venue = venue_of(limiter)
    if venue is None:
        return
    dialect = getattr(protocol, "name", None)
    if dialect == venue:
        return
    label = getattr(limiter, "name", None) or type(limiter).__name__
    raise UsageError(
        f"rate limiter {label!r} holds {venue!r} limits, but the protocol "
        f"{type(protocol).__name__} speaks {dialect!r}: pair {venue!r} limits with the {venue!r} "
        f"dialect, or lend them to any dialect on purpose with venue=None (e.g. binance_spot(venue=None))"
    )
