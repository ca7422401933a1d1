"""The ``rxws`` command: ``demo``, ``mock-venue`` and ``listen``.

``rxws demo`` is the README's main job: an embedded MockVenue, a client watching two topics with a
live view of state, per-topic rates and events; a correlated request; a burst of requests that the
client's rate limiter paces (``Throttled`` on ``client.rate_limit_events``); a skipped sequence
number and a venue drop, a reconnection the demo's policy approves, and a gap report at the end.

Exit status, the same for every command: 0 when it finished, 1 on an error (one clear line on
stderr), 2 on a usage error, and 128 + the signal number when stopped by a signal (130 for Ctrl-C,
143 for SIGTERM) — after a graceful close. The library itself never prints: it logs under the
``rxws`` logger (``--log-level``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import ssl
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

from rxws import __version__, _cli_record
from rxws._cli_fast import add_loop_options, runner, transport_named
from rxws.client import WebSocketClient
from rxws.core.backoff import ExponentialBackoff
from rxws.core.state import ConnectionState
from rxws.events import Disconnected, DisconnectReason, Event, GapDetected, ReconnectDenied, ReconnectProposed
from rxws.exceptions import ConnectFailed, RxwsError
from rxws.protocols import DIALECTS, GenericJson, dialect
from rxws.ratelimit import Rule, Scope, SlidingWindow, VenueRateLimiter
from rxws.reconnect import ReconnectPolicy
from rxws.testing import MockVenue
from rxws.transport.base import validate_url

__all__ = ["main"]

log = logging.getLogger("rxws.cli")


class _Stopped(Exception):
    """A signal asked the command to stop; ``signum`` tells which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


async def _until_signal(work: Awaitable[int]) -> int:
    """Run ``work``; SIGINT or SIGTERM cancels it (its ``finally`` blocks close gracefully)."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        task.cancel()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop, signum)
            installed.append(signum)
    try:
        return await task
    except asyncio.CancelledError:
        if received:
            raise _Stopped(received[0]) from None
        raise
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


# The demo ---------------------------------------------------------------------------------------------
class _View:
    """The demo's terminal view: event lines scroll; on a terminal a status line stays at the bottom.

    Off a terminal (a pipe, a test), the status is printed as a ``rates`` line once a second.
    """

    def __init__(self, out: TextIO, topics: Sequence[str], live: bool) -> None:
        self.out = out
        self.topics = topics
        self.live = live
        self.t0 = time.monotonic()
        self.state = ConnectionState.DISCONNECTED
        self.counts: Counter[str] = Counter()
        self.tally: Counter[str] = Counter()  # events, rate-limit events, gaps
        self._window: deque[tuple[float, Counter[str]]] = deque([(self.t0, Counter())])

    def line(self, tag: str, text: str) -> None:
        stamp = f"{time.monotonic() - self.t0:6.2f}s  {tag:<9} {text}"
        if self.live:
            self.out.write(f"\r\x1b[2K{stamp}\n{self.status()}")
        else:
            self.out.write(stamp + "\n")
        self.out.flush()

    def rates(self) -> dict[str, float]:
        """Messages per second on each topic over the last second or so."""
        now = time.monotonic()
        self._window.append((now, self.counts.copy()))
        while len(self._window) > 2 and now - self._window[1][0] >= 1.0:
            self._window.popleft()
        then, old = self._window[0]
        span = max(now - then, 1e-3)
        return {t: (self.counts[t] - old[t]) / span for t in self.topics}

    def status(self) -> str:
        rates = "  ".join(f"{t} {r:4.1f}/s" for t, r in self.rates().items())
        tally = self.tally
        return (
            f"[{self.state}] {rates}  | msgs {sum(self.counts.values())}  events {tally['event']}"
            f"  rate-limit {tally['ratelimit']}  gaps {tally['gap']}"
        )

    def refresh(self) -> None:
        if self.live:
            self.out.write(f"\r\x1b[2K{self.status()}")
        else:
            self.line("rates", ", ".join(f"{t} {r:.0f}/s" for t, r in self.rates().items()))
        self.out.flush()

    def finish(self) -> None:
        """Clear the status line; later lines print plainly."""
        if self.live:
            self.live = False
            self.out.write("\r\x1b[2K")
            self.out.flush()


def _describe(event: Event, t0: float = 0.0, *, defaults: bool = False) -> str:
    """``Name(field=value, ...)``; times (``start``/``end``) as seconds since ``t0``."""
    fields = event.model_dump(mode="json", exclude={"at", "kind"}, exclude_defaults=not defaults)
    parts = []
    for key, value in fields.items():
        if key in ("start", "end") and isinstance(value, float):
            parts.append(f"{key}={value - t0:.2f}s")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.3g}")
        else:
            parts.append(f"{key}={value}")
    return f"{type(event).__name__}({', '.join(parts)})"


def _demo_limiter() -> VenueRateLimiter:
    """A small limit so the demo's burst gets paced: 5 frames per second per connection."""
    return VenueRateLimiter(
        name="demo",
        message=[Rule(SlidingWindow(5, 1.0), Scope.CONNECTION, name="5 messages / s / connection")],
    )


