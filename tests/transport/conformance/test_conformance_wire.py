"""What only a wire has, checked alike on the real-socket transports (websockets, picows): TLS,
the upgrade's headers and subprotocols, refusals, frame sizes, fragments, raw frames."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from email.utils import parsedate_to_datetime

import pytest
from conformance_harness import Harness, SocketVenue
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxws.exceptions import ConnectFailed, HandshakeRejected, MessageTooBig, NotConnected
from rxws.transport.base import LinkOptions

pytestmark = pytest.mark.asyncio  # explicit: conftest runs each test on asyncio and uvloop


async def test_tls_refuses_an_untrusted_certificate_and_accepts_a_trusted_one(
    wire: Harness, tls_venue: tuple[SocketVenue, ssl.SSLContext]
) -> None:
    venue, trusting = tls_venue
    assert venue.url.startswith("wss://")
    with pytest.raises(ConnectFailed) as refused:  # verification is on by default
        await wire.open(url=venue.url)
    assert "certificate" in str(refused.value).lower()
    assert not venue.peers
    link, inbox = await wire.open(url=venue.url, ssl=trusting)
    await venue.peers[-1].push("over TLS")
    await wire.until(lambda: inbox.messages == ["over TLS"])
    assert link.send("back") is True
    await wire.until(lambda: venue.peers[-1].received == ["back"])
    await wire.closed(link)


async def test_extra_headers_reach_the_venue(wire: Harness) -> None:
    await wire.open(headers={"X-Conformance": "yes", "X-MBX-APIKEY": "k-123456789"})
    headers = wire.peer.headers
    assert headers["X-Conformance"] == "yes"
    assert headers["X-MBX-APIKEY"] == "k-123456789"  # a secret is masked in logs, sent as is


async def test_the_handshake_response_headers_are_exposed(wire: Harness) -> None:
    """``Link.response_headers``: the venue's ``Date`` feeds the client's venue clock (issue 13)."""
    link, _ = await wire.open()
    headers = link.response_headers
    date = next(v for k, v in headers.items() if k.lower() == "date")
    sent = parsedate_to_datetime(date).timestamp()
    assert abs(sent - time.time()) < 5.0
    assert any(k.lower() == "upgrade" and v.lower() == "websocket" for k, v in headers.items())


async def test_subprotocols_are_offered_and_the_chosen_one_reported(wire: Harness) -> None:
    link, _ = await wire.open(subprotocols=("v1", "v2"))
    assert wire.peer.headers["Sec-WebSocket-Protocol"] == "v1, v2"
    assert wire.peer.subprotocol == "v2"
    assert _subprotocol(wire, link) == "v2"
    plain, _ = await wire.open()
    assert "Sec-WebSocket-Protocol" not in wire.peer.headers
    assert _subprotocol(wire, plain) is None


async def test_an_http_refusal_is_handshake_rejected_with_retry_after(wire: Harness) -> None:
    assert wire.venue is not None
    wire.venue.refuse = (429, 3.0)
    with pytest.raises(HandshakeRejected) as info:
        await wire.open()
    assert (info.value.status, info.value.retry_after) == (429, 3.0)
    assert "refused by the conformance venue" in str(info.value)


async def test_a_refused_port_is_connect_failed(wire: Harness) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectFailed) as info:
        await wire.open(url=f"ws://127.0.0.1:{port}/ws")
    assert type(info.value) is ConnectFailed and "cannot connect" in str(info.value)


@pytest.mark.parametrize("fragmented", [False, True], ids=["one frame", "fragments"])
async def test_a_message_over_max_size_is_message_too_big_with_1009(wire: Harness, fragmented: bool) -> None:
    link, inbox = await wire.open(max_size=1000)
    await wire.peer.push("fits")
    if fragmented:  # every fragment fits; the message does not
        await wire.peer.push_fragments(["x" * 600, "x" * 600])
    else:
        await wire.peer.push("x" * 5000)
    await wire.until(lambda: inbox.ended)
    assert isinstance(inbox.error, MessageTooBig), inbox.error
    assert inbox.messages == ["fits"]
    await wire.peer.finished.wait()
    assert wire.peer.client_close is not None and wire.peer.client_close[0] == 1009
    with pytest.raises(NotConnected):
        link.send("{}")


async def test_fragmented_messages_are_reassembled(wire: Harness) -> None:
    _link, inbox = await wire.open()
    await wire.peer.push_fragments(["ab", "cd", "é€"])
    await wire.peer.push_fragments([b"\x00", b"\x01\x02"])
    await wire.peer.push("whole")
    await wire.until(lambda: len(inbox.messages) == 3)
    assert inbox.messages == ["abcdé€", b"\x00\x01\x02", "whole"]


async def test_text_that_is_not_utf8_arrives_as_bytes_and_the_stream_goes_on(wire: Harness) -> None:
    _link, inbox = await wire.open()
    wire.peer.push_raw(b"\x81\x02\xff\xfe")  # an unmasked text frame whose payload is not UTF-8
    await wire.peer.push("next")
    await wire.until(lambda: len(inbox.messages) == 2)
    assert inbox.messages == [b"\xff\xfe", "next"]
    assert not inbox.ended


async def test_an_abandoned_open_leaves_no_connection_behind(wire: Harness) -> None:
    assert wire.venue is not None
    wire.venue.hold = asyncio.Event()
    outcome: list[object] = []
    loop = asyncio.get_running_loop()
    opening = wire.transport.open(wire.url, LinkOptions(), AsyncIOScheduler(loop=loop)).subscribe(
        on_next=outcome.append, on_error=outcome.append
    )
    await wire.until(lambda: len(wire.venue.upgrading) == 1)  # type: ignore[union-attr]
    opening.dispose()  # the host gave up while the upgrade was unanswered
    await asyncio.sleep(0)
    wire.venue.hold.set()  # the venue answers after all: the client must not keep that connection
    await asyncio.wait_for(wire.venue.upgrading[0].wait_closed(), 10.0)
    assert outcome == []


def _subprotocol(wire: Harness, link: object) -> str | None:
    if wire.kind == "websockets":
        return link.connection.subprotocol  # type: ignore[attr-defined, no-any-return]
    return link.subprotocol  # type: ignore[attr-defined, no-any-return]


async def test_messages_before_the_first_subscriber_are_kept_for_it(wire: Harness) -> None:
    assert wire.venue is not None
    wire.venue.greeting = ["hello"]  # sent with the handshake's answer
    link, inbox = await wire.open(subscribe=False)
    await wire.peer.push("second")
    pongs: list[int] = []
    link.ping(lambda: pongs.append(1))  # its pong comes after both messages, on the same stream
    await wire.until(lambda: bool(pongs))
    inbox.attach(link)
    assert inbox.messages == ["hello", "second"]
    await wire.peer.push("third")
    await wire.until(lambda: len(inbox.messages) == 3)
    assert inbox.messages[-1] == "third"


async def test_a_secret_header_is_sent_but_never_logged(
    wire: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(1)  # everything, picows' own debug level (9) included
    secret = "k-9f8e7d6c5b4a"
    link, _ = await wire.open(headers={"X-MBX-APIKEY": secret})
    assert wire.peer.headers["X-MBX-APIKEY"] == secret
    await wire.closed(link)
    dumps = [r for r in caplog.records if "X-MBX-APIKEY" in r.getMessage()]
    assert dumps, "the library logged no handshake dump at its most verbose level"
    assert all(secret not in r.getMessage() for r in caplog.records)
