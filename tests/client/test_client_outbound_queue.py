"""The bounded outbound queue, in virtual time: overflow is an error and an event, never silent;
a queued request whose caller already got an error is never sent."""

from __future__ import annotations

from typing import Any

from harness import Virtual

from rxws import RateLimitExceeded, RequestTimeout
from rxws.events import MessageDropped
from rxws.ratelimit import Queued, SlidingWindow, VenueRateLimiter


def test_overflow_fails_the_send_and_emits_message_dropped(virtual: Virtual) -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(1, 10.0)])  # one frame per 10 s
    client = virtual.client(rate_limiter=limiter, max_outbound_queue=2)
    outcomes: list[Any] = []

    def burst() -> None:
        for i in range(4):
            client.send({"op": "note", "n": i}).subscribe(
                on_next=lambda _v, i=i: outcomes.append((i, "sent")),
                on_error=lambda e, i=i: outcomes.append((i, type(e).__name__)),
            )

    virtual.at(1.0, client.connect)
    virtual.at(2.0, burst)
    virtual.run(until=2.5)
    # frame 0 goes out, 1 and 2 wait in the queue (its bound), 3 overflows
    assert outcomes == [(0, "sent"), (3, RateLimitExceeded.__name__)]
    dropped = virtual.timeline.of(MessageDropped)  # type: ignore[union-attr]
    assert [d.reason for d in dropped] == ["outbound queue full"]
    assert client.stats.outbound_dropped == 1
    virtual.run(until=40.0)
    assert outcomes[2:] == [(1, "sent"), (2, "sent")]


def test_a_queued_request_that_timed_out_is_dropped_not_sent(virtual: Virtual) -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(1, 10.0)])
    client = virtual.client(rate_limiter=limiter)
    errors: list[BaseException] = []
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: client.send({"op": "note"}))  # uses the budget until 12.25
    virtual.at(2.1, lambda: client.request("echo", {"x": 1}, timeout=3.0).subscribe(on_error=errors.append))
    virtual.run(until=20.0)
    assert len(errors) == 1 and isinstance(errors[0], RequestTimeout)
    sent = [str(f) for f in virtual.transport.peer.sent]
    assert not any('"echo"' in f for f in sent), "a request whose caller got RequestTimeout went out"
    reasons = [d.reason for d in virtual.timeline.of(MessageDropped)]  # type: ignore[union-attr]
    assert len(reasons) == 1 and "failed before it was sent" in reasons[0]


def test_queued_depth_is_reported_at_powers_of_two_and_when_it_drains(virtual: Virtual) -> None:
    limiter = VenueRateLimiter(message=[SlidingWindow(1, 1.0)])  # one frame per second
    client = virtual.client(rate_limiter=limiter)
    depths: list[tuple[float, int]] = []
    client.rate_limit_events.subscribe(
        lambda e: depths.append((e.at, e.depth)) if isinstance(e, Queued) else None
    )
    virtual.at(1.0, client.connect)
    virtual.at(2.0, lambda: [client.send({"op": "note", "n": i}) for i in range(16)])
    virtual.run(until=60.0)
    # frame 0 goes out at once; 15 wait: depth reported at 1, 2, 4, 8 (never "1" while 15 wait)
    assert [d for _t, d in depths[:-1]] == [1, 2, 4, 8]
    assert {t for t, _d in depths[:-1]} == {2.0}
    last_at, last_depth = depths[-1]
    assert (last_at, last_depth) == (17.0, 0)  # when the 15th waiting frame went out (1 per second)
    assert len(virtual.transport.peer.sent) == 16