async def run_demo(
    duration: float, out: TextIO = sys.stdout, *, live: bool | None = None, transport: str = "websockets"
) -> int:
    """The demo's script, at most about ``duration`` seconds, on ``transport`` (``websockets`` or
    ``picows``); returns the exit status."""
    topics = ("trades.BTC-USD", "book.ETH-USD")
    view = _View(out, topics, out.isatty() if live is None else live)
    gaps: list[GapDetected] = []
    t0 = asyncio.get_running_loop().time()  # the client's clock: its scheduler runs on this loop
    async with MockVenue(rate=20) as venue:
        view.line(
            "venue", f"MockVenue on {venue.url}: GenericJson, 20 messages/s per topic, {transport} client"
        )

        def approve(proposal: ReconnectProposed) -> bool:
            view.line("policy", f"reconnect attempt {proposal.attempt} in {proposal.delay:.2f}s? approved")
            return True

        def on_event(event: Event) -> None:
            view.tally["event"] += 1
            if isinstance(event, GapDetected):
                view.tally["gap"] += 1
                gaps.append(event)
            view.line("event", _describe(event, t0))

        def on_state(state: ConnectionState) -> None:
            view.state = state
            view.line("state", str(state))

        def on_rate_event(event: Event) -> None:
            view.tally["ratelimit"] += 1
            view.line("ratelimit", _describe(event, defaults=True))

        policy = ReconnectPolicy(
            backoff=ExponentialBackoff(initial=0.2, max_delay=2.0, jitter="none"), approve=approve
        )
        client = WebSocketClient(
            venue.url,
            protocol=GenericJson(),
            reconnect=policy,
            rate_limiter=_demo_limiter(),
            ping_interval=None,  # keep the frame count (and the limiter's decisions) readable
            name="demo",
            transport=transport_named(transport),
        )
        client.state.subscribe(on_state)
        client.events.subscribe(on_event)
        client.rate_limit_events.subscribe(on_rate_event)
        start = time.monotonic()
        try:
            await client.connect()
            sub = client.watch(*topics).subscribe(lambda m: view.counts.update((m["topic"],)))
            reply = await client.request("echo", {"hello": "venue"}, timeout=2.0)
            view.line("request", f"echo -> {reply} (matched to its request by id)")
            view.line("burst", "8 requests at once; the limiter allows 5 frames/s, the rest wait")
            burst = asyncio.gather(*(client.request("echo", {"n": n}, timeout=5.0) for n in range(8)))
            burst.add_done_callback(
                lambda f: view.line(
                    "burst",
                    f"all 8 answered after {time.monotonic() - start:.2f}s"
                    if not f.cancelled() and f.exception() is None
                    else f"ended: {f.exception() if not f.cancelled() else 'cancelled'}",
                )
            )
            script: list[tuple[float, str, Callable[[], None]]] = [
                (
                    0.3,
                    "skipping 3 sequence numbers on trades.BTC-USD",
                    lambda: venue.skip_sequence(topics[0], 3),
                ),
                (0.5, "dropping every connection abruptly (no close frame)", venue.drop_all),
            ]
            end = start + duration
            tick = 0.25 if view.live else 1.0
            next_refresh = start + tick
            while (now := time.monotonic()) < end:
                due = [start + script[0][0] * duration] if script else []
                await asyncio.sleep(max(0.0, min(next_refresh, end, *due) - now))
                if time.monotonic() >= next_refresh:
                    view.refresh()
                    next_refresh += tick
                while script and time.monotonic() >= start + script[0][0] * duration:
                    _, what, act = script.pop(0)
                    view.line("venue", what)
                    act()
            sub.dispose()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(burst, 0.5)
        finally:
            await client.close()
            view.finish()
        view.line("messages", ", ".join(f"{t} {view.counts[t]}" for t in topics))
        view.line("gaps", f"{len(gaps)} reported" + (":" if gaps else ""))
        for gap in gaps:
            window = ""
            if gap.start is not None and gap.end is not None:
                window = f", data may be missing from {gap.start - t0:.2f}s to {gap.end - t0:.2f}s"
            view.line("", f"{gap.topic:<15} {gap.gap:<10} seq {gap.last_seq} -> {gap.next_seq}{window}")
        view.line("done", f"rate-limit events {view.tally['ratelimit']}; stats {client.stats.as_dict()}")
    return 0


