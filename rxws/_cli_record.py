"""``rxws record`` and ``rxws replay``: record a venue session to a file, serve it back.

``rxws record URL --protocol P --watch T [--watch T2] -o FILE [--duration S] [--reconnect]``
connects, watches the topics and writes every frame of the session (:mod:`rxws.testing.recorder`)
until ``--duration`` seconds have passed, a signal stops it, or the venue ends the connection.

``rxws replay FILE [--port N] [--speed X | --max]`` serves the recording on 127.0.0.1 with
:class:`rxws.testing.ReplayVenue` until a signal stops it.

The exit status follows :mod:`rxws.cli`: 0 when finished, 1 on an error (one line
``rxws: error: ...``), 2 on a usage error, 128 + the signal number when stopped by a signal.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Sequence
from typing import Any, TextIO

from rxws.exceptions import RxwsError

__all__ = ["COMMANDS", "add_parsers", "command", "run_record", "run_replay"]

COMMANDS = ("record", "replay")
"""The sub-commands this module adds to ``rxws``."""


def add_parsers(sub: Any) -> None:
    """Add ``record`` and ``replay`` to the ``rxws`` sub-command parsers ``sub``."""
    record = sub.add_parser("record", help="record a venue session to a JSON-lines file")
    record.add_argument("url")
    record.add_argument(
        "--protocol", default="generic", help="generic, binance, okx, bybit, deribit, jsonrpc"
    )
    record.add_argument("--watch", action="extend", nargs="+", required=True, metavar="TOPIC")
    record.add_argument("-o", "--output", required=True, metavar="FILE", help="the recording to write")
    record.add_argument(
        "--duration", type=float, default=None, help="seconds to record (default: until stopped)"
    )
    record.add_argument("--reconnect", action="store_true", help="reconnect with the default backoff")
    replay = sub.add_parser("replay", help="serve a recording on 127.0.0.1 as a venue")
    replay.add_argument("file")
    replay.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="2 replays twice as fast (default 1)")
    pace.add_argument("--max", action="store_true", help="as fast as possible")


def command(args: argparse.Namespace) -> Awaitable[int]:
    """The coroutine for a parsed ``record`` or ``replay`` command; bad arguments raise RxwsError."""
    if args.command == "record":
        from rxws.protocols import dialect

        dialect(args.protocol)  # an unknown name is a UsageError listing the known ones
        if args.duration is not None and not args.duration > 0:
            raise RxwsError("--duration must be > 0")
        return run_record(args.url, args.protocol, args.watch, args.output, args.duration, args.reconnect)
    if not args.max and not args.speed > 0:
        raise RxwsError("--speed must be > 0")
    return run_replay(args.file, args.port, None if args.max else args.speed)


async def run_record(
    url: str,
    protocol: str,
    topics: Sequence[str],
    output: str,
    duration: float | None,
    reconnect: bool,
    err: TextIO = sys.stderr,
) -> int:
    """Record a session; returns the exit status (1 when the venue dropped the connection)."""
    from rxws.client import WebSocketClient
    from rxws.events import Disconnected, DisconnectReason, Event
    from rxws.protocols import dialect as by_name
    from rxws.reconnect import ReconnectPolicy
    from rxws.testing import Recorder
    from rxws.transport.websockets import WebsocketsTransport

    dialect = by_name(protocol)
    recorder = Recorder(WebsocketsTransport(), output, protocol=dialect)
    client = WebSocketClient(
        url, protocol=dialect, transport=recorder, reconnect=ReconnectPolicy() if reconnect else None
    )
    ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    messages = 0

    def on_event(event: Event) -> None:
        if reconnect or ended.done() or not isinstance(event, Disconnected):
            return
        if event.reason is not DisconnectReason.USER:
            clean = event.code in (1000, 1001)
            if not clean:
                print(f"rxws: error: connection lost: {event.detail}", file=err, flush=True)
            ended.set_result(0 if clean else 1)

    def count(_message: Any) -> None:
        nonlocal messages
        messages += 1

    client.events.subscribe(on_event)
    try:
        await client.connect()
        client.watch(*topics).subscribe(count)
        print(f"rxws: recording {url} to {output}", file=err, flush=True)
        if duration is None:
            return await ended
        try:
            return await asyncio.wait_for(asyncio.shield(ended), duration)
        except TimeoutError:
            return 0
    finally:
        try:
            await client.close()
        finally:
            recorder.close()
            print(
                f"rxws: recorded {recorder.lines - 1 if recorder.lines else 0} records on "
                f"{recorder.connections} connection(s), {messages} message(s), to {output}",
                file=err,
                flush=True,
            )


async def run_replay(path: str, port: int, speed: float | None, out: TextIO = sys.stdout) -> int:
    """Serve the recording until a signal stops it."""
    from rxws.testing import ReplayVenue

    venue = ReplayVenue(path, speed=speed, port=port)  # a corrupt file fails here, with its line
    async with venue:
        pace = "max speed" if speed is None else f"speed {speed:g}"
        count = len(venue.recording.connections)
        print(
            f"replay venue listening on {venue.url} ({path}: {count} connection(s), {pace}) — Ctrl-C to stop",
            file=out,
            flush=True,
        )
        await asyncio.Event().wait()
    return 0
