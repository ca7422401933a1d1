"""Venue notices and OKX private routing through the client, in virtual time (issue 10).

The frames are the venue's documented ones as the server twins render them: Binance
``serverShutdown`` (web-socket-streams.md "Server Shutdown", read 2026-11-30) in its combined and
raw forms, OKX's ``64008`` notice ("Notification", read 2026-11-30) and OKX private pushes whose
``arg`` carries ``uid`` ("Account channel" push data example, read 2026-11-30).
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import Virtual

from rxws import ConnectionState
from rxws.events import GapDetected, UnroutedMessage, VenueNotice
from rxws.protocols import Binance, Okx, VenueProtocol
from rxws.testing import Responder
from rxws.transport.memory import MemoryTransport

LATENCY = 0.25


def venue(dialect: str, protocol: VenueProtocol, *topics: str) -> tuple[Virtual, Any, dict[str, list[Any]]]:
    """A connected client of ``protocol`` watching ``topics`` on a twin of ``dialect`` (t = 3)."""
    virtual = Virtual(latency=LATENCY)
    virtual.responder = Responder(dialect=dialect)
    virtual.transport = MemoryTransport(latency=LATENCY, responder=virtual.responder)
    client = virtual.client(protocol=protocol)
    got: dict[str, list[Any]] = {t: [] for t in topics}
    virtual.at(1.0, client.connect)
    for topic in topics:
        virtual.at(2.0, lambda topic=topic: client.watch(topic).subscribe(got[topic].append))
    virtual.run(until=3.0)
    assert client.state_value is ConnectionState.CONNECTED
    assert sorted(virtual.responder.topics()) == sorted(topics)
    return virtual, client, got


@pytest.mark.parametrize("raw", [False, True], ids=["combined", "raw"])
def test_binance_server_shutdown_is_one_venue_notice(raw: bool) -> None:
    virtual, client, got = venue("binance", Binance(), "btcusdt@depth")
    frame = virtual.responder.core.server.shutdown_notice(raw=raw)
    assert frame is not None
    virtual.at(3.5, lambda: virtual.transport.peer.push(frame))
    virtual.run(until=5.0)
    timeline = virtual.timeline
    assert timeline is not None
    notices = timeline.of(VenueNotice)
    assert notices == [
        VenueNotice(at=3.5 + LATENCY, code=None, detail="serverShutdown E=1770123456789", notice="shutdown")
    ]
    assert timeline.of(UnroutedMessage) == []
    assert got["btcusdt@depth"] == []  # not data for anyone
    # The host decides: the client neither closes nor reconnects by itself.
    assert client.state_value is ConnectionState.CONNECTED
    assert len(virtual.responder.sessions) == 1


def test_okx_64008_is_a_shutdown_notice_and_errors_stay_error_notices() -> None:
    virtual, client, _ = venue("okx", Okx(), "books:BTC-USDT")
    server = virtual.responder.core.server
    notice = server.shutdown_notice()
    assert notice is not None
    virtual.at(3.5, lambda: virtual.transport.peer.push(notice))
    virtual.at(3.6, lambda: virtual.transport.peer.push(server.error(None, 60012, "Invalid request")))
    virtual.run(until=5.0)
    assert virtual.timeline is not None
    assert virtual.timeline.of(VenueNotice) == [
        VenueNotice(
            at=3.5 + LATENCY,
            code=64008,
            detail="The connection will soon be closed for a service upgrade. Please reconnect.",
            notice="shutdown",
        ),
        VenueNotice(at=3.6 + LATENCY, code=60012, detail="Invalid request", notice="error"),
    ]
    assert client.state_value is ConnectionState.CONNECTED


def test_okx_private_pushes_reach_their_watchers() -> None:
    virtual, client, got = venue("okx", Okx(), "account", "orders:instType=ANY")
    virtual.at(3.5, lambda: virtual.responder.publish("account", {"totalEq": "55868.06"}))
    virtual.at(3.6, lambda: virtual.responder.publish("orders:instType=ANY", {"ordId": "1"}))
    virtual.run(until=5.0)
    assert [m["arg"] for m in got["account"]] == [{"channel": "account", "uid": "44*********584"}]
    assert [m["data"] for m in got["account"]] == [[{"totalEq": "55868.06"}]]
    assert [m["arg"] for m in got["orders:instType=ANY"]] == [
        {"channel": "orders", "instType": "ANY", "uid": "44*********584"}
    ]
    assert virtual.timeline is not None
    assert virtual.timeline.of(UnroutedMessage) == []
    assert client.stats.unrouted == 0


def test_okx_gap_detection_only_on_chained_channels() -> None:
    virtual, _, got = venue("okx", Okx(), "books:BTC-USDT", "trades:BTC-USDT")
    for i, topic in enumerate(("books:BTC-USDT", "trades:BTC-USDT")):
        at = 3.5 + i * 0.01
        virtual.at(at, lambda topic=topic: virtual.responder.publish(topic, {"n": 1}))  # books: snapshot
        virtual.at(at + 0.1, lambda topic=topic: virtual.responder.publish(topic, {"n": 2}))
        virtual.at(at + 0.2, lambda topic=topic: virtual.responder.publish(topic, {"n": 3}, skip=2))
    virtual.run(until=5.0)
    assert [len(got[t]) for t in ("books:BTC-USDT", "trades:BTC-USDT")] == [3, 3]
    assert virtual.timeline is not None
    gaps = virtual.timeline.of(GapDetected)
    assert [(g.topic, g.gap, g.last_seq, g.next_seq) for g in gaps] == [("books:BTC-USDT", "sequence", 2, 5)]
