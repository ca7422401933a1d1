"""Chaos soak: a request + stream workload through a FaultProxy that injects random faults.

A :class:`~rxws.WebSocketClient` with a reconnect policy that approves every proposal talks to a
:class:`~rxws.testing.MockVenue` through a :class:`~rxws.testing.FaultProxy`. For the run's
duration it watches a few topics (the venue numbers each topic's messages with ``seq``) and keeps
a stream of requests in flight (``echo``, ``sleep``, ``fail``), while a seeded injector applies
random faults: delay + jitter, a bandwidth throttle, stop reading for a while, a blackhole for a
while (half-open, so the heartbeat times out), a cut after N bytes (FIN or RST), a reset of every
connection. Then the faults stop, the client recovers, publishing pauses, a last "fence" message
per topic is published (it reveals any number lost just before it), the tail is delivered, and
everything is closed. The invariants checked at the end:

(a) every request ended — with a reply (an ``echo`` reply equal to its params) or a typed
    ``RxwsError`` (``RequestTimeout``, ``ConnectionLost``, ``VenueError``, ...); none was still
    pending ``request_timeout + 5`` seconds after it was sent, none raised anything else;
(b) every message the venue numbered was delivered to the watcher exactly once, or lies inside a
    reported ``GapDetected`` window of its topic (``last_seq < seq < next_seq``; sequence and
    disconnect gaps alike); nothing was delivered twice;
(c) after close, no asyncio task and no file descriptor is left over what there was before;
(d) RSS is bounded: the peak (sampled every second) stays within ``rss_limit_mb`` of the RSS
    measured after the warm-up (the first 20 % of the run, at most 10 s), and so does the RSS at
    the end;
(e) the client recovered: once the faults stopped it was connected again, every topic flowed and
    a probe request was answered;
(f) a half-open connection is detected: after each blackhole, the client dropped the connection
    (heartbeat timeout, or a failed open) within ``half_open_deadline`` seconds.

Faults come in a seeded order, every kind once per round, so a short run covers them all.

A connection black-holed both ways is half-open for the venue too: MockVenue (no pings of its own
here) keeps it subscribed and keeps numbering messages for it, so the live connection sees
sequence gaps until the stale one ends; "venue-side connections" reports how long that lasted.

Run it with ``make soak`` (``MINUTES ?= 10``) or ``python benchmarks/soak.py --minutes 2
--seed 7``; it prints the counts and exits 1 when an invariant fails. A 30-second run is part of
the test suite (``tests/integration/test_soak.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from rxws import (
    ConnectionLost,
    ConnectionState,
    ExponentialBackoff,
    ReconnectPolicy,
    RequestTimeout,
    RxwsError,
    WebSocketClient,
)
from rxws.events import Disconnected, Event, GapDetected, Reconnected
from rxws.exceptions import NotConnected
from rxws.protocols import GenericJson
from rxws.testing import FaultProxy, MockVenue

FAULT_KINDS = ("delay", "bandwidth", "stop_reading", "blackhole", "cut_fin", "cut_rst", "reset")


@dataclass
class SoakConfig:
    """What to run: duration, seed, workload and client settings, and the RSS bound."""

    seconds: float = 600.0
    seed: int = 1
    topics: int = 3
    rate: float = 40.0  # data messages per second per topic
    request_interval: float = 0.02
    max_in_flight: int = 16
    request_timeout: float = 2.0
    ping_interval: float = 0.5
    ping_timeout: float = 1.0
    settle_timeout: float = 15.0
    half_open_deadline: float = 5.0  # a black-holed connection must be dropped within this
    rss_limit_mb: float = 64.0


@dataclass
class SoakReport:
    """The counts of one run and the verdict on each invariant."""

    faults: Counter[str] = field(default_factory=Counter)
    proxy: dict[str, Any] = field(default_factory=dict)
    venue_sent: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    covered: int = 0
    missing: dict[str, list[int]] = field(default_factory=dict)
    requests_sent: int = 0
    replied: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    other_errors: Counter[str] = field(default_factory=Counter)
    echo_mismatches: int = 0
    hung: int = 0
    slowest_request: float = 0.0
    gaps: Counter[str] = field(default_factory=Counter)
    disconnects: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    events: Counter[str] = field(default_factory=Counter)
    watch_errors: list[str] = field(default_factory=list)
    rss_mb: dict[str, float] = field(default_factory=dict)
    tasks: tuple[int, int] = (0, 0)
    fds: tuple[int, int] = (0, 0)
    leaked_tasks: list[str] = field(default_factory=list)
    recovered: bool = False
    recovery: str = ""
    half_open: tuple[int, int] = (0, 0)  # black-holed connections (detected, not detected)
    venue_connections: dict[str, float] = field(default_factory=dict)  # max open, seconds with > 1
    invariants: dict[str, tuple[bool, str]] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        """The invariants that failed, each with its reason."""
        return [f"{name}: {why}" for name, (ok, why) in self.invariants.items() if not ok]

    def render(self) -> str:
        """The counts and verdicts as text, one item a line."""
        sent = sum(self.venue_sent.values())
        lines = [
            f"faults injected: {dict(sorted(self.faults.items()))}",
            f"proxy: {self.proxy}",
            f"venue messages sent: {sent} {self.venue_sent}",
            f"delivered: {self.delivered}  covered by gaps (not delivered): {self.covered}  "
            f"missing: {sum(len(v) for v in self.missing.values())}  duplicates: {self.duplicates}  "
            f"out of order: {self.out_of_order}",
            f"requests: sent {self.requests_sent}  replied {self.replied}  failed {dict(self.failed)}  "
            f"other exceptions {dict(self.other_errors)}  echo mismatches {self.echo_mismatches}  "
            f"hung {self.hung}  slowest {self.slowest_request:.2f}s",
            f"gaps reported: {dict(self.gaps)}",
            f"disconnects: {dict(self.disconnects)}  reconnects: {self.reconnects}  "
            f"half-open detected/undetected: {self.half_open}",
            f"events: {dict(sorted(self.events.items()))}",
            f"RSS MiB: {self.rss_mb}",
            f"tasks before/after: {self.tasks}  fds before/after: {self.fds}",
            f"venue-side connections: {self.venue_connections}",
        ]
        if self.watch_errors:
            lines.append(f"watch errors: {self.watch_errors[:5]}")
        if self.missing:
            lines.append(f"missing (first 10 per topic): { {t: s[:10] for t, s in self.missing.items()} }")
        if self.leaked_tasks:
            lines.append(f"leaked tasks: {self.leaked_tasks[:5]}")
        for name, (ok, why) in self.invariants.items():
            lines.append(f"invariant {name}: {'PASS' if ok else 'FAIL'} — {why}")
        return "\n".join(lines)


def rss_mb() -> float:
    """This process's resident set size, MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fd_count() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def _other_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


