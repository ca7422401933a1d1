"""The Link write contract (rxws.transport.base) in virtual time, to the frame: ``send`` reports whether the
link is still below its high-water mark, ``writable`` says so, ``on_drain`` fires once when a
back-pressured link is below its low-water mark again; nothing piles up in the link meanwhile.
Every transport on a real socket: ``tests/transport/conformance``."""

from __future__ import annotations

from typing import Any

from reactivex.testing import TestScheduler

from rxws.transport.base import LinkOptions
from rxws.transport.memory import MemoryTransport

FRAME = "y" * 1000


def test_memory_link_reports_back_pressure_and_drains_in_order() -> None:
    scheduler = TestScheduler()
    transport = MemoryTransport(latency=0.5)
    links: list[Any] = []
    transport.open("ws://venue.test/ws", LinkOptions(write_high_water=4000), scheduler).subscribe(
        links.append
    )
    scheduler.advance_to(1.0)
    link, peer = links[0], transport.peer
    drains: list[float] = []
    link.on_drain = lambda: drains.append(scheduler.clock)
    assert link.send("a") is True and link.writable  # a reading peer: straight through
    peer.stop_reading()
    results = [link.send(f"{i}{FRAME}") for i in range(5)]
    # 1001-byte frames: 3 fit under 4000 bytes, the 4th crosses the mark, the 5th is kept too
    assert results == [True, True, True, False, False]
    assert not link.writable and peer.unread == 5 * 1001
    pongs: list[float] = []
    assert link.ping(lambda: pongs.append(scheduler.clock)) is False  # a ping waits its turn
    scheduler.advance_to(5.0)
    assert peer.sent == ["a"] and not drains and not pongs
    scheduler.schedule_absolute(6.0, lambda _s, _st: peer.resume_reading())
    scheduler.advance_to(8.0)
    assert drains == [6.0] and link.writable and peer.unread == 0
    assert peer.sent == ["a"] + [f"{i}{FRAME}" for i in range(5)]
    assert pongs == [7.0]  # arrives at 6.5, answered at 7.0
