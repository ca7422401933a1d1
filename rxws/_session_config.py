"""What every session of one client is opened with, checked once when the client is built."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reactivex import Observable

from rxws._redact import DEFAULT_SECRET_HEADERS
from rxws.exceptions import UsageError
from rxws.transport.base import LinkOptions, Transport

__all__ = ["SessionConfig", "session_config"]

Step = Callable[[Any], Observable[Any]]
"""An open step (``rxws._session.OpenStep``): called with the session, completes when done."""


@dataclass(frozen=True)
class SessionConfig:
    """How a :class:`~rxws._session.Session` opens and keeps its link (one per client)."""

    url: str
    transport: Transport
    options: LinkOptions
    ping_interval: float | None
    ping_timeout: float | None
    max_outbound_queue: int
    max_connect_wait: float
    close_timeout: float
    open_steps: tuple[Step, ...] = ()


def session_config(
    url: str,
    transport: Transport | None,
    *,
    headers: Mapping[str, str] | None,
    secret_headers: Sequence[str],
    subprotocols: Sequence[str],
    write_high_water: int,
    max_size: int | None,
    open_timeout: float | None,
    close_timeout: float,
    ssl: object | None,
    ping_interval: float | None,
    ping_timeout: float | None,
    max_outbound_queue: int,
    open_steps: Sequence[Step],
) -> SessionConfig:
    """Check the client's connection settings and bundle them (the native transport by default).

    Raises:
        UsageError: a setting out of range or of the wrong type.
    """
    if transport is None:
        from rxws.transport.websockets import WebsocketsTransport

        transport = WebsocketsTransport()
    if not isinstance(write_high_water, int) or write_high_water < 1:
        raise UsageError(f"write_high_water must be a positive number of bytes, got {write_high_water!r}")
    if isinstance(secret_headers, str):
        raise UsageError(f"secret_headers must be a sequence of header names, got {secret_headers!r}")
    for label, period in (("ping_interval", ping_interval), ("ping_timeout", ping_timeout)):
        if period is not None and not period > 0:
            raise UsageError(f"{label} must be > 0 or None, got {period!r}")
    options = LinkOptions(
        headers=dict(headers or {}),
        secret_headers=(*DEFAULT_SECRET_HEADERS, *secret_headers),
        write_high_water=write_high_water,
        subprotocols=tuple(subprotocols),
        max_size=max_size,
        ping_interval=None,  # the session pings itself (rxws._session_heartbeat): on the client's
        ping_timeout=None,  # scheduler, through the rate limiter, testable in virtual time
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        ssl=ssl,
    )
    return SessionConfig(
        url=url,
        transport=transport,
        options=options,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_outbound_queue=max_outbound_queue,
        max_connect_wait=open_timeout if open_timeout is not None else 10.0,
        close_timeout=close_timeout,
        open_steps=tuple(open_steps),
    )
