"""Against MockVenue over real loopback sockets: 3,000 topics over a pool capped at 1,024 per
connection; a snapshot saved, the client discarded, and a new client restoring it; verify()."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rxws import WebSocketClient
from rxws.events import GapDetected, SubscriptionDrift
from rxws.pool import ConnectionPool
from rxws.protocols import GenericJson
from rxws.subscriptions import load_snapshot
from rxws.testing import MockVenue

pytestmark = pytest.mark.integration


async def test_three_thousand_topics_over_a_pool_capped_at_1024(no_leaked_tasks: None) -> None:
    topics = [f"t{i:04d}" for i in range(3000)]
    async with MockVenue(rate=0, record=False) as venue:
        pool = ConnectionPool(
            venue.url, protocol=GenericJson(), max_topics_per_connection=1024, ping_interval=None
        )
        async with pool:
            received: set[str] = set()
            all_in = asyncio.Event()

            def on_message(message: Any) -> None:
                received.add(message["topic"])
                if len(received) == len(topics):
                    all_in.set()

            pool.watch(*topics).subscribe(on_message)
            await venue.wait_for(lambda: sum(len(c.session.topics) for c in venue.connections) == 3000)
            assert pool.loads() == [1024, 1024, 952]
            assert len(venue.connections) == 3
            per_connection = [set(c.session.topics) for c in venue.connections]
            assert all(len(s) <= 1024 for s in per_connection)
            assert set().union(*per_connection) == set(topics)
            assert sum(len(s) for s in per_connection) == 3000  # each topic on exactly one
            for topic in topics:
                await venue.publish(topic, {"px": 1})
            await asyncio.wait_for(all_in.wait(), 5.0)
            assert received == set(topics)
            assert set(pool.state_values.values()) == {"CONNECTED"}
        assert set(pool.state_values.values()) == {"DISCONNECTED"}


async def test_a_new_client_restores_a_saved_snapshot(
    venue: MockVenue, timeline: Any, tmp_path: Path
) -> None:
    path = tmp_path / "subscriptions.json"
    first = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
    seen: set[str] = set()
    both = asyncio.Event()

    def on_tick(message: Any) -> None:
        seen.add(message["topic"])
        if len(seen) == 2:
            both.set()

    async with first:
        first.watch("trades.BTC", "trades.ETH").subscribe(on_tick)
        await asyncio.wait_for(both.wait(), 5.0)  # the venue publishes 50/s per topic
        saved = first.subscriptions.save(path)
    del first  # the process's client is gone; only the file remains

    last_seq = {t.topic: t.last_seq for t in saved.topics}
    assert set(last_seq) == {"trades.BTC", "trades.ETH"} and all(last_seq.values())
    second = WebSocketClient(venue.url, protocol=GenericJson(), ping_interval=None)
    tl = timeline(second)
    messages: list[Any] = []
    second.messages.subscribe(messages.append)
    assert second.subscriptions.restore(load_snapshot(path)) == ["trades.BTC", "trades.ETH"]
    async with second:
        await venue.wait_subscribed("trades.BTC", "trades.ETH")
        gaps = [await tl.wait_event(GapDetected, n) for n in (1, 2)]
        assert {g.topic for g in gaps} == {"trades.BTC", "trades.ETH"}
        for gap in gaps:
            assert gap.gap == "disconnect"
            assert gap.last_seq == last_seq[gap.topic]
            assert gap.next_seq is not None and gap.next_seq > gap.last_seq
        assert {m["topic"] for m in messages if "topic" in m} == {"trades.BTC", "trades.ETH"}
        assert second.stats.unrouted == 0
        drift = await second.subscriptions.verify(timeout=2.0)
        assert drift == SubscriptionDrift(at=drift.at)
        # the venue loses a subscription behind the client's back: verify() notices
        venue.connections[-1].session.topics.pop("trades.ETH")
        drift = await second.subscriptions.verify(timeout=2.0)
        assert drift.missing_at_venue == ("trades.ETH",)
        assert tl.of(SubscriptionDrift) == [drift]
