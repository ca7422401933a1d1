"""ConnectionPool: more topics than one connection may carry, spread over several connections.

Venues cap the topics one connection carries (Binance 1024 streams, Bitfinex 25 channels), or the
characters of their names (Bybit: 21,000 in ``args``, the protocol's ``max_chars_per_connection``,
each topic costing ``protocol.topic_chars(topic)``). A
:class:`ConnectionPool` holds as many :class:`~rxws.client.WebSocketClient` connections as its
topics need: each topic lives on exactly one connection, a new topic goes to the first connection
with room, and a new connection is opened only when all are full — through the shared rate
limiter's CONNECT budget, like any connection. The host sees one set of observables::

    async with ConnectionPool(url, protocol=Binance(), rate_limiter=presets.binance_spot()) as pool:
        pool.watch(*three_thousand_streams).subscribe(on_tick)   # 3 connections of <= 1024
        pool.events.subscribe(print)                             # every connection's events
        pool.states.subscribe(print)                             # (connection name, state)

Disposing a topic's last watcher frees its slot on its connection for the next new topic.
Connections are kept open once opened (an emptied one is reused first); ``close()`` closes them all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pydantic import BaseModel
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable

from rxws._command import CommandResult
from rxws._display import pool_html, pool_text
from rxws._topics import MergedTopicObserver, unique_topics
from rxws.client import WebSocketClient
from rxws.core.state import ConnectionState
from rxws.events import Event
from rxws.exceptions import SubscriptionLimitExceeded, UsageError
from rxws.protocols.base import VenueProtocol
from rxws.ratelimit.pairing import check_pairing
from rxws.ratelimit.venue import WebSocketRateLimiter
from rxws.transport.base import validate_url

__all__ = ["ClientFactory", "ConnectionPool"]

ClientFactory = Callable[..., WebSocketClient]
"""Builds one pooled connection: called like ``WebSocketClient(url, protocol=..., rate_limiter=...,
name=..., **client_kwargs)``."""


class ConnectionPool:
    """Several connections to one venue, merged into one set of observables.

    Args:
        url: the venue's ``ws://`` or ``wss://`` URL, for every connection.
        protocol: the venue dialect, shared by the connections.
        max_topics_per_connection: topics per connection; by default the protocol's
            ``max_topics_per_connection`` (None there too: one connection carries everything).
            It may be lower than the protocol's cap, never higher.
        max_connections: the most connections the pool opens (None: no limit); a watch that
            needs more errors with :class:`~rxws.exceptions.SubscriptionLimitExceeded`.
        rate_limiter: one limiter shared by every connection (connects, frames, subscriptions).
        client_factory: builds each connection (``WebSocketClient`` by default), called with
            ``url`` and the keyword arguments a ``WebSocketClient`` takes.
        name: prefix of the connections' names (``name[0]``, ``name[1]``, ...); the URL by default.
        redundancy: 2 makes every connection of the pool a redundant pair (a twin on the same
            topics, merged: see ``WebSocketClient(redundancy=)``): sharding and redundancy
            combined. Each twin counts against the shared limiter's connect and subscription
            budgets like any connection.
        **client_kwargs: passed to every connection (``transport``, ``scheduler``, ``reconnect``,
            timeouts, ...).
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: VenueProtocol,
        # Limits
        max_topics_per_connection: int | None = None,
        max_connections: int | None = None,
        rate_limiter: WebSocketRateLimiter | None = None,
        # Construction
        client_factory: ClientFactory | None = None,
        name: str | None = None,
        # Redundancy: each shard held by two connections, merged (see WebSocketClient)
        redundancy: int = 1,
        **client_kwargs: Any,
    ) -> None:
        if not isinstance(protocol, VenueProtocol):
            raise UsageError(f"protocol must be a VenueProtocol instance, got {protocol!r}")
        venue_cap = protocol.max_topics_per_connection
        cap = venue_cap if max_topics_per_connection is None else max_topics_per_connection
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise UsageError(f"max_topics_per_connection must be an int >= 1, got {cap!r}")
        if cap is not None and venue_cap is not None and cap > venue_cap:
            raise UsageError(f"max_topics_per_connection={cap} is over the venue's cap of {venue_cap}")
        if max_connections is not None and max_connections < 1:
            raise UsageError(f"max_connections must be >= 1, got {max_connections!r}")
        self.url = validate_url(url)
        self.protocol = protocol
        self.name = name or url
        self.max_topics_per_connection = cap
        self.max_connections = max_connections
        check_pairing(protocol, rate_limiter)  # before any connection exists
        self._limiter = rate_limiter
        self._factory: ClientFactory = client_factory or WebSocketClient
        if redundancy not in (1, 2):
            raise UsageError(f"redundancy must be 1 or 2, got {redundancy!r}")
        self._client_kwargs = (
            client_kwargs if redundancy == 1 else {**client_kwargs, "redundancy": redundancy}
        )
        self._lock = threading.RLock()
        self._clients: list[WebSocketClient] = []
        self._load: list[int] = []  # topics homed on each connection
        self._chars_cap: int | None = getattr(protocol, "max_chars_per_connection", None)
        self._chars: list[int] = []  # characters of the topics homed on each connection
        self._home: dict[str, int] = {}  # topic -> its connection's index
        self._refs: dict[str, int] = {}  # topic -> watchers through this pool
        self._connect_new = False  # connect() was called: open new connections at once
        self._closed = False
        self._close_result: CommandResult[None] | None = None
        self._feeds: list[Callable[[WebSocketClient | None], None]] = []  # merged streams' listeners

    # Observables ----------------------------------------------------------------------------------
    @property
    def events(self) -> Observable[Event]:
        """Every connection's events, merged (see ``states`` for which connection is which)."""
        return self._merged(_events_of)

    @property
    def messages(self) -> Observable[Any]:
        """Every decoded inbound message of every connection."""
        return self._merged(_messages_of)

    @property
    def states(self) -> Observable[tuple[str, ConnectionState]]:
        """``(connection name, state)`` for each connection, replaying each one's current state."""
        return self._merged(_named_states)

    def _merged(self, pick: Callable[[WebSocketClient], Observable[Any]]) -> Observable[Any]:
        """``pick(client)`` of every connection, those opened later included; completes once the
        pool is closed (every connection's streams have completed by then)."""

        def subscribe(
            observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            group = CompositeDisposable()

            def add(client: WebSocketClient | None) -> None:
                if client is None:
                    observer.on_completed()
                else:
                    group.add(pick(client).subscribe(on_next=observer.on_next, on_error=observer.on_error))

            with self._lock:
                clients = list(self._clients)
                closed = self._close_result is not None and self._close_result.done
                if not closed:
                    self._feeds.append(add)
            for client in clients:
                add(client)
            if closed:
                observer.on_completed()

            def dispose() -> None:
                with self._lock:
                    if add in self._feeds:
                        self._feeds.remove(add)
                group.dispose()

            return Disposable(dispose)

        return Observable(subscribe)

    @property
    def state_values(self) -> dict[str, ConnectionState]:
        """Each connection's current state, by name."""
        with self._lock:
            return {c.name: c.state_value for c in self._clients}

    @property
    def clients(self) -> tuple[WebSocketClient, ...]:
        """The connections, in the order they were opened."""
        with self._lock:
            return tuple(self._clients)

    @property
    def topics(self) -> list[str]:
        """The topics watched through the pool."""
        with self._lock:
            return list(self._home)

    def loads(self) -> list[int]:
        """How many topics each connection carries (its share of the cap)."""
        with self._lock:
            return list(self._load)

    def connection_of(self, topic: str) -> WebSocketClient | None:
        """The connection carrying ``topic``, or None when the pool does not watch it."""
        with self._lock:
            index = self._home.get(topic)
            return None if index is None else self._clients[index]

    # Commands -------------------------------------------------------------------------------------
    def connect(self) -> CommandResult[None]:
        """Connect every connection (opening the first if there is none); connections opened
        later connect at once. Completes when all are CONNECTED; errors with the first failure."""
        with self._lock:
            if self._closed:
                failed: CommandResult[None] = CommandResult("connect pool")
                failed.set_error(UsageError("the pool is closed; create a new one"))
                return failed
            self._connect_new = True
            if not self._clients:
                self._open_client()
            clients = list(self._clients)
        return _gather("connect pool", [c.connect() for c in clients])

    def close(self) -> CommandResult[None]:
        """Close every connection and complete the pool's streams. Idempotent."""
        with self._lock:
            if self._close_result is not None:
                return self._close_result
            self._closed = True
            clients = list(self._clients)
            result = self._close_result = _gather("close pool", [c.close() for c in clients])
        result.subscribe(on_completed=self._closed_all, on_error=lambda _e: self._closed_all())
        return result

    def _closed_all(self) -> None:
        with self._lock:
            feeds, self._feeds = self._feeds, []
        for feed in feeds:
            feed(None)

    def request(self, method: str, params: Any = None, *, timeout: float | None = None) -> CommandResult[Any]:
        """Send a request on the first connection (see :meth:`WebSocketClient.request`)."""
        return self._first().request(method, params, timeout=timeout)

    def send(self, message: Any) -> CommandResult[None]:
        """Send a raw message on the first connection (see :meth:`WebSocketClient.send`)."""
        return self._first().send(message)

    def watch(self, *topics: str, model: type[BaseModel] | None = None) -> Observable[Any]:
        """The merged stream of ``topics``' messages, wherever each topic lives.

        On subscribe, each topic not yet in the pool goes to the first connection with room
        (a new connection when none has); the watch on each connection is reference-counted as
        in :meth:`WebSocketClient.watch`. Disposing the last watcher of a topic frees its slot.
        Errors with :class:`~rxws.exceptions.SubscriptionLimitExceeded` when ``max_connections``
        connections are full.
        """
        unique = unique_topics(topics)
        if self._closed:
            raise UsageError("the pool is closed; create a new one")

        def subscribe(
            observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            with self._lock:
                if self._closed:
                    observer.on_completed()
                    return Disposable()
                try:
                    groups, opened = self._assign(unique)
                except SubscriptionLimitExceeded as exc:
                    observer.on_error(exc)
                    return Disposable()
                connect = self._connect_new
                targets = [(self._clients[i], group) for i, group in groups.items()]
            released = threading.Event()

            def release() -> None:
                if released.is_set():
                    return
                released.set()
                inner.dispose()
                with self._lock:
                    for topic in unique:
                        self._unref(topic)

            inner = CompositeDisposable()
            if connect:
                for client in opened:
                    client.connect()
            merged = MergedTopicObserver(observer, len(targets), observer.on_next)
            for client, group in targets:
                inner.add(client.watch(*group, model=model).subscribe(merged))  # type: ignore[arg-type]
            return Disposable(release)

        return Observable(subscribe)

    async def __aenter__(self) -> ConnectionPool:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return pool_text(self)

    def _repr_html_(self) -> str:
        return pool_html(self)

    # Placement (under the lock) -----------------------------------------------------------------------
    def _assign(self, topics: tuple[str, ...]) -> tuple[dict[int, list[str]], list[WebSocketClient]]:
        """Home every topic (new ones on the first connection with room); all or nothing."""
        groups: dict[int, list[str]] = {}
        opened: list[WebSocketClient] = []
        homed: list[str] = []
        try:
            for topic in topics:
                index = self._home.get(topic)
                if index is None:
                    cost = self.protocol.topic_chars(topic) if self._chars_cap is not None else 0
                    index = self._room(opened, cost)
                    self._home[topic] = index
                    self._load[index] += 1
                    self._chars[index] += cost
                self._refs[topic] = self._refs.get(topic, 0) + 1
                homed.append(topic)
                groups.setdefault(index, []).append(topic)
        except SubscriptionLimitExceeded:
            for topic in homed:
                self._unref(topic)
            raise
        return groups, opened

    def _room(self, opened: list[WebSocketClient], cost: int) -> int:
        """The connection for a new topic taking ``cost`` characters: the first with room for
        one more topic and for its characters (Bybit's 21,000 per connection), else a new one."""
        cap = self.max_topics_per_connection
        chars_cap = self._chars_cap
        if cap is None and chars_cap is None:
            if not self._clients:
                opened.append(self._open_client())
            return 0
        if chars_cap is not None and cost > chars_cap:
            raise SubscriptionLimitExceeded(
                f"a topic of {cost} characters exceeds the venue's cap of {chars_cap}"
            )
        for index, load in enumerate(self._load):
            if (cap is None or load < cap) and (chars_cap is None or self._chars[index] + cost <= chars_cap):
                return index
        if self.max_connections is not None and len(self._clients) >= self.max_connections:
            full = f"{cap} topics" if cap is not None else f"{chars_cap} characters of topics"
            raise SubscriptionLimitExceeded(
                f"all {len(self._clients)} connections are full ({full} each; max_connections reached)"
            )
        opened.append(self._open_client())
        return len(self._clients) - 1

    def _unref(self, topic: str) -> None:
        refs = self._refs.get(topic, 0) - 1
        if refs > 0:
            self._refs[topic] = refs
            return
        self._refs.pop(topic, None)
        index = self._home.pop(topic, None)
        if index is not None:
            self._load[index] -= 1
            if self._chars_cap is not None:
                self._chars[index] -= self.protocol.topic_chars(topic)

    def _open_client(self) -> WebSocketClient:
        index = len(self._clients)
        client = self._factory(
            self.url,
            protocol=self.protocol,
            rate_limiter=self._limiter,
            name=f"{self.name}[{index}]",
            **self._client_kwargs,
        )
        self._clients.append(client)
        self._load.append(0)
        self._chars.append(0)
        for feed in list(self._feeds):
            feed(client)
        return client

    def _first(self) -> WebSocketClient:
        with self._lock:
            if self._closed:
                raise UsageError("the pool is closed; create a new one")
            if not self._clients:
                self._open_client()
            return self._clients[0]


def _events_of(client: WebSocketClient) -> Observable[Event]:
    return client.events


def _messages_of(client: WebSocketClient) -> Observable[Any]:
    return client.messages


def _named_states(client: WebSocketClient) -> Observable[tuple[str, ConnectionState]]:
    name = client.name
    return client.state.pipe(ops.map(lambda state: (name, state)))


def _gather(name: str, results: list[CommandResult[None]]) -> CommandResult[None]:
    """One result for many: done when all are, failed with the first error."""
    out: CommandResult[None] = CommandResult(name)
    if not results:
        out.set_result(None)
        return out
    lock = threading.Lock()
    remaining = [len(results)]

    def one_done(_: Any) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            out.set_result(None)

    for result in results:
        result.subscribe(on_next=one_done, on_error=out.set_error)
    return out