# mock-venue and listen --------------------------------------------------------------------------------
async def run_mock_venue(port: int, dialect: str, rate: float, out: TextIO = sys.stdout) -> int:
    """Serve the mock venue until a signal stops it."""
    async with MockVenue(port=port, dialect=dialect, rate=rate) as venue:
        print(f"mock venue ({dialect}) listening on {venue.url} — Ctrl-C to stop", file=out, flush=True)
        await asyncio.Event().wait()
    return 0


def _check_topics(topics: Sequence[str]) -> list[str]:
    """``--watch`` topics, checked before any I/O: each a non-empty name without edge spaces."""
    for topic in topics:
        if not topic.strip() or topic != topic.strip():
            raise RxwsError(
                f"--watch: a topic must be a non-empty name without surrounding spaces, got {topic!r}"
            )
    return list(topics)


def _connect_failure(url: str, exc: BaseException) -> str:
    """The one-line reason a connection could not be opened, never an empty one."""
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and text.rstrip().endswith(":"):  # the transport had no words for it
        text = f"{text.rstrip()} {type(cause).__name__}"
        if isinstance(cause, ConnectionResetError):
            text += " (the server reset the connection)"
    tls_handshake = isinstance(cause, ssl.SSLError | ConnectionResetError | EOFError)
    if url.startswith("wss://") and tls_handshake:
        text += "; the TLS handshake failed: is the server plain ws:// (no TLS) on that port?"
    return text


_CLOSE_CODES = {
    1000: "normal closure",
    1001: "going away",
    1008: "policy violation",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
}


def _ended(event: Disconnected) -> str:
    """Why the venue side ended the connection, in one line."""
    if event.reason is DisconnectReason.REMOTE_CLOSED:
        text = f"the venue closed the connection: code {event.code}"
        meaning = _CLOSE_CODES.get(event.code or 0)
        if meaning:
            text += f" ({meaning})"
        if event.detail and str(event.code) not in event.detail:  # a reason of the venue's own
            text += f": {event.detail}"
        return text
    code = f", code {event.code}" if event.code is not None else ""
    return f"connection lost ({event.reason}{code})" + (f": {event.detail}" if event.detail else "")


async def run_listen(
    url: str,
    protocol: str,
    topics: Sequence[str],
    reconnect: bool,
    out: TextIO = sys.stdout,
    *,
    subscribe_timeout: float = 10.0,
    transport: str = "websockets",
) -> int:
    """Print the messages of ``topics`` as JSON lines on ``out``, events as JSON lines on stderr.

    The command runs until a signal stops it (status 128 + signal) or the reader of ``out`` goes
    away (status 0). It ends with one ``rxws: error:`` line on stderr and status 1 when a topic
    cannot be had (the venue refused it, or did not acknowledge it within ``subscribe_timeout``:
    e.g. a dialect the venue does not speak), when the venue ends the connection without
    ``reconnect`` (whatever the close code: a listener that stops listening has failed), or when a
    reconnection is denied. Arguments are checked before any I/O.
    """
    venue_dialect = dialect(protocol)
    topics = _check_topics(topics)
    if not subscribe_timeout > 0:
        raise RxwsError(f"--subscribe-timeout must be > 0, got {subscribe_timeout!r}")
    client = WebSocketClient(
        url,
        protocol=venue_dialect,
        reconnect=ReconnectPolicy() if reconnect else None,
        subscribe_timeout=subscribe_timeout,
        transport=transport_named(transport),
    )
    ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    connected = False

    failed: list[str] = []

    def fail(message: str) -> None:
        if not ended.done():
            failed.append(message)
            print(f"rxws: error: {message}", file=sys.stderr, flush=True)
            ended.set_result(1)

    def on_event(event: Event) -> None:
        if not connected or failed:  # a failed connect is reported once, as the error,
            return  # and an error line is the last line
        print(event.model_dump_json(), file=sys.stderr, flush=True)
        if isinstance(event, ReconnectDenied):
            fail(f"reconnection denied after attempt {event.attempt}")
        elif isinstance(event, Disconnected) and event.reason is not DisconnectReason.USER and not reconnect:
            fail(_ended(event))

    def emit(message: Any) -> None:
        if out.closed:  # the reader went away earlier; messages still in flight have nowhere to go
            return
        try:
            print(json.dumps(message, separators=(",", ":"), default=str), file=out, flush=True)
        except BrokenPipeError:  # the reader went away (``| head``): stop quietly, like a shell tool
            with contextlib.suppress(OSError):
                out.close()
            if not ended.done():
                ended.set_result(0)

    client.events.subscribe(on_event)
    try:
        try:
            await client.connect()
        except ConnectFailed as exc:
            raise RxwsError(_connect_failure(url, exc)) from exc
        connected = True
        hint = f" (does the venue speak the {protocol!r} dialect? see --protocol)"
        client.watch(*topics).subscribe(
            on_next=emit, on_error=lambda exc: fail(f"subscribe failed: {exc}{hint}")
        )
        return await ended
    finally:
        await client.close()


