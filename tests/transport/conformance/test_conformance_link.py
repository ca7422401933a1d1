"""The Link contract (rxws.transport.base), checked alike on every transport: memory (virtual
time), websockets and picows (real loopback sockets). A new transport passes this before it ships."""

from __future__ import annotations

import asyncio

import pytest
from conformance_harness import Harness

from rxws.exceptions import ConnectionLost, HeartbeatTimeout, NotConnected

CLOSE_CODES = (1000, 1001, 1008, 1011, 4000, 4999)
FRAME = "y" * 1000

pytestmark = pytest.mark.asyncio  # explicit: conftest runs each test on asyncio and uvloop


async def test_messages_arrive_in_order_as_text_or_bytes(harness: Harness) -> None:
    link, inbox = await harness.open()
    sent = ["a", b"\x00\x01\xff", '{"topic":"t","seq":1}', "é€", b""]
    for frame in sent:
        await _push(harness, frame)
    await harness.until(lambda: len(inbox.messages) == len(sent))
    assert inbox.messages == sent
    assert [type(m) for m in inbox.messages] == [type(f) for f in sent]
    assert link.send("out-1") is True and link.send(b"out-2") is True
    await harness.until(lambda: len(harness.peer.received if harness.real else harness.peer.sent) == 2)
    assert (harness.peer.received if harness.real else harness.peer.sent) == ["out-1", b"out-2"]


@pytest.mark.parametrize("code", CLOSE_CODES)
async def test_the_venue_closes_with_a_code_and_a_reason(harness: Harness, code: int) -> None:
    link, inbox = await harness.open()
    await _push(harness, "last words")
    if harness.real:
        await harness.peer.close(code, f"bye {code}")
    else:
        harness.peer.close(code, f"bye {code}")
    await harness.until(lambda: inbox.ended)
    assert inbox.completed and inbox.error is None
    assert inbox.messages == ["last words"]  # every message before the close frame, then the end
    assert (link.close_code, link.close_reason, link.closed_by_peer) == (code, f"bye {code}", True)
    with pytest.raises(NotConnected):
        link.send("late")


@pytest.mark.parametrize("code", CLOSE_CODES)
async def test_the_client_closes_with_a_code_and_a_reason(harness: Harness, code: int) -> None:
    link, inbox = await harness.open()
    await harness.closed(link, code, f"leaving {code}")
    assert inbox.completed and inbox.error is None
    assert link.closed_by_peer is False
    if harness.real:
        await harness.until(lambda: harness.peer.client_close is not None)
    assert harness.peer.client_close == (code, f"leaving {code}")
    with pytest.raises(NotConnected):
        link.send("late")
    with pytest.raises(NotConnected):
        link.ping(lambda: None)
    await harness.closed(link)  # idempotent: a second close completes too


async def test_an_abrupt_reset_is_connection_lost(harness: Harness) -> None:
    link, inbox = await harness.open()
    harness.peer.drop()
    await harness.until(lambda: inbox.ended)
    assert isinstance(inbox.error, ConnectionLost), inbox.error
    assert not inbox.completed
    with pytest.raises(NotConnected):
        link.send("after the reset")


async def test_a_ping_gets_its_pong_and_the_venues_ping_is_answered(harness: Harness) -> None:
    link, _inbox = await harness.open()
    controls: list[str] = []
    link.on_control_sent = controls.append
    pongs: list[int] = []
    assert link.ping(lambda: pongs.append(1)) is True
    assert link.ping(lambda: pongs.append(2)) is True
    await harness.until(lambda: len(pongs) == 2)
    assert pongs == [1, 2]
    if harness.real:
        await harness.peer.ping_client()  # returns once the client's pong arrived
    else:
        harness.peer.ping_client()
    await harness.until(lambda: controls == ["pong"])


async def test_a_half_open_link_answers_no_ping_and_the_keepalive_detects_it(harness: Harness) -> None:
    pongs: list[int] = []
    if not harness.real:  # memory: the client's heartbeat (rxws._heartbeat) does the detecting
        link, inbox = await harness.open()
        harness.peer.answer_pings = False
        link.ping(lambda: pongs.append(1))
        link.send("probe")  # sent after the ping: once it arrived, the ping had its chance
        await harness.until(lambda: harness.peer.sent == ["probe"])
        harness.scheduler.advance_by(5.0)  # type: ignore[union-attr]
        assert pongs == [] and not inbox.ended
        return
    link, inbox = await harness.open(ping_interval=0.05, ping_timeout=0.3, close_timeout=0.5)
    link.ping(lambda: pongs.append(1))
    await harness.until(lambda: bool(pongs))  # the keepalive and a ping work while the venue reads
    harness.peer.half_open()
    link.ping(lambda: pongs.append(2))
    await harness.until(lambda: inbox.ended)
    assert isinstance(inbox.error, HeartbeatTimeout), inbox.error
    assert pongs == [1]


async def test_a_venue_that_stops_reading_gets_back_pressure_then_everything_in_order(
    harness: Harness,
) -> None:
    high = 16 * 1024
    link, _inbox = await harness.open(write_high_water=high)
    drains: list[int] = []
    link.on_drain = lambda: drains.append(1)
    peer = harness.peer
    peer.stop_reading()
    sent = 0
    async with _bounded():
        while link.send(f"{sent:06d}{FRAME}"):
            sent += 1
            if sent % 256 == 0:
                await harness.until(lambda: True)  # let the kernel and the venue take what they take
            assert sent < 200_000, "the link never reported back-pressure"
    sent += 1  # the frame that crossed the mark is kept and written at the drain
    assert not link.writable and not drains
    if hasattr(link, "buffered"):  # the link holds at most the mark plus the crossing frame
        assert high < link.buffered <= high + len(FRAME) + 20
    assert link.send(f"{sent:06d}{FRAME}") is False  # not writable: kept, in order
    sent += 1
    pongs: list[int] = []
    assert link.ping(lambda: pongs.append(1)) is False
    peer.resume_reading()
    await harness.until(lambda: bool(drains))
    assert drains == [1] and link.writable
    assert link.send("after") is True
    received = peer.received if harness.real else peer.sent
    await harness.until(lambda: len(received) == sent + 1 and bool(pongs), timeout=30.0)
    assert received == [f"{i:06d}{FRAME}" for i in range(sent)] + ["after"]


async def _push(harness: Harness, frame: str | bytes) -> None:
    if harness.real:
        await harness.peer.push(frame)
    else:
        harness.peer.push(frame)


def _bounded() -> asyncio.Timeout:
    return asyncio.timeout(60.0)
