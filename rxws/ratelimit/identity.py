"""Connection identity: an id per connection that no other connection shares.

A limiter counts per-connection budgets, topic caps and concurrent slots by connection id, and
releases them by id. An id built from a label alone (the client's name, which defaults to the URL)
is shared by two clients of one URL, so they would count as one connection and one's close would
free the other's slot. :func:`connection_id` adds what makes it unique:

- a random 64-bit token drawn once per process (drawn again in a forked child), so ids from
  different processes and hosts sharing a :class:`~rxws.ratelimit.fleet.FleetLedger` do not
  collide (two of a thousand processes share a token with odds below 1e-13);
- a counter, so ids from one process never repeat.

The limiter hands ids out (:meth:`~rxws.ratelimit.VenueRateLimiter.connection_id`); any limiter
without that method gets one from this module.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading

__all__ = ["connection_id", "process_token"]

_lock = threading.Lock()
_token = secrets.token_hex(8)
_counter = itertools.count(1)


def _reseed() -> None:  # a forked child must not repeat its parent's ids
    global _token, _counter
    _token = secrets.token_hex(8)
    _counter = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def process_token() -> str:
    """This process's random 64-bit token, in hex (16 characters)."""
    return _token


def connection_id(label: str, limiter: object = None) -> str:
    """A new connection id, ``"<label>#<process token>-<n>"``, unique in the fleet.

    When ``limiter`` has a ``connection_id(label)`` method (``VenueRateLimiter`` does), it makes
    the id; otherwise this module does. The label keeps ids readable in logs and events.
    """
    make = getattr(limiter, "connection_id", None)
    if callable(make):
        return str(make(label))
    with _lock:
        n = next(_counter)
    return f"{label}#{_token}-{n}"