class _Stream:
    """What the watcher received on one topic: a count per sequence number."""

    def __init__(self) -> None:
        self.counts = bytearray(1024)
        self.last = 0
        self.out_of_order = 0

    def add(self, seq: int) -> None:
        if seq >= len(self.counts):
            self.counts.extend(bytearray(max(seq + 1 - len(self.counts), len(self.counts))))
        if self.counts[seq] < 255:
            self.counts[seq] += 1
        if seq < self.last:
            self.out_of_order += 1
        self.last = max(self.last, seq)


class Soak:
    """One run: the venue, the proxy, the client, the workload, the injector and the checks."""

    def __init__(self, config: SoakConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.report = SoakReport()
        self.topics = [f"soak.{chr(65 + i)}" for i in range(config.topics)]
        self.streams = {t: _Stream() for t in self.topics}
        self.windows: dict[str, list[tuple[int, int]]] = {t: [] for t in self.topics}
        self.in_flight: dict[asyncio.Task[None], float] = {}
        self.loop = asyncio.get_running_loop()

    # Observers ------------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        r = self.report
        r.events[getattr(event, "kind", type(event).__name__)] += 1
        if isinstance(event, GapDetected):
            r.gaps[event.gap] += 1
            if event.topic in self.windows and event.next_seq is not None:
                self.windows[event.topic].append((event.last_seq or 0, event.next_seq))
        elif isinstance(event, Disconnected):
            r.disconnects[str(event.reason)] += 1
        elif isinstance(event, Reconnected):
            r.reconnects += 1

    def on_message(self, message: Any) -> None:
        self.streams[message["topic"]].add(int(message["seq"]))

    # Workload -------------------------------------------------------------------------------------
    async def one_request(self, client: WebSocketClient) -> None:
        r = self.report
        roll = self.rng.random()
        if roll < 0.7:
            method, params = "echo", {"n": r.requests_sent, "pad": "x" * self.rng.randrange(0, 200)}
        elif roll < 0.9:
            method, params = "sleep", {"seconds": round(self.rng.uniform(0.0, 0.5), 3)}
        else:
            method, params = "fail", {"code": 4000 + self.rng.randrange(10), "message": "soak"}
        r.requests_sent += 1
        started = self.loop.time()
        try:
            result = await client.request(method, params, timeout=self.cfg.request_timeout)
        except RxwsError as exc:
            r.failed[type(exc).__name__] += 1
        except Exception as exc:  # counted: anything untyped breaks invariant (a)
            r.other_errors[type(exc).__name__] += 1
        else:
            r.replied += 1
            if method == "echo" and result != params:
                r.echo_mismatches += 1
        r.slowest_request = max(r.slowest_request, self.loop.time() - started)

    async def requests(self, client: WebSocketClient, until: float) -> None:
        while self.loop.time() < until:
            if len(self.in_flight) < self.cfg.max_in_flight:
                task = self.loop.create_task(self.one_request(client))
                self.in_flight[task] = self.loop.time()
                task.add_done_callback(lambda t: self.in_flight.pop(t, None))
            await asyncio.sleep(self.cfg.request_interval)

    async def inject(self, proxy: FaultProxy, until: float) -> None:
        """Faults in a seeded order: every kind once per round of ``len(FAULT_KINDS)``, shuffled."""
        rng = self.rng
        order: list[str] = []
        with contextlib.suppress(TimeoutError):  # the run ends even in the middle of a fault
            async with asyncio.timeout_at(until):
                while self.loop.time() < until:
                    await asyncio.sleep(rng.uniform(0.5, 2.0))
                    if not order:
                        order = list(FAULT_KINDS)
                        rng.shuffle(order)
                    kind = order.pop()
                    direction: Literal["up", "down", "both"] = rng.choice(("up", "down", "both"))
                    self.report.faults[kind] += 1
                    if kind == "reset":
                        proxy.reset_all()
                        continue
                    if kind == "delay":
                        proxy.set(direction, delay=rng.uniform(0.005, 0.2), jitter=rng.uniform(0.0, 0.1))
                        hold = rng.uniform(1.0, 4.0)
                    elif kind == "bandwidth":
                        proxy.set(direction, bandwidth=rng.uniform(2_000, 50_000))
                        hold = rng.uniform(1.0, 3.0)
                    elif kind == "stop_reading":
                        proxy.set(direction, stop_reading=True)
                        hold = rng.uniform(0.2, 2.5)
                    elif kind == "blackhole":
                        drops = sum(self.report.disconnects.values())
                        proxy.set(direction, blackhole=True)
                        await asyncio.sleep(self.cfg.half_open_deadline)  # the heartbeat must see it by now
                        detected, undetected = self.report.half_open
                        if sum(self.report.disconnects.values()) > drops:
                            self.report.half_open = (detected + 1, undetected)
                        else:
                            self.report.half_open = (detected, undetected + 1)
                        hold = 0.0
                    else:
                        cut: Literal["fin", "rst"] = "fin" if kind == "cut_fin" else "rst"
                        done = proxy.stats.faults[kind]
                        proxy.set(direction, cut_after=rng.randrange(0, 20_000), cut=cut)
                        with contextlib.suppress(TimeoutError):  # cut one connection, then stop cutting
                            async with asyncio.timeout(3.0):
                                while proxy.stats.faults[kind] == done:
                                    await asyncio.sleep(0.01)
                        hold = 0.0
                    await asyncio.sleep(hold)
                    proxy.clear()

    async def sample_venue(self, venue: MockVenue) -> None:
        """How many connections the venue holds (a stale one still subscribed doubles the numbering)."""
        stats = self.report.venue_connections
        stats.update(max_open=0, seconds_over_one=0.0)
        while True:
            open_now = len(venue.connections)
            stats["max_open"] = max(stats["max_open"], open_now)
            if open_now > 1:
                stats["seconds_over_one"] += 0.25
            await asyncio.sleep(0.25)

    async def sample_rss(self, warm_at: float) -> None:
        rss = self.report.rss_mb
        while True:
            now_rss = rss_mb()
            rss["peak"] = max(rss.get("peak", 0.0), now_rss)
            if "warm" not in rss and self.loop.time() >= warm_at:
                rss["warm"] = now_rss
                rss["peak"] = now_rss  # the peak that counts is the one after the warm-up
            await asyncio.sleep(1.0)

    # The run --------------------------------------------------------------------------------------
    async def run(self) -> SoakReport:
        cfg, r = self.cfg, self.report
        tasks_before = _other_tasks()
        fds_before = fd_count()
        r.rss_mb["start"] = round(rss_mb(), 1)
        start = self.loop.time()
        until = start + cfg.seconds
        sampler = self.loop.create_task(self.sample_rss(start + min(10.0, 0.2 * cfg.seconds)))
        async with (
            MockVenue(rate=cfg.rate, record=False) as venue,
            FaultProxy(venue.url, seed=cfg.seed) as proxy,
        ):
            backoff = ExponentialBackoff(0.05, 2.0, 1.0, jitter="full", seed=cfg.seed)
            client = WebSocketClient(
                proxy.url,
                protocol=GenericJson(),
                reconnect=ReconnectPolicy(backoff=backoff, approve=lambda _p: True),
                request_timeout=cfg.request_timeout,
                subscribe_timeout=cfg.request_timeout,
                open_timeout=2.0,
                close_timeout=1.0,
                ping_interval=cfg.ping_interval,
                ping_timeout=cfg.ping_timeout,
            )
            client.events.subscribe(self.on_event)
            venue_sampler = self.loop.create_task(self.sample_venue(venue))
            await client.connect()
            for topic in self.topics:
                client.watch(topic).subscribe(self.on_message, lambda e: r.watch_errors.append(repr(e)))
            workload = self.loop.create_task(self.requests(client, until))
            injector = self.loop.create_task(self.inject(proxy, until))
            await asyncio.gather(workload, injector)
            proxy.clear()
            r.recovered, r.recovery = await self.settle(client, venue)
            venue_sampler.cancel()
            await asyncio.gather(venue_sampler, return_exceptions=True)
            await self.finish_requests()
            await client.close()
            r.proxy = {
                "connections": proxy.stats.connections,
                "bytes_up": proxy.stats.bytes_up,
                "bytes_down": proxy.stats.bytes_down,
                "swallowed_up": proxy.stats.swallowed_up,
                "swallowed_down": proxy.stats.swallowed_down,
                "faults": dict(proxy.stats.faults),
            }
            r.venue_sent = {t: venue.core.seqs.get(t, 0) for t in self.topics}
        r.rss_mb["end"] = round(rss_mb(), 1)
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        r.rss_mb = {k: round(v, 1) for k, v in r.rss_mb.items()}
        await self.settle_leaks(tasks_before, fds_before)
        self.check()
        return r

    async def settle(self, client: WebSocketClient, venue: MockVenue) -> tuple[bool, str]:
        """Faults are off: wait until the client is connected and every topic flows again, check
        that a request is answered, then pause publishing and wait for the tail."""
        marks = {t: venue.core.seqs.get(t, 0) for t in self.topics}
        probe = {"probe": True}
        retried: list[str] = []
        try:
            async with asyncio.timeout(self.cfg.settle_timeout):
                while True:
                    stage = "connected with every topic flowing"
                    while not (
                        client.state_value is ConnectionState.CONNECTED
                        and all(self.streams[t].last > marks[t] for t in self.topics)
                    ):
                        await asyncio.sleep(0.05)
                    stage = f"a probe request answered (failed before: {retried})"
                    try:
                        reply = await client.request("echo", probe, timeout=self.cfg.request_timeout)
                    except (ConnectionLost, RequestTimeout, NotConnected) as exc:
                        # The last fault may have left this connection half-open: the heartbeat
                        # must replace it, and a probe on the next connection must be answered.
                        retried.append(type(exc).__name__)
                        await asyncio.sleep(0.05)
                        continue
                    except RxwsError as exc:
                        return False, f"probe request failed after recovery: {type(exc).__name__}: {exc}"
                    if reply != probe:
                        return False, f"probe request got {reply!r}"
                    break
                stage = "the tail delivered"
                venue.pause_publishing()
                await asyncio.sleep(2.0 / self.cfg.rate)  # a publish round already under way ends
                # A message the venue numbered but sent on a connection that was already dead is
                # revealed only by the next one: a fence message per topic closes the account.
                for topic in self.topics:
                    await venue.publish(topic, {"fence": True})
                fences = {t: venue.core.seqs.get(t, 0) for t in self.topics}
                while not all(self.streams[t].last >= fences[t] for t in self.topics):
                    await asyncio.sleep(0.05)
        except TimeoutError:
            return False, f"not {stage} within {self.cfg.settle_timeout:g}s after the faults stopped"
        return True, (
            "connected, every topic flowing, a probe request answered "
            f"(after {len(retried)} failed on a dying connection), the tail delivered"
        )

    async def finish_requests(self) -> None:
        """Give each request until ``request_timeout + 5`` s after it was sent; cancel the rest."""
        deadline = self.cfg.request_timeout + 5.0
        while self.in_flight:
            oldest = min(self.in_flight.values())
            wait = oldest + deadline - self.loop.time()
            if wait <= 0:
                break
            await asyncio.wait(list(self.in_flight), timeout=wait)
        self.report.hung = len(self.in_flight)
        for task in list(self.in_flight):
            task.cancel()
        await asyncio.gather(*self.in_flight, return_exceptions=True)

    async def settle_leaks(self, tasks_before: set[asyncio.Task[Any]], fds_before: int) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                while (_other_tasks() - tasks_before) or fd_count() > fds_before:
                    await asyncio.sleep(0.05)
        leaked = _other_tasks() - tasks_before
        self.report.leaked_tasks = [repr(t) for t in leaked]
        self.report.tasks = (len(tasks_before), len(tasks_before) + len(leaked))
        self.report.fds = (fds_before, fd_count())

    # Invariants -----------------------------------------------------------------------------------
    def check(self) -> None:
        r, cfg = self.report, self.cfg
        ended = r.replied + sum(r.failed.values()) + sum(r.other_errors.values())
        a_ok = r.hung == 0 and not r.other_errors and r.echo_mismatches == 0 and ended == r.requests_sent
        r.invariants["a_requests_end"] = (
            a_ok,
            f"{r.requests_sent} sent, {ended} ended, {r.hung} hung, untyped {dict(r.other_errors)}, "
            f"{r.echo_mismatches} echo mismatches",
        )
        for topic in self.topics:
            stream, sent = self.streams[topic], r.venue_sent[topic]
            covered = bytearray(sent + 1)
            for last, nxt in self.windows[topic]:
                for seq in range(max(last + 1, 1), min(nxt, sent + 1)):
                    covered[seq] = 1
            counts = stream.counts
            for seq in range(1, sent + 1):
                n = counts[seq] if seq < len(counts) else 0
                if n == 1:
                    r.delivered += 1
                elif n > 1:
                    r.delivered += 1
                    r.duplicates += n - 1
                elif covered[seq]:
                    r.covered += 1
                else:
                    r.missing.setdefault(topic, []).append(seq)
            beyond = sum(counts[sent + 1 :])
            r.duplicates += beyond  # a number the venue never sent cannot be delivered
            r.out_of_order += stream.out_of_order
        missing = sum(len(v) for v in r.missing.values())
        r.invariants["b_messages_once_or_gap"] = (
            missing == 0 and r.duplicates == 0 and not r.watch_errors,
            f"{r.delivered} delivered once, {r.covered} inside gap windows, {missing} missing, "
            f"{r.duplicates} duplicates, {len(r.watch_errors)} watch errors",
        )
        r.invariants["c_no_leaks"] = (
            not r.leaked_tasks and r.fds[1] <= r.fds[0],
            f"tasks {r.tasks[0]} -> {r.tasks[1]}, fds {r.fds[0]} -> {r.fds[1]}",
        )
        warm = r.rss_mb.get("warm", r.rss_mb["start"])
        peak, end = r.rss_mb.get("peak", warm), r.rss_mb["end"]
        r.invariants["d_rss_bounded"] = (
            peak - warm <= cfg.rss_limit_mb and end - warm <= cfg.rss_limit_mb,
            f"after warm-up {warm} MiB, peak {peak}, end {end}; limit +{cfg.rss_limit_mb:g} MiB",
        )
        r.invariants["e_recovered"] = (r.recovered, r.recovery)
        detected, undetected = r.half_open
        r.invariants["f_half_open_detected"] = (
            undetected == 0,
            f"{detected} of {detected + undetected} black-holed connections dropped within "
            f"{cfg.half_open_deadline:g}s (ping_interval {cfg.ping_interval:g}s, ping_timeout {cfg.ping_timeout:g}s)",
        )


async def run_soak(config: SoakConfig) -> SoakReport:
    """Run one soak; the report says which invariants held."""
    return await Soak(config).run()


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--minutes`` (or ``--seconds``), ``--seed``; exit 1 when an invariant fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=None, help="overrides --minutes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rss-limit-mb", type=float, default=64.0)
    parser.add_argument("--ping-interval", type=float, default=0.5)
    parser.add_argument("--ping-timeout", type=float, default=1.0)
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60.0
    config = SoakConfig(
        seconds=seconds,
        seed=args.seed,
        rss_limit_mb=args.rss_limit_mb,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
    )
    started = time.perf_counter()
    report = asyncio.run(run_soak(config))
    print(f"soak: {seconds:g}s of faults, seed {args.seed}, wall {time.perf_counter() - started:.1f}s")
    print(report.render())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