# Entry point ------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rxws", description="Reactive WebSocket client for trading venues.")
    parser.add_argument("--version", action="version", version=f"rxws {__version__}")
    parser.add_argument("--log-level", default="WARNING", help="level of the rxws logger (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a live run against the embedded mock venue")
    demo.add_argument("--duration", type=float, default=8.0, help="seconds to run (default 8)")
    add_loop_options(demo)
    mock = sub.add_parser("mock-venue", help="serve the mock venue for other programs")
    mock.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1, 0-65535 (default 0: a free one)"
    )
    mock.add_argument("--dialect", default="generic", help="generic, binance, okx, bybit, deribit, jsonrpc")
    mock.add_argument("--rate", type=float, default=10.0, help="messages per second per topic")
    listen = sub.add_parser("listen", help="print a venue's messages as JSON lines (events on stderr)")
    listen.add_argument("url")
    listen.add_argument("--protocol", default="generic", help=", ".join(DIALECTS))
    listen.add_argument("--watch", nargs="+", required=True, metavar="TOPIC")
    listen.add_argument("--reconnect", action="store_true", help="reconnect with the default backoff")
    listen.add_argument(
        "--subscribe-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="fail when a subscribe is not acknowledged within this (default 10)",
    )
    add_loop_options(listen)
    _cli_record.add_parsers(sub)
    return parser


def _command(args: argparse.Namespace) -> Awaitable[int]:
    if args.command in _cli_record.COMMANDS:
        return _cli_record.command(args)
    if args.command == "demo":
        if not args.duration > 0:
            raise RxwsError("--duration must be > 0")
        transport_named(args.transport)  # a missing extra fails here, before the loop starts
        return run_demo(args.duration, transport=args.transport)
    if args.command == "mock-venue":
        from rxws.testing.dialects import server_dialect

        server_dialect(args.dialect)  # an unknown name fails here, with the list
        if not 0 <= args.port <= 65535:
            raise RxwsError(f"--port must be 0-65535 (0: a free port), got {args.port}")
        if not args.rate >= 0:
            raise RxwsError(f"--rate must be >= 0, got {args.rate}")
        return run_mock_venue(args.port, args.dialect, args.rate)
    # listen: every argument is checked here, before the loop starts and before any I/O
    dialect(args.protocol)  # an unknown name is a UsageError listing the known ones
    validate_url(args.url)
    _check_topics(args.watch)
    if not args.subscribe_timeout > 0:
        raise RxwsError(f"--subscribe-timeout must be > 0, got {args.subscribe_timeout}")
    transport_named(args.transport)
    return run_listen(
        args.url,
        args.protocol,
        args.watch,
        args.reconnect,
        subscribe_timeout=args.subscribe_timeout,
        transport=args.transport,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxws`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"rxws: error: unknown log level {args.log_level!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run = runner(getattr(args, "uvloop", False))
        return run(_until_signal(_command(args)))
    except _Stopped as stopped:
        print(f"rxws: stopped by {stopped} after a graceful close", file=sys.stderr)
        return 128 + stopped.signum
    except KeyboardInterrupt:  # a platform without loop signal handlers
        return 130
    except (RxwsError, ValueError, OSError) as exc:
        print(f"rxws: error: {exc}", file=sys.stderr)
        return 1
