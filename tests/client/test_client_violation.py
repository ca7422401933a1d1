"""A venue that says "too many requests" in a reply (Binance -1003): the caller gets the
VenueError, the limiter starts a penalty, and nothing more goes out until it ends."""

from __future__ import annotations

import json
from typing import Any

from harness import Virtual

from rxws import Disconnected, DisconnectReason, RateLimitExceeded, VenueError
from rxws.exceptions import PenaltyActive
from rxws.protocols import Binance
from rxws.ratelimit import PenaltyStarted, RateLimitEvent, SlidingWindow, VenueRateLimiter, ViolationReported
from rxws.ratelimit.presets import binance_spot


def test_binance_1003_starts_a_penalty_that_holds_back_the_next_frames(virtual: Virtual) -> None:
    client = virtual.client(protocol=Binance(), rate_limiter=binance_spot())
    rate_events: list[RateLimitEvent] = []
    client.rate_limit_events.subscribe(rate_events.append)
    errors: list[BaseException] = []
    sent_at: list[float] = []
    virtual.at(1.0, client.connect)
    virtual.at(1.9, lambda: setattr(virtual.transport.peer, "on_receive", None))  # we answer by hand
    virtual.at(2.0, lambda: client.request("ping.x", timeout=5.0).subscribe(on_error=errors.append))

    def too_many() -> None:
        request = json.loads(virtual.transport.peer.sent[-1])
        virtual.transport.peer.push(
            {"id": request["id"], "error": {"code": -1003, "msg": "Too many requests"}}
        )

    virtual.at(2.5, too_many)
    virtual.at(
        3.0,
        lambda: client.send({"method": "note"}).subscribe(on_next=lambda _v: sent_at.append(virtual.now())),
    )
    virtual.run(until=10.0)

    assert len(errors) == 1 and isinstance(errors[0], VenueError) and errors[0].code == -1003
    kinds: list[Any] = [type(e) for e in rate_events]
    assert ViolationReported in kinds and PenaltyStarted in kinds
    penalty = next(e for e in rate_events if isinstance(e, PenaltyStarted))
    assert (penalty.at, penalty.seconds) == (2.75, 1.0)  # the reply arrives at 2.5 + latency
    # the send asked at 3.0 waited for the penalty to run out, then went
    assert sent_at == [3.75]


def test_connect_during_a_penalty_is_refused_locally_with_penalty_active(virtual: Virtual) -> None:
    limiter = binance_spot()
    client = virtual.client(protocol=Binance(), rate_limiter=limiter)
    errors: list[BaseException] = []
    virtual.at(1.0, lambda: limiter.report_violation("someone-else", "close_1008", 1.0))
    virtual.at(1.5, lambda: client.connect().subscribe(on_error=errors.append))
    virtual.run(until=3.0)
    assert len(errors) == 1 and isinstance(errors[0], PenaltyActive)
    assert virtual.transport.attempts == 0  # nothing reached the venue
    dropped = virtual.timeline.of(Disconnected)  # type: ignore[union-attr]
    assert [d.reason for d in dropped] == [DisconnectReason.RATE_LIMITED]


def test_connect_beyond_the_wait_limit_is_refused_with_rate_limit_exceeded(virtual: Virtual) -> None:
    limiter = VenueRateLimiter(connect=[SlidingWindow(1, 60.0)])  # one connect a minute
    first = virtual.client(rate_limiter=limiter, open_timeout=5.0)
    second = virtual.client(rate_limiter=limiter, open_timeout=5.0)
    errors: list[BaseException] = []
    virtual.at(1.0, first.connect)
    virtual.at(2.0, lambda: second.connect().subscribe(on_error=errors.append))
    virtual.run(until=3.0)
    assert len(errors) == 1 and isinstance(errors[0], RateLimitExceeded)
    assert errors[0].retry_after == 59.0  # longer than open_timeout: refused, not waited for
    assert virtual.transport.attempts == 1
