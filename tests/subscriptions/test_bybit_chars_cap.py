"""Bybit's cap of 21,000 characters of ``args`` per connection, enforced in virtual time.

The Bybit dialect declares ``max_chars_per_connection = 21_000`` (public endpoints); every topic
costs ``protocol.topic_chars(topic)`` (its name, quotes and a comma). ``watch()`` refuses, with
``SubscriptionLimitExceeded`` and nothing sent, the topics that would take the connection past it;
``ConnectionPool`` spreads topics over connections by it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rxws import SubscriptionLimitExceeded, WebSocketClient
from rxws.pool import ConnectionPool
from rxws.protocols import Bybit
from rxws.testing.responder import Responder
from rxws.transport.memory import MemoryTransport

URL = "ws://venue.test/v5/public/linear"
CAP = 21_000
TOPICS = [f"orderbook.50.SYM{i:05d}" for i in range(1000)]  # 21 characters: 24 each with quotes, comma
FIT = CAP // 24  # 875 topics take exactly 21,000 characters


Virtual = Any  # tests/conftest.py's Virtual: scheduler, transport, responder, client factory


@pytest.fixture
def bybit(virtual: Virtual) -> Virtual:
    """The conftest's virtual venue, answering in the Bybit dialect."""
    virtual.responder = Responder(dialect="bybit")
    virtual.transport = MemoryTransport(latency=0.25, responder=virtual.responder)
    return virtual


def client_on(v: Virtual, protocol: Bybit | None = None) -> WebSocketClient:
    return v.client(protocol=protocol or Bybit())


def subscribed_args(v: Virtual) -> list[str]:
    sent = [json.loads(f) for peer in v.transport.peers for f in peer.sent]
    return [a for m in sent if m.get("op") == "subscribe" for a in m["args"]]


def test_topics_fill_the_connection_to_exactly_21000_characters(bybit: Virtual) -> None:
    protocol = Bybit()
    assert protocol.max_chars_per_connection == CAP
    assert sum(map(protocol.topic_chars, TOPICS[:FIT])) == CAP
    client = client_on(bybit, protocol)
    errors: list[BaseException] = []
    bybit.at(1.0, client.connect)
    bybit.at(2.0, lambda: client.watch(*TOPICS[:FIT]).subscribe(on_error=errors.append))
    bybit.at(3.0, lambda: client.watch(TOPICS[FIT]).subscribe(on_error=errors.append))
    bybit.run(5.0)
    assert subscribed_args(bybit) == TOPICS[:FIT], "one more character would be over"
    assert len(errors) == 1 and isinstance(errors[0], SubscriptionLimitExceeded)
    message = str(errors[0])
    assert "21000 characters" in message and "(21000 already wanted)" in message
    assert "ConnectionPool" in message


def test_a_watch_that_would_cross_the_cap_is_refused_whole_and_a_freed_topic_makes_room(
    bybit: Virtual,
) -> None:
    client = client_on(bybit)
    errors: list[BaseException] = []
    subs: dict[str, Any] = {}
    bybit.at(1.0, client.connect)
    bybit.at(2.0, lambda: subs.setdefault("first", client.watch(*TOPICS[: FIT - 2]).subscribe()))
    # 3 more would be 72 characters with 48 free: all three refused, none sent
    bybit.at(3.0, lambda: client.watch(*TOPICS[FIT - 2 : FIT + 1]).subscribe(on_error=errors.append))
    bybit.at(4.0, lambda: client.watch(TOPICS[0]).subscribe())  # already wanted: costs nothing
    bybit.at(5.0, lambda: subs["first"].dispose())
    bybit.at(6.0, lambda: client.watch(*TOPICS[FIT - 2 : FIT + 1]).subscribe(on_error=errors.append))
    bybit.run(8.0)
    assert len(errors) == 1 and "3 more topic(s) (72 characters)" in str(errors[0])
    args = subscribed_args(bybit)
    assert args == [*TOPICS[: FIT - 2], *TOPICS[FIT - 2 : FIT + 1]]


def test_private_connections_have_no_character_cap(bybit: Virtual) -> None:
    protocol = Bybit(category="private")
    assert protocol.max_chars_per_connection is None
    client = client_on(bybit, protocol)
    errors: list[BaseException] = []
    client.watch(*TOPICS).subscribe(on_error=errors.append)
    assert errors == []


def test_the_pool_spreads_topics_by_characters(bybit: Virtual) -> None:
    pool = ConnectionPool(
        URL,
        protocol=Bybit(),
        transport=bybit.transport,
        scheduler=bybit.scheduler,
        ping_interval=None,
        name="pool",
    )
    sub = pool.watch(*TOPICS).subscribe()
    assert pool.loads() == [FIT, len(TOPICS) - FIT]
    bybit.at(1.0, pool.connect)
    bybit.run(3.0)
    per_connection = [
        [a for f in peer.sent for m in [json.loads(f)] if m.get("op") == "subscribe" for a in m["args"]]
        for peer in bybit.transport.peers
    ]
    assert per_connection == [TOPICS[:FIT], TOPICS[FIT:]]
    sub.dispose()
    assert pool.loads() == [0, 0]
    later = pool.watch("x" * 30).subscribe()  # 33 characters: fits the first connection again
    assert pool.connection_of("x" * 30) is pool.clients[0]
    later.dispose()


def test_the_pool_refuses_a_topic_longer_than_the_cap_and_respects_max_connections(bybit: Virtual) -> None:
    pool = ConnectionPool(
        URL, protocol=Bybit(), transport=bybit.transport, scheduler=bybit.scheduler, max_connections=1
    )
    errors: list[BaseException] = []
    pool.watch("y" * CAP).subscribe(on_error=errors.append)
    pool.watch(*TOPICS).subscribe(on_error=errors.append)
    assert [type(e) for e in errors] == [SubscriptionLimitExceeded, SubscriptionLimitExceeded]
    assert "exceeds the venue's cap of 21000" in str(errors[0])
    assert "21000 characters of topics each; max_connections reached" in str(errors[1])
    assert pool.loads() in ([], [0])
