"""Replaying recordings: ReplayTransport in virtual time (exact times),
ReplayVenue over real loopback sockets, and the acceptance check — a recorded live session replays
to the same messages and the same gap events, over a socket and in virtual time.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import corpus  # tests/corpus.py, the loader of tests/data
import pytest
from reactivex.testing import TestScheduler

from rxws import GapDetected, WebSocketClient
from rxws.events import Disconnected, Event
from rxws.exceptions import HandshakeRejected, RecordingError
from rxws.protocols import Binance, GenericJson, Okx
from rxws.protocols.base import VenueProtocol
from rxws.testing import MockVenue, Recorder, ReplayTransport, ReplayVenue
from rxws.transport.websockets import WebsocketsTransport

HEADER = {
    "format": "rxws-recording",
    "version": 1,
    "url": "ws://x.test",
    "protocol": "generic",
    "started": "",
}
SUBSCRIBE = '{"op":"subscribe","id":1,"args":["trades.BTC"]}'
ACK = '{"id":1,"result":null}'


def data(seq: int) -> str:
    return json.dumps({"topic": "trades.BTC", "seq": seq, "data": {"px": seq}}, separators=(",", ":"))


def write(path: Path, *records: dict[str, Any], header: dict[str, Any] = HEADER) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in (header, *records)))
    return path


def rec(t: float, kind: str, conn: int = 1, **fields: Any) -> dict[str, Any]:
    return {"t": t, "conn": conn, "kind": kind, **fields}


SCRIPT = (
    rec(1.0, "open", url="ws://x.test"),
    rec(2.0, "out", text=SUBSCRIBE),
    rec(2.5, "in", text=ACK),
    rec(3.0, "in", text=data(1)),
    rec(4.0, "in", text=data(3)),
    rec(5.0, "close", code=4001, reason="maintenance", by="venue"),
)


# ReplayTransport, virtual time ----------------------------------------------------------------------
def virtual_session(
    transport: ReplayTransport, *, subscribe_at: float | None = 10.0, protocol: VenueProtocol | None = None
) -> tuple[TestScheduler, WebSocketClient, list[tuple[float, Any]], list[tuple[float, Event]]]:
    scheduler = TestScheduler()
    client = WebSocketClient(
        "ws://x.test",
        protocol=protocol or GenericJson(),
        transport=transport,
        scheduler=scheduler,
        ping_interval=None,
    )
    now = lambda: float(scheduler.clock)  # noqa: E731
    got: list[tuple[float, Any]] = []
    events: list[tuple[float, Event]] = []
    client.events.subscribe(lambda e: events.append((now(), e)))
    scheduler.schedule_absolute(1.0, lambda *_: client.connect().subscribe(on_error=lambda _e: None))
    if subscribe_at is not None:
        scheduler.schedule_absolute(
            subscribe_at, lambda *_: client.watch("trades.BTC").subscribe(lambda m: got.append((now(), m)))
        )
    return scheduler, client, got, events


@pytest.mark.parametrize(
    ("speed", "times"),
    [
        (1.0, [11.0, 12.0, 13.0]),
        (2.0, [10.5, 11.0, 11.5]),
        (None, [10.0, 10.0, 10.0]),
        ("max", [10.0, 10.0, 10.0]),
    ],
)
def test_virtual_replay_waits_for_the_subscribe_then_keeps_the_recorded_pace(
    tmp_path: Path, speed: Any, times: list[float]
) -> None:
    transport = ReplayTransport(write(tmp_path / "s.jsonl", *SCRIPT), speed=speed)
    scheduler, _client, got, events = virtual_session(transport)
    scheduler.advance_to(60.0)

    # Data 1 s after the subscribe (recorded: 2.0 -> 3.0), 1 s apart, then the recorded close.
    assert [(t, m["seq"]) for t, m in got] == [(times[0], 1), (times[1], 3)]
    gaps = [(t, e.topic, e.gap, e.last_seq, e.next_seq) for t, e in events if isinstance(e, GapDetected)]
    assert gaps == [(times[1], "trades.BTC", "sequence", 1, 3)]
    closed = [(t, e.code, e.detail) for t, e in events if isinstance(e, Disconnected)]
    assert [(t, code) for t, code, _ in closed] == [(times[2], 4001)]
    assert transport.peers[0].sent == [SUBSCRIBE]
    assert transport.failures == [] and transport.mismatches == [] and transport.finished


def test_virtual_replay_gives_up_with_1011_when_the_client_never_sends_the_recorded_frame(
    tmp_path: Path,
) -> None:
    transport = ReplayTransport(write(tmp_path / "s.jsonl", *SCRIPT), client_timeout=5.0)
    scheduler, _client, got, events = virtual_session(transport, subscribe_at=None)
    scheduler.advance_to(60.0)
    assert got == []
    closed = [(t, e.code) for t, e in events if isinstance(e, Disconnected)]
    assert closed == [(6.0, 1011)]  # connected at 1.0, waited 5 s for line 3
    assert len(transport.failures) == 1
    assert "recording line 3" in transport.failures[0] and '"op":"subscribe"' in transport.failures[0]


def test_virtual_replay_counts_a_different_client_frame_as_a_mismatch(tmp_path: Path) -> None:
    other = rec(2.0, "out", text='{"op":"subscribe","id":1,"args":["trades.ETH"]}')
    transport = ReplayTransport(write(tmp_path / "s.jsonl", SCRIPT[0], other, *SCRIPT[2:]), speed=None)
    scheduler, _client, got, _events = virtual_session(transport)
    scheduler.advance_to(60.0)
    assert [m["seq"] for _, m in got] == [1, 3]  # still replayed: the n-th frame answers the n-th
    assert transport.mismatches == [(3, other["text"], SUBSCRIBE)]


def test_recorded_heartbeats_are_not_waited_on_and_live_pings_are_answered(tmp_path: Path) -> None:
    okx = {**HEADER, "protocol": "okx"}
    sub = '{"id":"1","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}'
    ack = '{"id":"1","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a"}'
    push = (
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"seqId":5,"prevSeqId":4}]}'
    )
    path = write(
        tmp_path / "okx.jsonl",
        rec(0.0, "open"),
        rec(0.5, "out", text="ping"),
        rec(0.6, "in", text="pong"),
        rec(1.0, "out", text=sub),
        rec(1.1, "in", text=ack),
        rec(2.0, "in", text=push),
        header=okx,
    )
    transport = ReplayTransport(path)
    scheduler = TestScheduler()
    client = WebSocketClient(
        "ws://x.test", protocol=Okx(), transport=transport, scheduler=scheduler, ping_interval=None
    )
    got: list[tuple[float, Any]] = []
    scheduler.schedule_absolute(1.0, lambda *_: client.connect().subscribe(on_error=lambda _e: None))
    scheduler.schedule_absolute(
        3.0, lambda *_: client.watch("books:BTC-USDT").subscribe(lambda m: got.append((scheduler.clock, m)))
    )
    pongs: list[float] = []
    scheduler.schedule_absolute(  # from the start: the recorded pong (due at 1.6) would show here
        1.5,
        lambda *_: transport.peers[0].link.inbound.subscribe(
            lambda f: f == "pong" and pongs.append(scheduler.clock)
        ),
    )
    scheduler.schedule_absolute(4.5, lambda *_: client.send("ping").subscribe(on_error=lambda _e: None))
    scheduler.advance_to(30.0)
    assert [(t, m["data"][0]["seqId"]) for t, m in got] == [(4.0, 5)]  # 1 s after the subscribe at 3.0
    # Answered live (ours at 4.5, then the client's own idle heartbeat); the recorded one never sent.
    assert pongs[0] == 4.5
    assert len(pongs) == transport.peers[0].sent.count("ping")
    assert transport.failures == [] and transport.mismatches == []


def test_a_client_connecting_more_often_than_recorded_is_refused(tmp_path: Path) -> None:
    transport = ReplayTransport(write(tmp_path / "s.jsonl", *SCRIPT), speed=None)
    scheduler, client, _got, _events = virtual_session(transport)
    errors: list[Exception] = []
    scheduler.schedule_absolute(20.0, lambda *_: client.connect().subscribe(on_error=errors.append))
    scheduler.advance_to(30.0)
    assert len(errors) == 1 and "1 connection(s), all served" in str(errors[0])


# ReplayVenue, real sockets --------------------------------------------------------------------------
async def test_replay_venue_serves_each_recorded_connection_in_turn_and_refuses_more(
    no_leaked_tasks: None, tmp_path: Path
) -> None:
    second = (
        rec(7.0, "open", conn=2),
        rec(8.0, "in", conn=2, text=data(9)),
        rec(9.0, "drop", conn=2, error="x"),
    )
    path = write(tmp_path / "s.jsonl", *SCRIPT, *second)
    async with ReplayVenue(path, speed=None) as venue:
        from websockets.asyncio.client import connect

        async with connect(venue.url) as ws:
            await ws.send(SUBSCRIBE)
            assert [await ws.recv() for _ in range(3)] == [ACK, data(1), data(3)]
            async with asyncio.timeout(5):
                await ws.wait_closed()
            assert (ws.close_code, ws.close_reason) == (4001, "maintenance")
        async with connect(venue.url) as ws:
            assert await ws.recv() == data(9)
            async with asyncio.timeout(5):
                await ws.wait_closed()
            assert ws.close_code == 1006  # the recorded drop: no close frame
        client = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
        with pytest.raises(HandshakeRejected) as info:
            await client.connect()
        assert info.value.status == 503
        await client.close()
        await venue.wait_finished(5)
        assert venue.failures == [] and venue.mismatches == []


async def test_replay_venue_at_max_speed_does_not_wait_the_recorded_time(
    no_leaked_tasks: None, tmp_path: Path
) -> None:
    slow = [rec(1.0, "open"), *(rec(1.0 + 10 * i, "in", text=data(i)) for i in range(1, 7))]
    async with ReplayVenue(write(tmp_path / "s.jsonl", *slow), speed="max") as venue:
        from websockets.asyncio.client import connect

        start = time.monotonic()
        async with connect(venue.url) as ws:
            assert [json.loads(await ws.recv())["seq"] for _ in range(6)] == [1, 2, 3, 4, 5, 6]
        assert time.monotonic() - start < 30.0  # recorded: 60 s


async def test_replay_venue_closes_with_1011_when_the_client_never_sends(
    no_leaked_tasks: None, tmp_path: Path
) -> None:
    async with ReplayVenue(write(tmp_path / "s.jsonl", *SCRIPT), client_timeout=0.2) as venue:
        from websockets.asyncio.client import connect

        async with connect(venue.url) as ws:
            async with asyncio.timeout(5):
                await ws.wait_closed()
            assert ws.close_code == 1011
        assert len(venue.failures) == 1 and "recording line 3" in venue.failures[0]


def test_both_replays_refuse_a_corrupt_recording_naming_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", *SCRIPT[:3])
    path.write_text(path.read_text() + '{"t": 3.0, "conn": 1, "kind": "in", "te')  # cut mid-line
    for replay in (ReplayVenue, ReplayTransport):
        with pytest.raises(
            RecordingError, match=rf"^{re.escape(str(path))}:5: not a JSON record \(cut short"
        ):
            replay(path)


def test_speed_must_be_positive_or_max(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", *SCRIPT)
    for bad in (0, -1.0, "fast"):
        with pytest.raises(ValueError, match="speed"):
            ReplayVenue(path, speed=bad)


# Acceptance: a recorded live session replays to the same messages and gaps -------------------------
TOPIC = "books:BTC-USDT"


class Session(NamedTuple):
    client: WebSocketClient
    got: list[Any]
    events: list[Event]
    done: asyncio.Future[None]
    sub: Any


async def watch_session(
    url: str,
    transport: Any,
    count: int,
    protocol: VenueProtocol | None = None,
    topics: Sequence[str] = (TOPIC,),
) -> Session:
    """A client (OKX by default) watching ``topics``; ``done`` resolves once ``count`` messages came."""
    client = WebSocketClient(
        url, protocol=protocol or Okx(), transport=transport, ping_interval=None, subscribe_timeout=5
    )
    events: list[Event] = []
    client.events.subscribe(events.append)
    await client.connect()
    got: list[Any] = []
    done = asyncio.get_running_loop().create_future()

    def on_message(message: Any) -> None:
        got.append(message)
        if len(got) == count and not done.done():
            done.set_result(None)

    return Session(client, got, events, done, client.watch(*topics).subscribe(on_message))


def gaps_of(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e.topic, e.gap, e.last_seq, e.next_seq) for e in events if isinstance(e, GapDetected)]


async def record_live(path: Path, count: int) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """A live OKX session against MockVenue with one sequence gap, recorded."""
    async with MockVenue(rate=0, dialect="okx") as venue:
        with Recorder(WebsocketsTransport(), path, protocol=Okx()) as recorder:
            client, got, events, done, sub = await watch_session(venue.url, recorder, count)
            await venue.wait_subscribed(TOPIC)
            half = count // 2
            for i in range(half):
                await venue.publish(TOPIC, {"n": i})
            venue.skip_sequence(TOPIC, 3)
            for i in range(half, count):
                await venue.publish(TOPIC, {"n": i})
            await asyncio.wait_for(done, 5)
            sub.dispose()
            await venue.wait_for(lambda: all(not c.topics for c in venue.connections))
            await client.close()
    return got, gaps_of(events)


async def test_a_recorded_live_session_replays_to_the_same_messages_and_gaps(
    no_leaked_tasks: None, tmp_path: Path
) -> None:
    path = tmp_path / "okx.jsonl"
    live, live_gaps = await record_live(path, 40)
    assert live_gaps == [(TOPIC, "sequence", 20, 24)]

    async with ReplayVenue(path, speed=None) as venue:
        client, got, events, done, sub = await watch_session(venue.url, None, 40)
        await asyncio.wait_for(done, 5)
        sub.dispose()
        await venue.wait_finished(5)
        await client.close()
    assert got == live
    assert gaps_of(events) == live_gaps
    assert venue.failures == [] and venue.mismatches == []

    # The same file in virtual time.
    transport = ReplayTransport(path, speed=None)
    scheduler = TestScheduler()
    vclient = WebSocketClient(
        "ws://x.test", protocol=Okx(), transport=transport, scheduler=scheduler, ping_interval=None
    )
    vevents: list[Event] = []
    vgot: list[Any] = []
    vclient.events.subscribe(vevents.append)
    scheduler.schedule_absolute(1.0, lambda *_: vclient.connect().subscribe(on_error=lambda _e: None))
    scheduler.schedule_absolute(2.0, lambda *_: vclient.watch(TOPIC).subscribe(vgot.append))
    scheduler.advance_to(30.0)
    assert vgot == live
    assert gaps_of(vevents) == live_gaps


# Acceptance on real captured venue data (tests/data, see tests/data/SOURCES.md) -------------------------
def wire(frames: list[str]) -> bytes:
    from websockets.frames import Frame as WsFrame
    from websockets.frames import Opcode

    return b"".join(WsFrame(Opcode.TEXT, f.encode()).serialize(mask=False) for f in frames)


@pytest.mark.parametrize(
    ("venue", "topic"), [("binance_spot", "ftmusdt@depth@100ms"), ("binance_usdm", "sushiusdt@depth@100ms")]
)
async def test_a_recorded_binance_depth_chain_of_real_frames_replays_to_the_same_messages_and_gap(
    no_leaked_tasks: None, tmp_path: Path, venue: str, topic: str
) -> None:
    frames = corpus.frames(venue, "combined_depth_capture")
    chain = [i for i, f in enumerate(frames) if json.loads(f)["stream"] == topic]
    before, after = (json.loads(frames[i])["data"] for i in (chain[1], chain[3]))
    frames.pop(chain[2])  # one real update missing: one gap in the chain
    streams = sorted({json.loads(f)["stream"] for f in frames})
    path = tmp_path / "binance.jsonl"

    async with MockVenue(rate=0, dialect="binance") as mock:
        with Recorder(WebsocketsTransport(), path, protocol=Binance()) as recorder:
            client, live, events, done, sub = await watch_session(
                mock.url, recorder, len(frames), Binance(), streams
            )
            await mock.wait_subscribed(*streams)
            await asyncio.sleep(0)  # let the ack reach the client first
            await mock.blast(wire(frames))
            await asyncio.wait_for(done, 5)
            sub.dispose()
            await mock.wait_for(lambda: all(not c.topics for c in mock.connections))
            await client.close()
    live_gaps = gaps_of(events)
    assert live == [json.loads(f) for f in frames]
    assert live_gaps == [(topic, "sequence", before["u"], after["U"])]

    async with ReplayVenue(path, speed=None) as replay:
        client, got, events, done, sub = await watch_session(
            replay.url, None, len(frames), Binance(), streams
        )
        await asyncio.wait_for(done, 5)
        sub.dispose()
        await replay.wait_finished(5)
        await client.close()
    assert got == live
    assert gaps_of(events) == live_gaps
    assert replay.failures == [] and replay.mismatches == []

    transport = ReplayTransport(path)  # virtual time, at the recorded pace
    scheduler = TestScheduler()
    vclient = WebSocketClient(
        "ws://x.test", protocol=Binance(), transport=transport, scheduler=scheduler, ping_interval=None
    )
    vevents: list[Event] = []
    vgot: list[Any] = []
    vclient.events.subscribe(vevents.append)
    scheduler.schedule_absolute(1.0, lambda *_: vclient.connect().subscribe(on_error=lambda _e: None))
    subs: list[Any] = []
    scheduler.schedule_absolute(2.0, lambda *_: subs.append(vclient.watch(*streams).subscribe(vgot.append)))
    scheduler.schedule_absolute(5.0, lambda *_: subs[0].dispose())  # the recorded UNSUBSCRIBE
    scheduler.advance_to(60.0)
    assert vgot == live
    assert gaps_of(vevents) == live_gaps
    assert transport.failures == [] and transport.mismatches == [] and transport.finished


async def test_replay_venue_sends_frames_of_every_length_class_text_and_binary(
    no_leaked_tasks: None, tmp_path: Path
) -> None:
    import base64

    texts = ["", "x" * 125, "é" * 100, "y" * 126, "z" * 65535, "w" * 70_000]
    blobs = [b"\x00\xff", bytes(range(256)) * 300]
    records = [rec(0.0, "open")]
    records += [rec(0.0, "in", text=t) for t in texts]
    records += [rec(0.0, "in", binary=base64.b64encode(b).decode()) for b in blobs]
    async with ReplayVenue(write(tmp_path / "s.jsonl", *records), speed=None) as venue:
        from websockets.asyncio.client import connect

        async with connect(venue.url, max_size=None) as ws:
            assert [await ws.recv() for _ in range(len(texts) + len(blobs))] == [*texts, *blobs]


async def test_a_client_leaving_while_the_venue_waits_for_it_ends_that_connection_at_once(
    no_leaked_tasks: None, tmp_path: Path
) -> None:
    venue = ReplayVenue(write(tmp_path / "s.jsonl", *SCRIPT), client_timeout=60.0)
    async with venue:
        from websockets.asyncio.client import connect

        async with connect(venue.url):
            pass  # leaves without sending the subscribe the recording waits for
        async with asyncio.timeout(5):  # not the 60 s client_timeout
            await venue.stop()
    assert venue.failures == []


@pytest.mark.parametrize(
    ("recorded", "seen"), [(4999, 4999), (1001, 1001), (None, 1005), (1005, 1005), (1004, 1006)]
)
async def test_a_recorded_close_is_replayed_with_its_code_or_as_a_drop_when_unsendable(
    no_leaked_tasks: None, tmp_path: Path, recorded: int | None, seen: int
) -> None:
    path = write(
        tmp_path / "s.jsonl", rec(0.0, "open"), rec(0.1, "close", code=recorded, reason="", by="venue")
    )
    async with ReplayVenue(path) as venue:
        from websockets.asyncio.client import connect

        async with connect(venue.url) as ws:
            async with asyncio.timeout(5):
                await ws.wait_closed()
            assert ws.close_code == seen


def test_virtual_replay_of_sub_microsecond_offsets_terminates_and_delivers_everything(tmp_path: Path) -> None:
    """TestScheduler rounds relative times to microseconds; a replay must still make progress."""
    times = [0.1000004 + i * 0.0000003 for i in range(20)]
    records = [rec(0.1, "open"), *(rec(t, "in", text=data(i + 1)) for i, t in enumerate(times))]
    transport = ReplayTransport(write(tmp_path / "s.jsonl", *records), speed=3.0)
    scheduler = TestScheduler()
    client = WebSocketClient(
        "ws://x.test", protocol=GenericJson(), transport=transport, scheduler=scheduler, ping_interval=None
    )
    got: list[Any] = []
    scheduler.schedule_absolute(1.0000003, lambda *_: client.connect().subscribe(on_error=lambda _e: None))
    scheduler.schedule_absolute(1.0000003, lambda *_: client.watch("trades.BTC").subscribe(got.append))
    scheduler.advance_to(5.0)
    assert [m["seq"] for m in got] == list(range(1, 21))
    assert transport.finished
